"""tools/benchmark_train.py and the hook it times with, on the CPU with tiny settings.

This checks that the benchmark runs and reports well-formed numbers for both models, never how
fast either is: speed targets belong to the benchmark's own output (on a GPU), not to tests.
"""
import json
import math
from types import SimpleNamespace

import pytest

from conftest import run_python
from test_compare import parse_table
from test_configs import EXPECTED_PARAMS


class _FakeRunner:
    """What TrainThroughputHook reads from a runner: the iteration index and a logger."""

    def __init__(self):
        self.iter = 0
        self.messages = []
        self.logger = SimpleNamespace(info=self.messages.append, warning=self.messages.append)


def _train(hook, iters, batch_size=4):
    runner = _FakeRunner()
    hook.before_train(runner)
    for i in range(iters):
        runner.iter = i
        hook.after_train_iter(runner, i, dict(data_samples=[None] * batch_size))
    hook.after_train(runner)
    return runner


def test_hook_counts_only_the_samples_after_warmup():
    from mmpose_sam.engine import TrainThroughputHook
    hook = TrainThroughputHook(warmup_iters=3)
    runner = _train(hook, iters=10, batch_size=4)
    assert hook.samples == (10 - 3) * 4
    assert hook.seconds > 0 and hook.samples_per_second == hook.samples / hook.seconds
    assert runner.messages[-1].startswith('training throughput: ')
    assert '28 samples in' in runner.messages[-1]


def test_hook_says_when_training_ended_within_warmup():
    from mmpose_sam.engine import TrainThroughputHook
    hook = TrainThroughputHook(warmup_iters=5)
    runner = _train(hook, iters=5)
    assert hook.samples_per_second is None
    assert 'ended within the 5 warm-up iterations' in runner.messages[-1]


def test_hook_rejects_zero_warmup_and_is_registered():
    from mmpose.registry import HOOKS
    from mmpose_sam.engine import TrainThroughputHook
    with pytest.raises(ValueError, match='warmup_iters must be at least 1, got 0'):
        TrainThroughputHook(warmup_iters=0)
    assert isinstance(HOOKS.build(dict(type='TrainThroughputHook', warmup_iters=2)),
                      TrainThroughputHook)


def test_benchmark_writes_table_for_both_models(tmp_path):
    out = tmp_path / 'throughput.md'
    proc = run_python(['tools/benchmark_train.py', '--iters', '2', '--warmup', '1',
                       '--model-only-iters', '2', '--batch-size', '2', '--num-workers', '1',
                       '--work-dir', tmp_path, '--out', out], timeout=900)
    rows = parse_table(out.read_text())
    assert list(rows) == ['SimpleBaseline', 'SAM', 'SAM / SB']
    assert rows['SimpleBaseline']['params'] == f"{EXPECTED_PARAMS['simplebaseline', 50]:,}"
    assert rows['SAM']['params'] == f"{EXPECTED_PARAMS['sam-seq3x3', 50]:,}"
    for column in ('end to end (crops/s)', 'model only (crops/s)', 'model only (ms/iter)'):
        for name in ('SimpleBaseline', 'SAM'):
            assert float(rows[name][column]) > 0
        assert float(rows['SAM / SB'][column].rstrip('x')) > 0
    assert rows['SAM']['peak GPU memory (GiB)'] == '-'  # CPU: nothing to report
    assert 'AMP off' in out.read_text() and 'training throughput: ' in proc.stdout
    report = json.loads(out.with_suffix('.json').read_text())
    assert report['amp'] is None
    for result in report['results'].values():
        assert result['device'] == 'cpu' and math.isfinite(result['model_only_loss'])


def test_benchmark_rejects_zero_iterations():
    proc = run_python(['tools/benchmark_train.py', '--iters', '0'], check=False, timeout=120)
    assert proc.returncode == 2
    assert 'error: --iters must be at least 1' in proc.stderr

"""tools/benchmark_train.py and the hook it times with, on the CPU with tiny settings.

This checks that the benchmark runs and reports well-formed numbers for both models, never how
fast either is: speed targets belong to the benchmark's own output (on a GPU), not to tests.
"""
import json
import math
from types import SimpleNamespace

import pytest

from conftest import run_python
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


def _rows(text):
    """Table rows by (first cell, second cell), each a {column: cell} dict."""
    lines = [line for line in text.splitlines() if line.startswith('|')]
    header = [cell.strip() for cell in lines[0].strip('|').split('|')]
    rows = [dict(zip(header, (c.strip() for c in line.strip('|').split('|')))) for line in lines[2:]]
    return {(row['model'], row['setting']): row for row in rows}


def test_benchmark_writes_both_models_in_both_settings(tmp_path):
    out = tmp_path / 'throughput.md'
    proc = run_python(['tools/benchmark_train.py', '--iters', '2', '--warmup', '1',
                       '--model-only-iters', '2', '--batch-size', '2', '--num-workers', '1',
                       '--profile', '--sync-check', '--work-dir', tmp_path, '--out', out],
                      timeout=900)
    rows = _rows(out.read_text())
    models = [(m, s) for s in ('mmpose', 'fast') for m in ('SimpleBaseline', 'SAM')]
    assert list(rows)[:4] == models
    assert {('SAM / SB (mmpose)', ''), ('SAM / SB (fast)', ''), ('SimpleBaseline: fast / mmpose',
            ''), ('SAM: fast / mmpose', '')} <= set(rows)
    for key in models:
        for column in ('end to end (crops/s)', 'model only (crops/s)', 'model only (ms/iter)'):
            assert float(rows[key][column]) > 0
        assert rows[key]['data-time share'].endswith('%')
        assert rows[key]['peak GPU memory (GiB)'] == '-'  # CPU: nothing to report
        assert all(float(s) >= 0 for s in rows[key][
            'start-up: runner / to 1st iter / 1st iter (s)'].split(' / '))
    assert 'training throughput: ' in proc.stdout
    report = json.loads(out.with_suffix('.json').read_text())
    assert len(report['rows']) == 4
    for row in report['rows'].values():
        assert row['device'] == 'cpu' and math.isfinite(row['model_only_loss'])
        assert row['params'] == EXPECTED_PARAMS[('simplebaseline', 50) if row['model'] ==
                                                'SimpleBaseline' else ('sam-seq3x3', 50)]
        assert row['model_only_profile_top_ops'] and row['syncs_per_iteration'] == 'no GPU'
    assert (tmp_path / 'fast_sam' / 'profile' / 'trace.json').is_file()


def test_benchmark_rejects_zero_iterations():
    proc = run_python(['tools/benchmark_train.py', '--iters', '0'], check=False, timeout=120)
    assert proc.returncode == 2
    assert 'error: --iters must be at least 1' in proc.stderr

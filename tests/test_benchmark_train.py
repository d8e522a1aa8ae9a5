"""tools/benchmark_train.py and the hook it times with, on the CPU with tiny settings.

This checks that the benchmark runs and reports well-formed numbers for both models, never how
fast either is: speed targets belong to the benchmark's own output (on a GPU), not to tests. Its
full run (both models, both settings, profile and sync check) is the device check's step 5, whose
rehearsal tests/test_gpu_check.py runs once and checks with ``check_throughput_report`` below.
"""
import json
import math
import re
from pathlib import Path
from types import SimpleNamespace

import pytest

from conftest import SAM_SAMPLE_CONFIG, SB_SAMPLE_CONFIG, run_python
from test_configs import EXPECTED_PARAMS

SAM_CONFIG = (Path(__file__).resolve().parents[1] / 'configs' / 'body_2d_keypoint' /
              'topdown_heatmap' / 'coco' / 'td-hm_sam-res50-seq3x3_8xb64-210e_coco-256x192.py')


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


def test_hook_counts_only_the_samples_after_warmup(monkeypatch):
    from toolkit import throughput_hook
    from toolkit.throughput_hook import TrainThroughputHook
    # The clock is read twice: when warm-up iteration 3 ends, and at the end of training.
    readings = iter([100.0, 102.5])
    monkeypatch.setattr(throughput_hook, 'synchronized_clock', lambda: next(readings))
    hook = TrainThroughputHook(warmup_iters=3)
    runner = _train(hook, iters=10, batch_size=4)
    assert hook.samples == (10 - 3) * 4 and hook.seconds == 2.5
    assert hook.samples_per_second == pytest.approx(11.2)  # 28 samples in 2.5 s
    assert runner.messages[-1] == ('training throughput: 11.2 samples/s (28 samples in 2.50 s '
                                   'after 3 warm-up iterations, data loading included)')


def test_hook_says_when_training_ended_within_warmup():
    from toolkit.throughput_hook import TrainThroughputHook
    hook = TrainThroughputHook(warmup_iters=5)
    runner = _train(hook, iters=5)
    assert hook.samples_per_second is None
    assert 'ended within the 5 warm-up iterations' in runner.messages[-1]


def test_hook_rejects_zero_warmup_and_is_registered():
    from mmpose.registry import HOOKS
    from toolkit.throughput_hook import TrainThroughputHook
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


def check_throughput_report(table: Path, work_dir: Path) -> None:
    """What ``benchmark_train.py --settings fast mmpose --profile --sync-check`` on the CPU must
    write: the markdown ``table``, its JSON beside it, the profile trace in ``work_dir``."""
    rows = _rows(table.read_text())
    models = [(m, s) for s in ('mmpose', 'fast') for m in ('SimpleBaseline', 'SAM')]
    assert sorted(list(rows)[:4]) == sorted(models)
    assert {('SAM / SB (mmpose)', ''), ('SAM / SB (fast)', ''), ('SimpleBaseline: fast / mmpose',
            ''), ('SAM: fast / mmpose', '')} <= set(rows)
    for key in models:
        for column in ('end to end (crops/s)', 'model only (crops/s)', 'model only (ms/iter)'):
            assert float(rows[key][column]) > 0
        assert rows[key]['data-time share'].endswith('%')
        assert rows[key]['peak GPU memory (GiB)'] == '-'  # CPU: nothing to report
        assert all(float(s) >= 0 for s in rows[key][
            'start-up: runner / to 1st iter / 1st iter (s)'].split(' / '))
    report = json.loads(table.with_suffix('.json').read_text())
    assert len(report['rows']) == 4
    for row in report['rows'].values():
        assert row['device'] == 'cpu' and math.isfinite(row['model_only_loss'])
        assert row['params'] == EXPECTED_PARAMS[('simplebaseline', 50) if row['model'] ==
                                                'SimpleBaseline' else ('sam-seq3x3', 50)]
        assert row['model_only_profile_top_ops'] and row['syncs_per_iteration'] == 'no GPU'
        if row['setting'] == 'fast':  # what we ship: our AMP wrapper, every custom hook
            assert row['optim_wrapper'].startswith('mmpose_sam.speed.amp.')
            assert {'DivergenceHook', 'PreemptionHook', 'ChannelsLastHook'} <= set(
                row['custom_hooks'])
        else:  # float32 without a GPU, MMPose's hooks
            assert row['optim_wrapper'] == 'mmengine.optim.optimizer.optimizer_wrapper.OptimWrapper'
            assert row['custom_hooks'] == ['SyncBuffersHook']
    assert report['skipped'] == []
    assert (work_dir / 'fast_sam' / 'profile' / 'trace.json').is_file()


def _dry_run_output(stdout):
    """``{'setting/model': (printed config text, summary line)}`` from ``--dry-run``'s output."""
    found = {}
    for match in re.finditer(r'^----- config (\S+) \(as on a GPU\) -----\n(.*?)\n'
                             r'----- end of config \1 -----$', stdout, re.M | re.S):
        summary = re.search(rf'^\[benchmark_train\] dry run {re.escape(match[1])} \(as on a GPU\): '
                            r'(.*)$', stdout, re.M)
        found[match[1]] = (match[2], summary[1] if summary else None)
    return found


def test_dry_run_prints_and_builds_every_gpu_config(tmp_path):
    """The GPU branch of both settings, on the CPU: each config as a GPU run would build it goes
    through cfg.pretty_text (a class object in it failed in yapf on the H200, before any
    measurement) and Runner.from_cfg; the printed text is a config MMEngine reads back."""
    from mmengine.config import Config
    from toolkit.analysis import load_config
    shipped = load_config(SAM_CONFIG)  # both COCO configs share their optim_wrapper and hooks
    proc = run_python(['tools/benchmark_train.py', '--dry-run', '--as-if-gpu', '--batch-size', '2',
                       '--num-workers', '1', '--work-dir', tmp_path], timeout=600)
    found = _dry_run_output(proc.stdout)
    assert sorted(found) == ['fast/SAM', 'fast/SimpleBaseline', 'mmpose/SAM',
                             'mmpose/SimpleBaseline']
    for key, (text, summary) in found.items():
        cfg = Config.fromstring(text, '.py')
        setting = key.split('/')[0]
        hooks = [h['type'] for h in cfg.custom_hooks]
        assert summary and 'runner built (hooks: ' in summary and 'nothing trained' in summary
        assert 'train data loader built: ' in summary
        if setting == 'fast':  # our configs' own AMP, and every custom hook we ship
            assert cfg.optim_wrapper.type == shipped.optim_wrapper.type == 'BF16AmpOptimWrapper'
            assert cfg.optim_wrapper.dtype == 'bfloat16'
            assert hooks == [h['type'] for h in shipped.custom_hooks]
            assert {'SyncBuffersHook', 'ChannelsLastHook', 'DivergenceHook',
                    'PreemptionHook'} <= set(hooks)
            assert cfg.default_hooks.runtime_info.type == 'LazyRuntimeInfoHook'
            assert 'optim wrapper built: mmpose_sam.speed.amp.' in summary
            assert 'DivergenceHook' in summary.split('runner built (hooks: ')[1]
        else:  # MMEngine's own AMP (by a registry name), MMPose's runtime and hooks
            assert cfg.optim_wrapper.type == 'AmpOptimWrapper'
            assert cfg.optim_wrapper.dtype == 'bfloat16'
            assert hooks == ['SyncBuffersHook']
            assert cfg.default_hooks.runtime_info.type == 'RuntimeInfoHook'
            assert 'AmpOptimWrapper NOT built on this CPU' in summary
            assert 'plain OptimWrapper instead: Adam' in summary
    assert 'every config printed and built; nothing measured' in proc.stdout
    assert not list(tmp_path.rglob('throughput.*'))


def test_mmpose_setting_has_mmposes_own_hooks_and_amp():
    """The 'mmpose' setting's custom hooks are MMPose's default_runtime.py's, and its AMP is
    MMEngine's own class, found under MMEngine's name."""
    import mmpose
    from mmengine.config import Config
    from mmengine.optim import AmpOptimWrapper
    from mmengine.registry import OPTIM_WRAPPERS
    from conftest import load_tool
    tool = load_tool('benchmark_train')
    runtime = Config.fromfile(str(Path(mmpose.__file__).parent / '.mim' / 'configs' / '_base_' /
                                  'default_runtime.py'))
    assert tool.MMPOSE_CUSTOM_HOOKS == runtime.custom_hooks
    assert OPTIM_WRAPPERS.get(tool.MMENGINE_AMP) is AmpOptimWrapper


def test_time_limit_skips_the_rows_that_would_not_fit(tmp_path):
    """The first row always runs; with 1 s allowed, the next is skipped and said to be, in the
    output, the JSON and the table (the 128x96 sample configs: cheaper steps)."""
    out = tmp_path / 'throughput.md'
    proc = run_python(['tools/benchmark_train.py', '--settings', 'fast', '--time-limit', '1',
                       '--sb-config', SB_SAMPLE_CONFIG, '--sam-config', SAM_SAMPLE_CONFIG,
                       '--iters', '1', '--warmup', '1', '--model-only-iters', '1',
                       '--model-only-warmup', '1', '--batch-size', '2', '--num-workers', '0',
                       '--work-dir', tmp_path, '--out', out], timeout=600)
    assert re.search(r'time limit: \d+ s of 1 s used and the next row would take about \d+ s: '
                     r'skipped fast/SAM$', proc.stdout, re.M)
    report = json.loads(out.with_suffix('.json').read_text())
    assert list(report['rows']) == ['fast/SimpleBaseline'] and report['skipped'] == ['fast/SAM']
    table = out.read_text()
    assert list(_rows(table))[:1] == [('SimpleBaseline', 'fast')]
    assert 'Skipped for the time limit (1 s): fast/SAM' in table


def test_row_estimate_goes_by_the_same_setting_first():
    from conftest import load_tool
    estimate = load_tool('benchmark_train').row_estimate
    rows = {'fast/SimpleBaseline': dict(setting='fast', row_s=40.)}
    assert estimate({}, 'fast') == 0  # the first row always runs
    assert estimate(rows, 'fast') == 50.
    assert estimate(rows, 'mmpose') == 80.  # MMPose's runtime: no row of its own yet


def test_benchmark_rejects_zero_iterations(capsys):
    from conftest import load_tool
    with pytest.raises(SystemExit) as exit_info:  # argparse's: status 2 and a usage line
        load_tool('benchmark_train').main(['--iters', '0'])
    assert exit_info.value.code == 2
    assert 'error: --iters must be at least 1' in capsys.readouterr().err

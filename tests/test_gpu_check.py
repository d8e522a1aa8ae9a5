"""tools/device/gpu_check.sh --rehearse: the device check's every step on this CPU, tiny sizes.

The GPU machine is lent to few tasks and for minutes; a script that breaks there costs the whole
loan. The rehearsal runs the same steps (those that only make sense there are said to be skipped)
with this checkout's .venv and writes the same files. Nothing here times anything.
"""
import json
import subprocess

from conftest import ROOT, subprocess_env
from test_benchmark_train import check_throughput_report

SCRIPT = ROOT / 'tools' / 'device' / 'gpu_check.sh'
STEPS = ('1. wheels', '2. xtcocotools build', '3. mmcv build (CPU ops)',
         '4. environment (tools/check_env.py)', '5. training throughput (tools/benchmark_train.py)',
         '6. inference latency (tools/benchmark_inference.py)')
FILES = {'gpu_check.log', 'benchmark_train.log', 'throughput.md', 'throughput.json',
         'benchmark_inference.log', 'latency.md', 'latency.json'}


def rehearse(out, timeout, **env):
    return subprocess.run(['bash', str(SCRIPT), '--rehearse'], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout, env=subprocess_env(OUT=str(out), **env))


def test_rehearsal_runs_every_step_and_writes_what_comes_back(tmp_path):
    out, work = tmp_path / 'out', tmp_path / 'work'
    proc = rehearse(out, timeout=600, WORK=str(work))
    log = (out / 'gpu_check.log').read_text()
    assert proc.returncode == 0, f'exit {proc.returncode}\n{log}\n{proc.stderr[-3000:]}'
    for step in STEPS[:3]:
        assert f'{step}: skipped in rehearsal (' in log
    for step in STEPS[3:]:
        assert f'{step}: ok in ' in log
    assert 'the build would see a GPU: False' in log  # CUDA_VISIBLE_DEVICES= hides it
    # At most 8 files come back from the device's $OUT, and no folders.
    assert {p.name for p in out.iterdir()} == FILES
    # Step 5 is benchmark_train.py's whole run (tests/test_benchmark_train.py has the rest).
    check_throughput_report(out / 'throughput.md', work / 'train')
    assert 'training throughput: ' in (out / 'benchmark_train.log').read_text()
    report = json.loads((out / 'throughput.json').read_text())
    assert list(report['rows']) == ['fast/SimpleBaseline', 'fast/SAM', 'mmpose/SimpleBaseline',
                                    'mmpose/SAM']
    assert report['args']['batch_size'] == '2' and report['args']['iters'] == '2'
    latency = json.loads((out / 'latency.json').read_text())
    assert set(latency['results']) == {'SimpleBaseline', 'SAM'}
    assert '| SAM | fast |' in (out / 'throughput.md').read_text()
    assert '| SAM | fp32 |' in (out / 'latency.md').read_text()
    assert '[gpu_check]' in proc.stdout and '| model | setting |' in proc.stdout


def test_steps_that_do_not_fit_the_budget_are_skipped_with_a_line(tmp_path):
    out = tmp_path / 'out'
    proc = rehearse(out, timeout=120, BUDGET_S='20')
    log = (out / 'gpu_check.log').read_text()
    assert proc.returncode == 3, f'exit {proc.returncode}\n{log}\n{proc.stderr[-3000:]}'
    for step in STEPS[3:]:
        assert f'{step}: skipped: ' in log and 'of the 20 s budget left' in log
    assert {p.name for p in out.iterdir()} == {'gpu_check.log'}

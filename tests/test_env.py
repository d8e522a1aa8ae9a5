"""The environment check passes here, and names the fix for each known breakage (simulated)."""
import importlib
import os
import shutil
import subprocess
import textwrap

import pytest

from conftest import ROOT, run_python
from toolkit import env


def test_check_env_passes_and_lists_registered_modules():
    proc = run_python([ROOT / 'tools' / 'check_env.py'])
    out = proc.stdout
    assert 'FAIL' not in out
    for fact in ('torch 2.', 'mmcv 2.1.0, compiled ops import', 'mmengine 0.10.', 'mmpose 1.'):
        assert fact in out, out
    registered = out.split('registered ')[1].split('\n')[0].split(', ')
    assert {'SAMResNet', 'BilinearHeatmapHead', 'StageAttention', 'StackedPoseDataPreprocessor',
            'ChannelsLastHook', 'LazyRuntimeInfoHook', 'DivergenceHook', 'PreemptionHook',
            'CheckedCocoDataset', 'BF16AmpOptimWrapper', 'stack_collate'} <= set(registered), out


# A meta-path finder that makes one module unimportable, as if it were not installed or broken.
BLOCKER = '''
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == {name!r}:
            raise {error}
sys.meta_path.insert(0, Block())
'''


def test_check_env_cli_fails_with_one_line_fix(tmp_path):
    """The command line, with mmcv's compiled ops unimportable in a fresh process: exit 1, one
    FAIL line with its fix, no traceback."""
    (tmp_path / 'sitecustomize.py').write_text(BLOCKER.format(
        name='mmcv._ext', error="ModuleNotFoundError(\"No module named 'mmcv._ext'\")"))
    proc = run_python([ROOT / 'tools' / 'check_env.py'], check=False,
                      PYTHONPATH=f'{tmp_path}:{ROOT}')
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert 'Traceback' not in proc.stdout + proc.stderr
    fails = [line for line in proc.stdout.splitlines() if 'FAIL' in line]
    assert len(fails) == 1 and (
        "FAIL  mmcv ops               mmcv 2.1.0 has no compiled ops (mmcv-lite, or built without "
        "MMCV_WITH_OPS=1): No module named 'mmcv._ext'. Fix: pip uninstall -y mmcv mmcv-lite && "
        "bash tools/setup_env.sh (builds mmcv 2.1.0 with ops)") in fails[0], proc.stdout


# The same checks in this process, each given an importer that fails for one module.
@pytest.mark.parametrize('blocked,error,expected', [
    ('mmcv._ext', ModuleNotFoundError("No module named 'mmcv._ext'"),
     "FAIL  mmcv ops               mmcv 2.1.0 has no compiled ops (mmcv-lite, or built without "
     "MMCV_WITH_OPS=1): No module named 'mmcv._ext'. Fix: pip uninstall -y mmcv mmcv-lite && "
     "bash tools/setup_env.sh (builds mmcv 2.1.0 with ops)"),
    ('xtcocotools._mask', ValueError('numpy.dtype size changed, may indicate binary '
                                     'incompatibility. Expected 96 from C header, got 88 from '
                                     'PyObject'),
     "Fix: pip install 'numpy<2' 'opencv-python<4.12'"),
    ('pkg_resources', ModuleNotFoundError("No module named 'pkg_resources'"),
     "has no pkg_resources (removed in 82); mmcv's setup.py, openmim and `mmpose::` config bases "
     "need it. Fix: pip install 'setuptools>=77.0.3,<82'"),
])
def test_check_env_fails_with_one_line_fix(blocked, error, expected):
    def import_module(name):
        if name == blocked:
            raise error
        return importlib.import_module(name)

    fails = [r.line() for r in env.run_checks(import_module) if not r.ok]
    assert len(fails) == 1 and 'FAIL' in fails[0] and expected in fails[0], fails
    assert '\n' not in fails[0]


def test_mmcv_outside_mmdet_range(monkeypatch):
    real_version = env._version
    monkeypatch.setattr(env, '_version',
                        lambda dist: '2.2.0' if dist == 'mmcv' else real_version(dist))
    result = env.check_mmcv_range()
    assert not result.ok
    assert result.detail.startswith('mmdet 3.3.0 needs 2.0.0rc4 <= mmcv < 2.2.0, found mmcv 2.2.0')
    assert result.fix == 'pip uninstall -y mmcv && bash tools/setup_env.sh (builds mmcv 2.1.0)'


def test_mmcv_lite_only(monkeypatch):
    monkeypatch.setattr(env, '_version', lambda dist: '2.1.0' if dist == 'mmcv-lite' else None)
    result = env.check_mmcv_ops(importlib.import_module)
    assert not result.ok
    assert 'only mmcv-lite 2.1.0 is installed' in result.detail


def test_version_ordering():
    assert env._parse('2.0.0rc4') < env._parse('2.0.0') < env._parse('2.1.0') < env._parse('2.2.0')


# tools/setup_env.sh's fast path --------------------------------------------------------------
# A stamp file records the fingerprint of what the last successful run installed; a run whose
# fingerprint matches, with a passing environment check, does nothing. Checked on a copy of the
# script in a fake repo whose .venv/bin/python only records its arguments: nothing is installed
# and the real environment (the one running these tests) is never touched.
FAKE_PYTHON = """#!/usr/bin/env bash
echo "$*" >> "$(dirname "$0")/calls.log"
case "$1" in */check_env.py) exit "${FAKE_CHECK_RC:-0}";; esac
exit 3  # anything else (pip, ...) is an installation step: stop the script here
"""


def fingerprint(root) -> str:
    """The script's own fingerprint function, run on ``root``."""
    script = (ROOT / 'tools' / 'setup_env.sh').read_text()
    function = script[script.index('fingerprint() {'):]
    function = function[:function.index('\n}\n') + 3]
    proc = subprocess.run(['bash', '-c', f'set -euo pipefail; ROOT={root}; REQ=$ROOT/requirements;'
                           f'\n{function}\nfingerprint'], capture_output=True, text=True,
                          check=True, env=fake_env())
    return proc.stdout.strip()


def fake_env(**extra) -> dict:
    env_vars = {k: v for k, v in os.environ.items() if k not in ('TORCH_INDEX_URL', 'TORCH_WHEELS')}
    env_vars.update(extra)
    return env_vars


@pytest.fixture
def fake_repo(tmp_path):
    """A copy of tools/setup_env.sh, requirements/ and setup.py, with a recording .venv."""
    shutil.copytree(ROOT / 'requirements', tmp_path / 'requirements')
    shutil.copy(ROOT / 'setup.py', tmp_path / 'setup.py')
    (tmp_path / 'tools').mkdir()
    shutil.copy(ROOT / 'tools' / 'setup_env.sh', tmp_path / 'tools' / 'setup_env.sh')
    python = tmp_path / '.venv' / 'bin' / 'python'
    python.parent.mkdir(parents=True)
    python.write_text(FAKE_PYTHON)
    python.chmod(0o755)
    (tmp_path / '.venv' / '.mmpose-sam-setup').write_text(fingerprint(tmp_path) + '\n')
    return tmp_path


def run_setup(repo, **extra):
    proc = subprocess.run(['bash', str(repo / 'tools' / 'setup_env.sh')], capture_output=True,
                          text=True, timeout=120, env=fake_env(**extra))
    log = repo / '.venv' / 'bin' / 'calls.log'
    return proc, log.read_text().splitlines() if log.exists() else []


def test_setup_with_matching_stamp_only_checks(fake_repo):
    proc, calls = run_setup(fake_repo)
    assert proc.returncode == 0, proc.stderr
    assert 'is up to date' in proc.stderr
    assert calls == [f'{fake_repo}/tools/check_env.py --quiet']


@pytest.mark.parametrize('change', ['requirements', 'torch index', 'failing check', 'no stamp'])
def test_setup_reinstalls_when_anything_changed(fake_repo, change):
    extra = {}
    if change == 'requirements':
        with open(fake_repo / 'requirements' / 'stack.txt', 'a') as f:
            f.write('# a new pin\n')
    elif change == 'torch index':
        extra['TORCH_INDEX_URL'] = 'https://download.pytorch.org/whl/cu126'
    elif change == 'failing check':
        extra['FAKE_CHECK_RC'] = '1'
    else:
        (fake_repo / '.venv' / '.mmpose-sam-setup').unlink()
    proc, calls = run_setup(fake_repo, **extra)
    assert 'is up to date' not in proc.stderr
    assert proc.returncode == 3  # stopped at its first installation step, the build pins
    assert calls[-1].startswith('-m pip --disable-pip-version-check install -q -r '
                                f'{fake_repo}/requirements/build.txt'), calls


def test_real_setup_is_up_to_date():
    """The real script on the real .venv, only where it can do nothing but check: its stamp
    matches and the environment check passes (else it would reinstall into the interpreter
    running these tests)."""
    venv = ROOT / '.venv'
    stamp = venv / '.mmpose-sam-setup'
    if os.environ.get('TORCH_INDEX_URL') or os.environ.get('TORCH_WHEELS'):
        pytest.skip('TORCH_INDEX_URL/TORCH_WHEELS set: the stamp was made without them')
    if not stamp.is_file() or stamp.read_text().strip() != fingerprint(ROOT):
        pytest.skip(f'{stamp} does not match requirements/, setup.py and tools/setup_env.sh: '
                    'running tools/setup_env.sh would reinstall')
    check = subprocess.run([str(venv / 'bin' / 'python'), str(ROOT / 'tools' / 'check_env.py'),
                            '--quiet'], capture_output=True, text=True, timeout=300)
    if check.returncode != 0:
        pytest.skip(f'the environment check fails, so the script would reinstall: {check.stdout}')
    proc = subprocess.run(['bash', str(ROOT / 'tools' / 'setup_env.sh')], capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert 'is up to date' in proc.stderr, textwrap.shorten(proc.stderr, 2000)

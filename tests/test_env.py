"""The environment check passes here, and names the fix for each known breakage (simulated)."""
import importlib
import textwrap

import pytest

from conftest import ROOT, run_python
from mmpose_sam import env


def test_check_env_passes_and_lists_registered_modules():
    proc = run_python([ROOT / 'tools' / 'check_env.py'])
    out = proc.stdout
    assert 'FAIL' not in out
    for fact in ('torch 2.', 'mmcv 2.1.0, compiled ops import', 'mmengine 0.10.', 'mmpose 1.'):
        assert fact in out, out
    registered = out.split('registered ')[1].split('\n')[0].split(', ')
    assert {'SAMResNet', 'BilinearHeatmapHead', 'StageAttention', 'StackedPoseDataPreprocessor',
            'ChannelsLastHook', 'LazyRuntimeInfoHook', 'DivergenceHook', 'PreemptionHook',
            'CheckedCocoDataset', 'AmpOptimWrapper', 'stack_collate'} <= set(registered), out


# A meta-path finder that makes one module unimportable, as if it were not installed or broken.
BLOCKER = '''
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == {name!r}:
            raise {error}
sys.meta_path.insert(0, Block())
'''


@pytest.mark.parametrize('blocked,error,expected', [
    ('mmcv._ext', "ModuleNotFoundError(\"No module named 'mmcv._ext'\")",
     "FAIL  mmcv ops               mmcv 2.1.0 has no compiled ops (mmcv-lite, or built without "
     "MMCV_WITH_OPS=1): No module named 'mmcv._ext'. Fix: pip uninstall -y mmcv mmcv-lite && "
     "bash tools/setup_env.sh (builds mmcv 2.1.0 with ops)"),
    ('xtcocotools._mask', 'ValueError("numpy.dtype size changed, may indicate binary '
     'incompatibility. Expected 96 from C header, got 88 from PyObject")',
     "Fix: pip install 'numpy<2' 'opencv-python<4.12'"),
    ('pkg_resources', "ModuleNotFoundError(\"No module named 'pkg_resources'\")",
     "has no pkg_resources (removed in 82); mmcv's setup.py, openmim and `mmpose::` config bases "
     "need it. Fix: pip install 'setuptools>=77.0.3,<82'"),
])
def test_check_env_fails_with_one_line_fix(tmp_path, blocked, error, expected):
    (tmp_path / 'sitecustomize.py').write_text(BLOCKER.format(name=blocked, error=error))
    proc = run_python([ROOT / 'tools' / 'check_env.py'], check=False,
                      PYTHONPATH=f'{tmp_path}:{ROOT}')
    assert proc.returncode == 1, proc.stdout + proc.stderr
    fails = [line for line in proc.stdout.splitlines() if 'FAIL' in line]
    assert len(fails) == 1 and expected in fails[0], proc.stdout


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


def test_setup_script_is_idempotent_in_seconds():
    """A second run of the set-up finds everything in place (the first ran before the tests)."""
    import subprocess
    import time
    start = time.monotonic()
    proc = subprocess.run(['bash', str(ROOT / 'tools' / 'setup_env.sh')], capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert 'is up to date' in proc.stderr, textwrap.shorten(proc.stderr, 2000)
    assert time.monotonic() - start < 120

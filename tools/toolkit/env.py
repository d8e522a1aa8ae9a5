"""Environment check: versions, compiled mmcv ops, CUDA, and this package's registered modules.

Run it as ``python tools/check_env.py`` (works even when the stack is broken, because it does not
import ``mmpose_sam``'s ``__init__``) or ``python -m toolkit.env`` from ``tools/``.
Each known breakage prints one ``FAIL`` line with its fix, and the exit status is 1.

This module imports nothing of the OpenMMLab stack at module level on purpose: every import is a
check of its own.
"""
import argparse
import importlib
import importlib.metadata as metadata
import importlib.util
import os
import platform
import re
import sys
from pathlib import Path
from typing import Callable, List, NamedTuple, Optional

SETUP_HINT = 'bash tools/setup_env.sh'


class Result(NamedTuple):
    """Outcome of one check: ``ok`` with a short detail, or a problem and its one-line fix."""
    name: str
    ok: bool
    detail: str
    fix: str = ''

    def line(self) -> str:
        if self.ok:
            return f'  ok    {self.name:<22} {self.detail}'
        return f'  FAIL  {self.name:<22} {self.detail} Fix: {self.fix}'


def _version(dist: str) -> Optional[str]:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _parse(version: str):
    """A comparable tuple for versions such as ``2.1.0`` or ``2.0.0rc4`` (rc sorts before final)."""
    match = re.match(r'(\d+)\.(\d+)\.(\d+)(?:rc(\d+))?', version)
    if not match:
        return (0, )
    major, minor, patch, rc = match.groups()
    return (int(major), int(minor), int(patch), int(rc) if rc else 10**6)


def check_pkg_resources(import_module: Callable = importlib.import_module) -> Result:
    try:
        import_module('pkg_resources')
    except ImportError:
        return Result(
            'pkg_resources', False,
            f'setuptools {_version("setuptools")} has no pkg_resources (removed in 82); mmcv\'s '
            'setup.py, openmim and `mmpose::` config bases need it.',
            "pip install 'setuptools>=77.0.3,<82'")
    return Result('pkg_resources', True, f'setuptools {_version("setuptools")}')


def check_numpy_abi(import_module: Callable = importlib.import_module) -> Result:
    numpy_version = _version('numpy')
    try:
        import_module('xtcocotools._mask')
    except ImportError as error:
        return Result('xtcocotools', False, f'xtcocotools does not import ({error}).',
                      "pip install 'xtcocotools>=1.12'")
    except ValueError as error:  # "numpy.dtype size changed, may indicate binary incompatibility"
        return Result(
            'numpy ABI', False,
            f'xtcocotools was built for another numpy ABI than numpy {numpy_version} ({error}).',
            "pip install 'numpy<2' 'opencv-python<4.12'")
    return Result('numpy ABI', True, f'numpy {numpy_version}, xtcocotools {_version("xtcocotools")}')


def check_torch(import_module: Callable = importlib.import_module) -> Result:
    try:
        torch = import_module('torch')
    except ImportError as error:
        return Result('torch', False, f'torch does not import ({error}).', SETUP_HINT)
    cuda = (f'CUDA {torch.version.cuda}, {torch.cuda.device_count()} GPU(s) visible'
            if torch.cuda.is_available() else
            f'no GPU visible (build: CUDA {torch.version.cuda or "none"})')
    return Result('torch', True,
                  f'torch {torch.__version__}, torchvision {_version("torchvision")}, {cuda}')


def _load_gpu_diagnosis():
    """``mmpose_sam/reliability/gpu.py`` loaded by path: importing it through the package would
    import the whole stack, which this check must not need."""
    path = Path(__file__).resolve().parents[2] / 'mmpose_sam' / 'reliability' / 'gpu.py'
    spec = importlib.util.spec_from_file_location('mmpose_sam_gpu_diagnosis', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


gpu_problem = _load_gpu_diagnosis().gpu_problem


def check_gpu(import_module: Callable = importlib.import_module) -> Result:
    """A GPU that ``nvidia-smi`` lists must be usable by this torch: no silent CPU runs."""
    torch = import_module('torch')
    problem = gpu_problem(torch)  # nvidia-smi only runs when torch sees no GPU
    if problem:
        return Result('GPU', False, *problem)
    if os.environ.get('CUDA_VISIBLE_DEVICES') == '':
        return Result('GPU', True, 'CUDA_VISIBLE_DEVICES is empty: the CPU, on purpose')
    if torch.cuda.is_available():
        devices = [f'{torch.cuda.get_device_name(i)} (compute capability '
                   f'{".".join(map(str, torch.cuda.get_device_capability(i)))})'
                   for i in range(torch.cuda.device_count())]
        return Result('GPU', True, ', '.join(devices))
    return Result('GPU', True, 'none listed by nvidia-smi: the CPU')


def check_mmcv_ops(import_module: Callable = importlib.import_module) -> Result:
    version = _version('mmcv')
    lite = _version('mmcv-lite')
    if version is None:
        detail = (f'only mmcv-lite {lite} is installed; `import mmpose.models` needs full mmcv '
                  'with compiled ops.' if lite else 'mmcv is not installed.')
        return Result('mmcv ops', False, detail, SETUP_HINT + ' (builds mmcv 2.1.0 with ops)')
    try:
        import_module('mmcv._ext')
    except ImportError as error:
        return Result(
            'mmcv ops', False,
            f'mmcv {version} has no compiled ops (mmcv-lite, or built without MMCV_WITH_OPS=1): '
            f'{error}.',
            'pip uninstall -y mmcv mmcv-lite && ' + SETUP_HINT + ' (builds mmcv 2.1.0 with ops)')
    return Result('mmcv ops', True, f'mmcv {version}, compiled ops import')


def check_mmcv_range(import_module: Callable = importlib.import_module) -> Result:
    """mmdet asserts ``min <= mmcv < max`` when imported; read its bounds without importing it."""
    mmcv_version, mmdet_version = _version('mmcv'), _version('mmdet')
    if mmdet_version is None:
        return Result('mmcv/mmdet range', True, 'mmdet not installed (optional)')
    if mmcv_version is None:
        return Result('mmcv/mmdet range', True, 'mmcv not installed (see mmcv ops)')
    spec = importlib.util.find_spec('mmdet')
    source = open(spec.origin).read() if spec and spec.origin else ''
    low = re.search(r"mmcv_minimum_version\s*=\s*'([^']+)'", source)
    high = re.search(r"mmcv_maximum_version\s*=\s*'([^']+)'", source)
    if not (low and high):
        return Result('mmcv/mmdet range', True, f'mmdet {mmdet_version} (bounds not found)')
    low, high = low.group(1), high.group(1)
    if not _parse(low) <= _parse(mmcv_version) < _parse(high):
        return Result(
            'mmcv/mmdet range', False,
            f'mmdet {mmdet_version} needs {low} <= mmcv < {high}, found mmcv {mmcv_version}.',
            'pip uninstall -y mmcv && ' + SETUP_HINT + ' (builds mmcv 2.1.0)')
    return Result('mmcv/mmdet range', True,
                  f'mmdet {mmdet_version} accepts mmcv {mmcv_version} ({low} <= v < {high})')


def check_mmpose(import_module: Callable = importlib.import_module) -> Result:
    versions = f'mmengine {_version("mmengine")}, mmpose {_version("mmpose")}'
    try:
        import_module('mmpose.models')
    except Exception as error:  # any failure here means nothing of the plugin can run
        return Result('mmpose', False, f'{versions}: `import mmpose.models` fails ({error!r}).',
                      SETUP_HINT)
    return Result('mmpose', True, versions + ', `import mmpose.models` works')


def check_plugin(import_module: Callable = importlib.import_module) -> Result:
    try:
        plugin = import_module('mmpose_sam')
    except Exception as error:
        return Result('mmpose_sam', False, f'`import mmpose_sam` fails ({error!r}).',
                      'pip install -e . (from the repo root)')
    names = ', '.join(plugin.registered_modules())
    return Result('mmpose_sam', True, f'{plugin.__version__}: registered {names}')


CHECKS = (check_pkg_resources, check_numpy_abi, check_torch, check_gpu, check_mmcv_ops,
          check_mmcv_range, check_mmpose, check_plugin)


def run_checks(import_module: Callable = importlib.import_module) -> List[Result]:
    results = []
    for check in CHECKS:
        results.append(check(import_module))
        # Later checks import what earlier ones found broken; skip them to keep one line a fault.
        if not results[-1].ok and check in (check_numpy_abi, check_torch, check_mmcv_ops,
                                            check_mmpose):
            break
    return results


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--quiet', action='store_true', help='print only failures')
    parser.add_argument('--gpu', action='store_true',
                        help='only check that a listed GPU is usable (what dist_train.sh runs)')
    args = parser.parse_args(argv)
    if args.gpu:  # before a launcher starts its processes: the one-line form of every tool
        results = [check_torch()]
        results += [check_gpu()] if results[0].ok else []
    else:
        results = run_checks()
        if not args.quiet:
            print(f'mmpose-sam environment (Python {platform.python_version()}, {sys.executable})')
    for result in results:
        if args.gpu and not result.ok:
            print(f'error: {result.detail} Fix: {result.fix}', file=sys.stderr)
        elif not (args.quiet and result.ok):
            print(result.line())
    return 0 if all(result.ok for result in results) else 1


if __name__ == '__main__':
    sys.exit(main())

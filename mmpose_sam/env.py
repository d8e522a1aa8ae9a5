"""Environment check: versions, compiled mmcv ops, CUDA, and this package's registered modules.

Run it as ``python tools/check_env.py`` (works even when the stack is broken, because it does not
import ``mmpose_sam``'s ``__init__``) or ``python -m mmpose_sam.env`` on a working stack.
Each known breakage prints one ``FAIL`` line with its fix, and the exit status is 1.

This module imports nothing of the OpenMMLab stack at module level on purpose: every import is a
check of its own.
"""
import argparse
import importlib
import importlib.metadata as metadata
import os
import platform
import re
import shutil
import subprocess
import sys
from typing import Callable, List, NamedTuple, Optional, Tuple

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


# The oldest Linux driver each CUDA major version runs on (NVIDIA's CUDA compatibility tables:
# within a major version, minor-version compatibility lets every 12.x build run on 525.60.13).
# A torch wheel bundles its CUDA runtime, so the driver is the only thing the node must match.
MIN_DRIVER = {11: '450.80.02', 12: '525.60.13', 13: '580.65.06'}
# What tools/setup_env.sh installs for a driver too old for the default (CUDA 13) torch build.
OLDER_DRIVER_TORCH = 'TORCH_INDEX_URL=https://download.pytorch.org/whl/cu126 bash tools/setup_env.sh'


def _driver_tuple(text: str) -> Tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r'\d+', text)[:3])


def listed_gpus(run: Callable = subprocess.run) -> List[Tuple[str, str]]:
    """``(name, driver version)`` of each GPU ``nvidia-smi`` lists; empty without nvidia-smi."""
    if shutil.which('nvidia-smi') is None:
        return []
    try:
        proc = run(['nvidia-smi', '--query-gpu=name,driver_version', '--format=csv,noheader'],
                   capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return []
    if proc.returncode != 0:
        return []
    rows = [line.rsplit(',', 1) for line in proc.stdout.splitlines() if ',' in line]
    return [(name.strip(), driver.strip()) for name, driver in rows]


def _runs_on(arch_list: List[str], major: int, minor: int) -> bool:
    """Whether a build for ``arch_list`` runs on compute capability ``major.minor``: a cubin of
    the same major version and no newer minor, or PTX of an older architecture to JIT from."""
    capability = major * 10 + minor
    cubins = [int(a[3:]) for a in arch_list if a.startswith('sm_') and a[3:].isdigit()]
    ptx = [int(a[8:]) for a in arch_list if a.startswith('compute_') and a[8:].isdigit()]
    return (any(c // 10 == major and c <= capability for c in cubins)
            or any(p <= capability for p in ptx))


def gpu_problem(torch, gpus: List[Tuple[str, str]]) -> Optional[Tuple[str, str]]:
    """``(problem, fix)`` when a GPU is there but this torch cannot use it, else None.

    ``CUDA_VISIBLE_DEVICES=`` (empty) is a deliberate CPU run and never a problem. A GPU torch
    can see is checked against the architectures the build was compiled for (CUDA 13 builds
    dropped Volta and older)."""
    if os.environ.get('CUDA_VISIBLE_DEVICES') == '':
        return None
    build = f'torch {torch.__version__} (CUDA {torch.version.cuda or "none: a CPU build"})'
    if torch.cuda.is_available():
        arch_list = torch.cuda.get_arch_list()
        for index in range(torch.cuda.device_count()):
            major, minor = torch.cuda.get_device_capability(index)
            if arch_list and not _runs_on(arch_list, major, minor):
                return (f'{torch.cuda.get_device_name(index)} (compute capability '
                        f'{major}.{minor}) is not among the architectures {build} was built for '
                        f'({" ".join(arch_list)}).',
                        f'install a torch build for it: {OLDER_DRIVER_TORCH}')
        return None
    if not gpus:
        return None
    names = ', '.join(sorted({name for name, _ in gpus}))
    driver = gpus[0][1]
    listed = f'nvidia-smi lists {len(gpus)} GPU(s) ({names}, driver {driver})'
    if torch.version.cuda is None:
        return (f'{listed} but {build} cannot use them.',
                f'{OLDER_DRIVER_TORCH} (or TORCH_INDEX_URL=.../cu130 with driver >= 580); '
                'CUDA_VISIBLE_DEVICES= runs on the CPU on purpose')
    major = int(torch.version.cuda.split('.')[0])
    needed = MIN_DRIVER.get(major)
    if needed and _driver_tuple(driver) < _driver_tuple(needed):
        wanted = needed
        if _driver_tuple(driver) >= _driver_tuple(MIN_DRIVER[12]):
            fix = (f'{OLDER_DRIVER_TORCH} (a CUDA 12.6 build, driver >= 525), or upgrade the '
                   f'driver to >= {wanted}')
        else:
            fix = f'upgrade the NVIDIA driver to >= {wanted} (or >= 525 with a CUDA 12 build)'
        return (f'{listed} but {build} cannot use them: CUDA {major} builds need driver '
                f'>= {wanted}.', fix + '; CUDA_VISIBLE_DEVICES= runs on the CPU on purpose')
    try:  # the driver is recent enough: CUDA's own reason is the best description
        torch.cuda.init()
        reason = 'torch.cuda.is_available() is False'
    except Exception as error:  # noqa: BLE001 (any initialisation error is the reason)
        reason = str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
    return (f'{listed} but {build} cannot use them: {reason}.',
            'check the driver installation and CUDA_VISIBLE_DEVICES; CUDA_VISIBLE_DEVICES= runs '
            'on the CPU on purpose')


def check_gpu(import_module: Callable = importlib.import_module,
              gpus: Optional[List[Tuple[str, str]]] = None) -> Result:
    """A GPU that ``nvidia-smi`` lists must be usable by this torch: no silent CPU runs."""
    torch = import_module('torch')
    on_purpose = os.environ.get('CUDA_VISIBLE_DEVICES') == ''
    if gpus is None:  # nvidia-smi only matters when torch sees no GPU
        gpus = [] if on_purpose or torch.cuda.is_available() else listed_gpus()
    problem = gpu_problem(torch, gpus)
    if problem:
        return Result('GPU', False, *problem)
    if on_purpose:
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
        for result in results:
            if not result.ok:
                print(f'error: {result.detail} Fix: {result.fix}', file=sys.stderr)
            elif not args.quiet:
                print(result.line())
        return 0 if all(result.ok for result in results) else 1
    results = run_checks()
    if not args.quiet:
        print(f'mmpose-sam environment (Python {platform.python_version()}, {sys.executable})')
    for result in results:
        if not (args.quiet and result.ok):
            print(result.line())
    return 0 if all(result.ok for result in results) else 1


if __name__ == '__main__':
    sys.exit(main())

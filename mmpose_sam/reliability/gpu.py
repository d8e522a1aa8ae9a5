"""Why a GPU that ``nvidia-smi`` lists cannot be used by the installed torch (no silent CPU runs).

Used by :class:`~mmpose_sam.reliability.hooks.DeviceSetupHook` at the start of a run and by the
environment check (``tools/check_env.py``). Imports nothing of the OpenMMLab stack and takes torch
as an argument, so that the environment check can load it by path on a broken stack.
"""
import os
import re
import shutil
import subprocess
from typing import Callable, List, Optional, Tuple

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


def gpu_problem(torch, gpus: Optional[List[Tuple[str, str]]] = None
                ) -> Optional[Tuple[str, str]]:
    """``(problem, fix)`` when a GPU is there but this torch cannot use it, else None.

    ``CUDA_VISIBLE_DEVICES=`` (empty) is a deliberate CPU run and never a problem. A GPU torch
    can see is checked against the architectures the build was compiled for (CUDA 13 builds
    dropped Volta and older); otherwise ``gpus`` (default: :func:`listed_gpus`, only run when
    torch sees no GPU) are the GPUs that should have been seen."""
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
    gpus = listed_gpus() if gpus is None else gpus
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
        if _driver_tuple(driver) >= _driver_tuple(MIN_DRIVER[12]):
            fix = (f'{OLDER_DRIVER_TORCH} (a CUDA 12.6 build, driver >= 525), or upgrade the '
                   f'driver to >= {needed}')
        else:
            fix = f'upgrade the NVIDIA driver to >= {needed} (or >= 525 with a CUDA 12 build)'
        return (f'{listed} but {build} cannot use them: CUDA {major} builds need driver '
                f'>= {needed}.', fix + '; CUDA_VISIBLE_DEVICES= runs on the CPU on purpose')
    try:  # the driver is recent enough: CUDA's own reason is the best description
        torch.cuda.init()
        reason = 'torch.cuda.is_available() is False'
    except Exception as error:  # noqa: BLE001 (any initialisation error is the reason)
        reason = str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
    return (f'{listed} but {build} cannot use them: {reason}.',
            'check the driver installation and CUDA_VISIBLE_DEVICES; CUDA_VISIBLE_DEVICES= runs '
            'on the CPU on purpose')

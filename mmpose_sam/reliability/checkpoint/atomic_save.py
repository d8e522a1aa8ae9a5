"""Local checkpoint saves that never leave a half-written file, with the usual file mode.

The file backend ``atomic_local`` (MMEngine's local backend under a name of its own: ``local``
stays MMEngine's) writes to a hidden temporary file in the same folder, syncs it and renames it
into place, atomic on POSIX; saves choose it with ``backend_args=ATOMIC_BACKEND_ARGS``. The
temporary file is created as ``open(path, 'wb')`` creates one (``0o666`` less the umask, not
``tempfile.mkstemp``'s private ``0o600``) and takes over the mode of the file it replaces. A full
disk is one line, a :class:`DiskFullError` (README "When things go wrong").
"""
import errno
import os
import os.path as osp
import secrets
import shutil
import stat
from pathlib import Path
from typing import Optional, Tuple, Union

from mmengine.fileio import LocalBackend, register_backend

from mmpose_sam.errors import UserError
from mmpose_sam.reliability.checkpoint.integrity import human_size, newest_intact, zip_problem

# What a save passes to choose this backend (``runner.save_checkpoint``, ``mmengine.fileio``).
ATOMIC_BACKEND_ARGS = {'backend': 'atomic_local'}
LAST_CHECKPOINT = 'last_checkpoint'  # in the work dir: the file --resume loads
# errno of a full disk, and of a full quota (which reads the same to the user)
DISK_FULL = {errno.ENOSPC, getattr(errno, 'EDQUOT', errno.ENOSPC)}


class DiskFullError(UserError, OSError):
    """A save that did not fit on the disk (``errno`` is the original one, ``ENOSPC`` or
    ``EDQUOT``); ``str()`` is one line: the file, the space needed and free, what is intact."""


def read_last_checkpoint(folder: str) -> Optional[str]:
    """What ``--resume`` would load: the path in ``folder/last_checkpoint``, ``None`` if none."""
    try:
        with open(osp.join(folder, LAST_CHECKPOINT), encoding='utf-8') as file:
            return file.read().strip() or None
    except OSError:
        return None


def write_last_checkpoint(work_dir: str, path: str) -> None:
    """Point ``work_dir/last_checkpoint`` at ``path``, atomically (MMEngine writes it with
    ``open()``: a kill in between leaves it empty, and ``--resume`` starts from scratch)."""
    AtomicLocalBackend().put_text(path, osp.join(work_dir, LAST_CHECKPOINT))


def _last_good(target: str, existed: bool) -> str:
    """What the message says is intact after a failed save of ``target``."""
    if existed:
        return f'the previous {osp.basename(target)} is intact'
    folder = osp.dirname(target)
    last = read_last_checkpoint(folder)
    if last is None or not osp.isfile(last) or zip_problem(last) is not None:
        last = newest_intact(folder, exclude=[target])
    if last is None:
        return f'there is no earlier checkpoint in {folder}'
    return f'the last good checkpoint, {last}, is intact'


def disk_full_error(target: str, error: OSError, needed: int, existed: bool) -> DiskFullError:
    """The one-line error of a save of ``needed`` bytes to ``target`` that ``error`` stopped."""
    folder = osp.dirname(target)
    try:
        free = human_size(shutil.disk_usage(folder).free)
    except OSError:
        free = 'unknown'
    reason = os.strerror(error.errno) if error.errno else str(error)
    full = DiskFullError(f'{target}: not saved: {reason} (the file needs {human_size(needed)}, '
                         f'{free} free in {folder}); {_last_good(target, existed)}')
    full.errno = error.errno
    return full


_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, 'O_BINARY', 0) | \
    getattr(os, 'O_CLOEXEC', 0)


def _create_temporary(target: str) -> Tuple[int, str]:
    """A new, empty hidden file next to ``target`` (``.<name>.<random>.tmp``): its descriptor and
    path. Created as ``open(target, 'wb')`` creates a new file: mode ``0o666`` less the umask."""
    folder, name = osp.split(target)
    for _ in range(100):
        path = osp.join(folder, f'.{name}.{secrets.token_hex(4)}.tmp')
        try:
            return os.open(path, _FLAGS, 0o666), path
        except FileExistsError:
            continue
    raise FileExistsError(f'{folder}: no free temporary file name for {name}')


def _keep_mode_of(target: str, fd: int) -> None:
    """Give ``fd`` the mode of an existing ``target``, which ``open(target, 'wb')`` would keep."""
    try:
        mode = stat.S_IMODE(os.stat(target).st_mode)
    except FileNotFoundError:
        return
    if hasattr(os, 'fchmod'):  # not on Windows, where there is no umask-style mode to keep
        os.fchmod(fd, mode)


@register_backend('atomic_local')
class AtomicLocalBackend(LocalBackend):
    """MMEngine's local storage backend whose writes never leave a partial file behind
    (``backend_args=ATOMIC_BACKEND_ARGS``)."""

    def put(self, obj: bytes, filepath: Union[str, Path]) -> None:
        """Write ``obj`` to ``filepath`` atomically (temporary file, fsync, rename).

        Raises:
            DiskFullError: the disk (or quota) is full; the temporary file is removed and
                ``filepath`` is as it was.
        """
        target = osp.realpath(filepath)  # as open() does, write through a symlink
        os.makedirs(osp.dirname(target), exist_ok=True)
        existed = osp.isfile(target)
        try:
            fd, tmp_path = _create_temporary(target)
        except OSError as error:  # no room for even a new directory entry
            if error.errno in DISK_FULL:
                raise disk_full_error(target, error, len(obj), existed) from None
            raise
        try:
            with os.fdopen(fd, 'wb') as file:
                _keep_mode_of(target, file.fileno())
                file.write(obj)
                file.flush()
                os.fsync(file.fileno())
            os.replace(tmp_path, target)
        except BaseException as error:
            os.unlink(tmp_path)
            if isinstance(error, OSError) and error.errno in DISK_FULL:
                raise disk_full_error(target, error, len(obj), existed) from None
            raise

    def put_text(self, obj: str, filepath: Union[str, Path], encoding: str = 'utf-8') -> None:
        """Write the text ``obj`` to ``filepath`` atomically."""
        self.put(obj.encode(encoding), filepath)

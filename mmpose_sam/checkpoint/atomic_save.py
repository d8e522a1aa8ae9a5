"""Local checkpoint saves that never leave a half-written file, with the usual file mode.

MMEngine writes a checkpoint with one ``open(path, 'wb')``; an interrupted save (killed job, full
disk) leaves a truncated ``.pth`` that ``--resume`` then picks up. The local storage backend here
writes to a hidden temporary file in the same folder, syncs it and renames it into place, which is
atomic on POSIX: the path holds the old file or the new one, never part of one. ``last_checkpoint``
(``put_text``) goes the same way, so a resume never reads a truncated name.

The temporary file is created the way ``open(path, 'wb')`` creates a file (mode ``0o666``, less
the process umask, which the kernel applies; default ACLs apply as well), and it takes over the
mode of the file it replaces, as ``open`` keeps it: checkpoints are as readable as MMEngine's own
(``tempfile.mkstemp`` would make them private, ``0o600``). No MMEngine release writes atomically.
"""
import os
import os.path as osp
import secrets
import stat
from pathlib import Path
from typing import Tuple, Union

from mmengine.fileio import LocalBackend, register_backend

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


@register_backend('local', force=True, prefixes='')
class AtomicLocalBackend(LocalBackend):
    """MMEngine's local storage backend whose writes never leave a partial file behind."""

    def put(self, obj: bytes, filepath: Union[str, Path]) -> None:
        """Write ``obj`` to ``filepath`` atomically (temporary file, fsync, rename)."""
        target = osp.realpath(filepath)  # as open() does, write through a symlink
        os.makedirs(osp.dirname(target), exist_ok=True)
        fd, tmp_path = _create_temporary(target)
        try:
            with os.fdopen(fd, 'wb') as file:
                _keep_mode_of(target, file.fileno())
                file.write(obj)
                file.flush()
                os.fsync(file.fileno())
            os.replace(tmp_path, target)
        except BaseException:
            os.unlink(tmp_path)
            raise

    def put_text(self, obj: str, filepath: Union[str, Path], encoding: str = 'utf-8') -> None:
        """Write the text ``obj`` to ``filepath`` atomically."""
        self.put(obj.encode(encoding), filepath)

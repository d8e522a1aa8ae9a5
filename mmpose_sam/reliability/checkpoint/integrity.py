"""Checkpoint files that are cut short or damaged: one line with the file's size on disk and the
newest intact checkpoint beside it, instead of torch's ``failed finding central directory``.

torch writes a checkpoint as a zip whose central directory comes last, so a file cut short has
lost it; :func:`zip_problem` reads only that directory (milliseconds for 350 MB), so a file
damaged in the middle passes it and fails when loaded, with the same one line.
"""
import os
import os.path as osp
import pickle
import zipfile
from typing import Iterable, Optional

from mmpose_sam.errors import UserError

# What torch.load raises for a file that is not a complete checkpoint: its zip reader's errors
# (truncated, damaged records), and for a non-zip (legacy or empty) file, the unpickler's.
_ZIP_READER = 'PytorchStreamReader'
_ZIP_MAGIC = b'PK\x03\x04'  # a zip archive's first record
_TRUNCATED_PICKLE = ('Ran out of input', 'pickle data was truncated', 'EOF')
_UNREADABLE, _NOT_ZIP = 'it cannot be read', 'not a zip archive'  # in zip_problem's answers


class IncompleteCheckpointError(UserError, RuntimeError):
    """A checkpoint file that is cut short or damaged. A ``RuntimeError``, what torch raised.

    Attributes:
        problem: what is wrong, e.g. ``56.2 MiB (58,916,864 bytes) on disk, and its zip
            directory, which torch writes last, is missing``.
    """

    problem = ''

    @classmethod
    def of(cls, source: str, problem: str, hint: str) -> 'IncompleteCheckpointError':
        """``<source>: incomplete or corrupt checkpoint: <problem><hint>``."""
        error = cls(f'{source}: incomplete or corrupt checkpoint: {problem}{hint}')
        error.problem = problem
        return error


def human_size(size: int) -> str:
    """``56.2 MiB (58,916,864 bytes)``; ``17 bytes`` below 1 KiB."""
    if size < 1024:
        return '1 byte' if size == 1 else f'{size} bytes'
    value = float(size)
    for unit in ('KiB', 'MiB', 'GiB', 'TiB'):
        value /= 1024
        if value < 1024 or unit == 'TiB':
            break
    return f'{value:.1f} {unit} ({size:,} bytes)'


def zip_problem(path: str) -> Optional[str]:
    """Why ``path`` is not a complete torch checkpoint archive, or ``None``.

    Reads the zip's end record and central directory only (at the end of the file), and checks
    that every record lies inside the file and that there is a ``data.pkl``: what a file cut short
    or never finished fails. A legacy (pre-zip, ``_use_new_zipfile_serialization=False``) file is
    ``'not a zip archive'``, which callers that only look for intact files treat as not intact.
    """
    try:
        size = os.path.getsize(path)
        with open(path, 'rb') as file:
            magic = file.read(4)
    except OSError as error:
        return f'{_UNREADABLE} ({error.strerror or error})'
    if size == 0:
        return '0 bytes on disk (empty)'
    if magic != _ZIP_MAGIC:
        if _ZIP_MAGIC.startswith(magic):
            return f'{human_size(size)} on disk: the first bytes of a zip archive only'
        return f'{human_size(size)} on disk, and {_NOT_ZIP} (no torch checkpoint)'
    try:
        with zipfile.ZipFile(path) as archive:
            records = archive.infolist()
    except Exception:  # zipfile.BadZipFile, or struct/ValueError on a stray end-record signature
        return (f'{human_size(size)} on disk, and its zip directory, which torch writes last, is '
                'missing')
    if not any(osp.basename(record.filename) == 'data.pkl' for record in records):
        return f'{human_size(size)} on disk, and no data.pkl in it (no torch checkpoint)'
    end = max(record.header_offset + record.compress_size for record in records)
    if end > size:
        return (f'{human_size(size)} on disk, but its zip directory lists {human_size(end)} of '
                'records')
    return None


def cut_short(path: str) -> bool:
    """Whether ``path`` is a torch zip archive (or the start of one, or empty) that is not
    complete (:func:`zip_problem`); ``False`` for an unreadable file or a legacy, non-zip one."""
    problem = zip_problem(path)
    return problem is not None and not problem.startswith(_UNREADABLE) and _NOT_ZIP not in problem


def newest_intact(folder: str, exclude: Iterable[str] = ()) -> Optional[str]:
    """The newest (by modification time) ``*.pth`` in ``folder`` that :func:`zip_problem` finds
    complete, not one of ``exclude``; hidden temporary files of :mod:`.atomic_save` are skipped."""
    excluded = {osp.realpath(path) for path in exclude}
    try:
        names = [name for name in os.listdir(folder or '.')
                 if name.endswith('.pth') and not name.startswith('.')]
    except OSError:
        return None
    candidates = []
    for name in names:
        path = osp.join(folder, name)
        try:
            if osp.isfile(path) and osp.realpath(path) not in excluded:
                candidates.append((os.path.getmtime(path), name, path))
        except OSError:
            continue
    for _, _, path in sorted(candidates, reverse=True):
        if zip_problem(path) is None:
            return path
    return None


def is_incomplete_file_error(error: BaseException) -> bool:
    """Whether ``torch.load`` raised ``error`` because the file is cut short or damaged, as far as
    the error says (a small zip cut short raises ``OSError: [Errno 22] Invalid argument``, which
    could be anything: the local loader looks at the file itself, :func:`cut_short`)."""
    if isinstance(error, EOFError):
        return True
    if isinstance(error, RuntimeError):
        return _ZIP_READER in str(error)
    if isinstance(error, pickle.UnpicklingError):  # weights-only wraps the unpickler's errors
        return any(text in str(error) for text in _TRUNCATED_PICKLE)
    return False


def unreadable(error: BaseException) -> str:
    """What is wrong with a file ``torch.load`` raised ``error`` for: the problem an
    :class:`IncompleteCheckpointError` found, else ``torch cannot read it (<its first line>)``."""
    if isinstance(error, IncompleteCheckpointError):
        return error.problem
    text = str(error).strip()
    return f'torch cannot read it ({text.splitlines()[0] if text else type(error).__name__})'


def incomplete_local_file(name: str, path: str, detail: str) -> IncompleteCheckpointError:
    """The error for the local file ``path`` (named ``name`` by the user) that ``torch.load``
    could not read (``detail``: ``torch cannot read it (<torch's error>)``)."""
    problem = zip_problem(path)
    size = human_size(os.path.getsize(path)) if osp.isfile(path) else 'no file'
    if problem is None:  # the directory is fine, a record is not: damaged in the middle
        problem = f'{size} on disk, its zip directory complete, but {detail}'
    elif _NOT_ZIP in problem:  # a legacy (pickle-only) checkpoint, cut short
        problem = f'{size} on disk, a legacy (non-zip) checkpoint whose data ends early: {detail}'
    intact = newest_intact(osp.dirname(path), exclude=[path])
    hint = ': cut short by an interrupted copy, download or save?'
    if intact:
        hint += f' The newest intact checkpoint beside it: {intact}'
    return IncompleteCheckpointError.of(name, problem, hint)


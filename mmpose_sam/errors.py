"""Errors that report a user's mistake (a bad file, option or checkpoint) in one line.

Every such error is a :class:`UserError`: ``str(error)`` is one line that names the file (and the
annotation, image or option) and the problem, e.g.
``data/coco/annotations/train.json: annotation 42: 51 keypoint values, expected 17 x 3 = 51``.

:func:`install_excepthook` chains :func:`one_line_excepthook` in front of ``sys.excepthook``: an
uncaught :class:`UserError` prints ``error: <message>`` instead of a traceback; every other
exception keeps its traceback. The exit status is 1 either way. ``import mmpose_sam`` does not
install it; our tools do, and so does ``mmpose_sam.upstream``, which our configs import, for
MMPose's own ``tools/train.py`` and ``mim train``.
"""
import sys
from pathlib import Path
from typing import Union

# What torch's DataLoader puts in front of an exception it re-raises from a worker process.
_WORKER_TRACEBACK = 'Original Traceback (most recent call last):'


class UserError(Exception):
    """A mistake in the user's input; ``str(error)`` is one line.

    Subclasses take the message as their only argument, so that torch's DataLoader can re-raise
    one that happened in a worker process with its own type.
    """

    # Not named `message`: torch's DataLoader re-creates an exception that has a `message`
    # attribute as `exc_type(message=...)`, which a one-argument constructor rejects.
    @property
    def one_line(self) -> str:
        """The one-line message, also when the error was re-raised from a DataLoader worker
        (whose message is then the worker's whole traceback)."""
        text = str(self)
        if _WORKER_TRACEBACK in text:
            last = text.strip().splitlines()[-1]
            text = last.split(': ', 1)[-1]
        return text


class InvalidInputError(UserError, ValueError):
    """A bad input file: ``<path>: <problem>``."""

    def __init__(self, path: Union[str, Path], problem: str = ''):
        # One argument (the whole message) when re-created by torch's DataLoader or by pickle.
        super().__init__(f'{path}: {problem}' if problem else str(path))
        self.path, self.problem = str(path), problem

    def __reduce__(self):
        return type(self), (self.path, self.problem)


def one_line_excepthook(exc_type, exc_value, traceback, _next=None) -> None:
    """``sys.excepthook`` that prints an uncaught :class:`UserError` as ``error: <message>``."""
    if isinstance(exc_value, UserError):
        print(f'error: {exc_value.one_line}', file=sys.stderr, flush=True)
        return
    (_next or sys.__excepthook__)(exc_type, exc_value, traceback)


def install_excepthook() -> None:
    """Put :func:`one_line_excepthook` in front of the current ``sys.excepthook`` (once)."""
    current = sys.excepthook
    if getattr(current, '_mmpose_sam', False):
        return

    def hook(exc_type, exc_value, traceback):
        one_line_excepthook(exc_type, exc_value, traceback, _next=current)

    hook._mmpose_sam = True
    sys.excepthook = hook

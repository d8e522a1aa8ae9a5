"""Errors that report a user's mistake (a bad file, option or checkpoint) in one line.

``str(error)`` of a :class:`UserError` names the file (and the annotation, image or option) and
the problem. :func:`install_excepthook` prints an uncaught one as ``error: <message>`` (exit
status 1, no traceback); our tools install it, and so does ``mmpose_sam.upstream`` for MMPose's
own tools and ``mim`` (README "When things go wrong").
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
            text = text.strip().splitlines()[-1].split(': ', 1)[-1]
        return text


class InvalidInputError(UserError, ValueError):
    """A bad input file: ``<path>: <problem>``."""

    def __init__(self, path: Union[str, Path], problem: str = ''):
        # One argument (the whole message) when re-created by torch's DataLoader or by pickle.
        super().__init__(f'{path}: {problem}' if problem else str(path))
        self.path, self.problem = str(path), problem

    def __reduce__(self):
        return type(self), (self.path, self.problem)


def install_excepthook() -> None:
    """Make ``sys.excepthook`` print an uncaught :class:`UserError` as ``error: <message>``,
    handing every other exception to the hook that was there (once)."""
    current = sys.excepthook
    if getattr(current, '_mmpose_sam', False):
        return

    def hook(exc_type, exc_value, traceback):
        if isinstance(exc_value, UserError):
            print(f'error: {exc_value.one_line}', file=sys.stderr, flush=True)
        else:
            current(exc_type, exc_value, traceback)

    hook._mmpose_sam = True
    sys.excepthook = hook

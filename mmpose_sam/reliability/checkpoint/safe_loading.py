"""Unpickle checkpoints with torch's weights-only unpickler and the MMEngine allow-list
(:mod:`.allow_list`; ``docs/checkpoints.md``, "Safe loading"): a pickle runs whatever it names,
and MMEngine's own fix for torch >= 2.6 (``weights_only=False``) trusts every file.
``MMPOSE_SAM_TRUST_CHECKPOINTS=1`` (an environment variable, so that it reaches every entry point
and DDP worker) loads with full pickle instead.
"""
import os
import pickle
import re
from contextlib import contextmanager
from typing import Callable, Iterator, TypeVar

import torch
from mmengine.logging import print_log

from mmpose_sam.errors import UserError
from mmpose_sam.reliability.checkpoint.allow_list import MMENGINE_GLOBALS, RefusedGlobal
from mmpose_sam.reliability.checkpoint.embedded_config import defuse
from mmpose_sam.reliability.checkpoint.integrity import (IncompleteCheckpointError,
                                                         is_incomplete_file_error, unreadable)

TRUST_ENV = 'MMPOSE_SAM_TRUST_CHECKPOINTS'

T = TypeVar('T')


class UnsafeCheckpointError(UserError, pickle.UnpicklingError):
    """A checkpoint that pickles something an MMEngine checkpoint never contains."""


def trusted() -> bool:
    """Whether ``MMPOSE_SAM_TRUST_CHECKPOINTS`` asks for full pickle (``1``, ``true``, ``yes``)."""
    return os.environ.get(TRUST_ENV, '').strip().lower() in ('1', 'true', 'yes')


@contextmanager
def mmengine_globals_allowed() -> Iterator[None]:
    """Allow :data:`~.allow_list.MMENGINE_GLOBALS` for weights-only loads in this block only
    (every other ``torch.load`` of the process keeps torch's defaults), leaving the ones a user
    allowed already in place afterwards."""
    allowed = set(torch.serialization.get_safe_globals())
    with torch.serialization.safe_globals([g for g in MMENGINE_GLOBALS if g not in allowed]):
        yield


def _what_it_pickles(message: str) -> str:
    """The global named in torch's weights-only error message, else its own words."""
    match = re.search(r'GLOBAL (\S+) (?:was not an allowed global|whose module)', message)
    if match:
        name = match.group(1)
        # torch writes builtins.exec as `exec`
        return name if '.' in name else f'builtins.{name}'
    detail = message.rsplit('WeightsUnpickler error:', 1)[-1].strip().splitlines()
    return f'an object outside the allow-list ({detail[0] if detail else message})'


def refusal(source: str, what: str) -> str:
    """The one-line message for a refused checkpoint."""
    return (f'{source}: refused to load: it pickles {what}, which an MMEngine checkpoint never '
            f'contains; only if you trust the file: {TRUST_ENV}=1 (loads it with full pickle)')


def load_safely(load: Callable[[bool], T], source: str) -> T:
    """``load(weights_only=True)`` with the MMEngine allow-list (``load(False)`` when
    :func:`trusted`), its embedded config text made plain data (:func:`~.embedded_config.defuse`).

    Args:
        load: reads the checkpoint with ``torch.load(..., weights_only=weights_only)`` or a
            function that passes it on (``torch.hub.load_state_dict_from_url``).
        source: the file or URL, as the user wrote it, for messages.

    Raises:
        UnsafeCheckpointError: the file pickles a global outside the allow-list.
        IncompleteCheckpointError: the file is cut short or damaged.
    """
    try:
        if trusted():
            print_log(f'{source}: loading with full pickle ({TRUST_ENV}=1)', logger='current')
            checkpoint = load(False)
        else:
            with mmengine_globals_allowed():
                checkpoint = load(True)
    except RefusedGlobal as error:
        raise UnsafeCheckpointError(refusal(source, str(error))) from None
    except Exception as error:  # noqa: B902 - re-raised unless it is one of the two below
        if is_incomplete_file_error(error):
            raise IncompleteCheckpointError.of(
                source, unreadable(error),
                ': cut short by an interrupted copy, download or save?') from None
        if isinstance(error, pickle.UnpicklingError):
            raise UnsafeCheckpointError(refusal(source, _what_it_pickles(str(error)))) from None
        raise
    return defuse(checkpoint, source)  # its config text: data, never run (also when trusted)

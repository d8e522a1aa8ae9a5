"""Which checkpoint file a state dict came from, for messages about loading it into a model.

MMEngine reads a checkpoint (``CheckpointLoader``) and loads it into the model
(``load_state_dict``) in two steps that share no file name; between them the state dict is copied
and its keys rewritten (``revise_keys``, MMPose's conversions), but its tensors stay the same
objects. The loaders of this package :func:`remember` each tensor of the ``state_dict`` they read;
:func:`source_of` finds the file again from any of them. Entries go away with their tensors.
"""
import weakref
from dataclasses import dataclass
from typing import Any, Dict, Mapping, Optional, Tuple

import torch


@dataclass(frozen=True)
class CheckpointSource:
    """A checkpoint file as the user named it.

    Args:
        name: path or URL, without a ``partial:`` prefix.
        partial: read through ``partial:``: loading only what fits is intended.
    """
    name: str
    partial: bool = False


# id(tensor) -> (weak reference to that tensor, where it was read from). The reference guards
# against a new tensor that reuses the id of a freed one.
_SOURCES: Dict[int, Tuple[weakref.ref, CheckpointSource]] = {}


def _forget(key: int) -> Any:
    return lambda _: _SOURCES.pop(key, None)


def remember(checkpoint: Any, name: str, partial: bool = False) -> None:
    """Record that the tensors of ``checkpoint`` (its ``state_dict``, or itself when it is a bare
    state dict) were read from ``name``."""
    if not isinstance(checkpoint, Mapping):
        return
    state_dict = checkpoint.get('state_dict', checkpoint)
    if not isinstance(state_dict, Mapping):
        return
    source = CheckpointSource(name, partial)
    for value in state_dict.values():
        if isinstance(value, torch.Tensor):
            key = id(value)
            _SOURCES[key] = (weakref.ref(value, _forget(key)), source)


def source_of(state_dict: Mapping) -> Optional[CheckpointSource]:
    """The file the tensors of ``state_dict`` were read from; ``None`` for a state dict built in
    memory (e.g. another model's ``state_dict()``)."""
    for value in state_dict.values():
        entry = _SOURCES.get(id(value))
        if entry is not None and entry[0]() is value:
            return entry[1]
    return None

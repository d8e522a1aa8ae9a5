"""The globals besides tensors that MMEngine 0.10.7 checkpoints pickle (``meta``, the message
hub's numpy values and ``HistoryBuffer``), allowed for torch's weights-only unpickler: found with
``torch.serialization.get_unsafe_globals_in_checkpoint``; why each is safe: the table in
``docs/checkpoints.md`` ("Safe loading"). ``HistoryBuffer`` and ``getattr`` get checking
stand-ins; numpy globals are allowed under their 1.x and 2.x names. Anything else fails the load,
which :mod:`.safe_loading` turns into one line.
"""
from typing import Any, Callable, List, Tuple

import numpy as np
from mmengine.logging import HistoryBuffer

try:  # numpy >= 2 (numpy 1.26 has it too, as the alias that reads numpy 2 pickles)
    from numpy._core import multiarray
except ImportError:  # pragma: no cover - numpy < 1.26
    from numpy.core import multiarray

# What HistoryBuffer._set_default_statistics() registers: the only statistics methods MMEngine
# pickles (one registered with HistoryBuffer.register_statistics is pickled under its own name,
# which is then refused as any other global).
STATISTICS_METHODS = ('min', 'max', 'current', 'mean')
# The state HistoryBuffer.__getstate__ returns.
_HISTORY_BUFFER_STATE = {'_log_history', '_count_history', 'max_length', 'statistics_methods'}


class RefusedGlobal(Exception):
    """Raised while unpickling for an object an MMEngine checkpoint never contains.

    Not a ``pickle.UnpicklingError``, so that ``torch.load`` lets it through unchanged; ``str()``
    says what the file pickles, e.g. ``builtins.getattr(torch.Tensor, 'tolist')``.
    """


def _name(obj: Any) -> str:
    module, name = getattr(obj, '__module__', None), getattr(obj, '__qualname__', None)
    return f'{module}.{name}' if module and name else repr(obj)


def history_buffer_statistic(owner: Any, name: str) -> Callable:
    """``getattr`` as MMEngine checkpoints use it: ``HistoryBuffer.min/max/current/mean``.

    Args:
        owner: what the pickle asks an attribute of; must be ``HistoryBuffer``.
        name: the attribute; must be one of :data:`STATISTICS_METHODS`.

    Raises:
        RefusedGlobal: for anything else.
    """
    # identity, not ==: the owner can be any object the pickle built, e.g. an array
    if (owner is HistoryBuffer or owner is CheckedHistoryBuffer) and isinstance(name, str) \
            and name in STATISTICS_METHODS:
        return vars(HistoryBuffer)[name]
    raise RefusedGlobal(f'builtins.getattr({_name(owner)}, {name!r})')


class CheckedHistoryBuffer(HistoryBuffer):
    """Stands in for ``HistoryBuffer`` while a checkpoint is unpickled.

    ``HistoryBuffer.__setstate__`` copies the pickled ``statistics_methods`` into a dict shared by
    every buffer of the process (``HistoryBuffer._statistics_methods``, called by name when
    logging) and any other pickled key into the instance. This one first checks that the state
    is what ``HistoryBuffer.__getstate__`` writes, with MMEngine's own statistics methods only,
    then becomes a plain ``HistoryBuffer``: nothing of this class outlives the load, and saving
    the buffer again pickles MMEngine's class.
    """

    def __setstate__(self, state: dict) -> None:
        if not isinstance(state, dict):
            raise RefusedGlobal(f'a HistoryBuffer with a state of type {type(state).__name__}')
        methods = state.get('statistics_methods', {})
        if not isinstance(methods, dict):
            raise RefusedGlobal(f'a HistoryBuffer whose statistics methods are a '
                                f'{type(methods).__name__}')
        unknown = sorted(map(repr, set(state) - _HISTORY_BUFFER_STATE))
        if unknown:
            raise RefusedGlobal(f'a HistoryBuffer with attribute {unknown[0]}')
        for name, method in methods.items():
            if name not in STATISTICS_METHODS or method is not vars(HistoryBuffer)[name]:
                raise RefusedGlobal(f'a HistoryBuffer whose statistics method {name!r} is '
                                    f'{_name(method)}')
        self.__class__ = HistoryBuffer
        HistoryBuffer.__setstate__(self, state)


def _value_dtypes() -> List[Tuple[Any, str]]:
    """numpy's dtype classes of numbers and strings (numpy >= 1.25; none before)."""
    dtypes = getattr(np, 'dtypes', None)
    if dtypes is None:  # pragma: no cover - numpy < 1.25: every dtype is a plain numpy.dtype
        return []
    classes = {getattr(dtypes, name) for name in dtypes.__all__}  # some have two names
    # kinds: bool, int, uint, float, complex, bytes, str
    return [(cls, f'numpy.dtypes.{cls.__name__}') for cls in sorted(classes, key=str)
            if getattr(cls, 'type', None) is not None and np.dtype(cls.type).kind in 'biufcSU']


def _numpy(name: str, obj: Any) -> List[Tuple[Any, str]]:
    """``obj`` under its numpy 1.x and 2.x pickle names."""
    return [(obj, f'numpy.core.multiarray.{name}'), (obj, f'numpy._core.multiarray.{name}')]


# The argument of torch.serialization.safe_globals: (object, name it is pickled under).
MMENGINE_GLOBALS: List[Tuple[Any, str]] = [
    (np.ndarray, 'numpy.ndarray'),
    (np.dtype, 'numpy.dtype'),
    *_value_dtypes(),
    *_numpy('_reconstruct', multiarray._reconstruct),
    *_numpy('scalar', multiarray.scalar),
    (CheckedHistoryBuffer, 'mmengine.logging.history_buffer.HistoryBuffer'),
    (history_buffer_statistic, 'builtins.getattr'),
]

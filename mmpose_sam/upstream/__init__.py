"""The fixes for MMEngine that no registered name can reach: opt-in, version-gated, listed.

``import mmpose_sam`` only registers names. What our configs need and no config key can choose is
patched here, and only by our configs
(``custom_imports = dict(imports=['mmpose_sam', 'mmpose_sam.upstream'])``), so a process that
never reads one of our configs never gets it:

- :mod:`.checkpoint_loading`: MMEngine resolves every checkpoint name (``load_from``,
  ``--resume``, ``tools/test.py``, ``init_model``, the inferencers) through the schemes of its
  ``CheckpointLoader``; ours load weights-only with an allow-list (MMEngine 0.10.7 fails its own
  checkpoints on torch >= 2.6, and loads downloads with full pickle);
- :mod:`.distributed`: ``--launcher pytorch`` initialises the process group before any hook or
  registered class runs, with CUDA assumed (MMEngine 0.10.7).

Each module's ``apply()`` patches only up to :data:`LAST_CHECKED` of its package, the last release
it was checked against; a newer release keeps its own behaviour and this module says so in one
warning, naming the fix to check again. :data:`FIXES` is README's "Upstream fixes" table.

One more process-wide change is ours, not a fix: an uncaught
:class:`~mmpose_sam.errors.UserError` (a bad file, option or checkpoint) prints one line instead
of a traceback, for MMPose's ``tools/train.py``, ``tools/test.py`` and ``mim`` too
(:func:`~mmpose_sam.errors.install_excepthook`).
"""
import warnings
from typing import NamedTuple, Tuple

import mmengine
from mmengine.utils import digit_version

import mmpose_sam  # noqa: F401  (the registered names these fixes serve)
from mmpose_sam.errors import install_excepthook
from mmpose_sam.upstream import checkpoint_loading, distributed


class Fix(NamedTuple):
    """One row of README's "Upstream fixes" table."""
    module: object  # has REPLACES (qualified names), LAST_CHECKED and apply()
    package: str = 'mmengine'

    @property
    def replaces(self) -> Tuple[str, ...]:
        return tuple(self.module.REPLACES)

    @property
    def applies(self) -> bool:
        """Whether the installed version is one the fix was checked against."""
        return digit_version(mmengine.__version__) <= digit_version(self.module.LAST_CHECKED)


FIXES = (Fix(checkpoint_loading), Fix(distributed))

for _fix in FIXES:
    if _fix.applies:
        _fix.module.apply()
    else:
        warnings.warn(f'mmpose_sam.upstream: {_fix.module.__name__} was checked up to '
                      f'{_fix.package} {_fix.module.LAST_CHECKED}, this is '
                      f'{mmengine.__version__}: not applied; check whether that release still '
                      'needs it (README "Upstream fixes")')
install_excepthook()

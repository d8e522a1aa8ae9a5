"""The fixes for MMEngine that no registered name can reach: opt-in (only our configs import this
package), version-gated and listed in :data:`FIXES`, which is README's "Upstream fixes" table.

Importing it also installs :func:`~mmpose_sam.errors.install_excepthook`, so that MMPose's own
``tools/train.py``, ``tools/test.py`` and ``mim`` print a :class:`~mmpose_sam.errors.UserError`
in one line.
"""
import warnings
from typing import NamedTuple, Tuple

import mmengine
from mmengine.utils import digit_version

from mmpose_sam.errors import install_excepthook
from mmpose_sam.upstream import checkpoint_loading, distributed


class Fix(NamedTuple):
    """One row of README's "Upstream fixes" table: a module with ``REPLACES`` (qualified
    names), ``LAST_CHECKED`` (the last MMEngine version it was checked against) and ``apply()``."""
    module: object

    @property
    def replaces(self) -> Tuple[str, ...]:
        return tuple(self.module.REPLACES)

    @property
    def applies(self) -> bool:
        return digit_version(mmengine.__version__) <= digit_version(self.module.LAST_CHECKED)


FIXES = (Fix(checkpoint_loading), Fix(distributed))

for _fix in FIXES:
    if _fix.applies:
        _fix.module.apply()
    else:
        warnings.warn(f'mmpose_sam.upstream: {_fix.module.__name__} was checked up to '
                      f'mmengine {_fix.module.LAST_CHECKED}, this is '
                      f'{mmengine.__version__}: not applied; check whether that release still '
                      'needs it (README "Upstream fixes")')
install_excepthook()

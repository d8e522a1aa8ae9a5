"""MMEngine's checkpoint loaders of local paths, s3/petrel and http(s) replaced by ours, which load
weights-only with MMEngine's allow-list (:mod:`mmpose_sam.reliability.checkpoint.loaders`).

Replaces, in MMEngine <= 0.10.7 (:func:`apply`):

- the ``CheckpointLoader`` schemes ``''`` (local paths), ``(\\S+\\:)?s3://``,
  ``(\\S+\\:)?petrel://``, ``http://`` and ``https://`` (``register_scheme(force=True)``);
- ``mmengine.runner.checkpoint.load_from_http``, which MMEngine's ``torchvision://``,
  ``modelzoo://``, ``mmcls://`` and ``open-mmlab://`` loaders call by its module's name, not
  through the registry.

Why: MMEngine 0.10.7 calls ``torch.load`` without ``weights_only``, so its own training
checkpoints (numpy values, ``HistoryBuffer``) fail to load on torch >= 2.6, whose default is
weights-only; its http loader (``torch.hub.load_state_dict_from_url``) unpickles a downloaded file
with full pickle. Our loaders also name the file in the state dict they read, for the fit check
of ``CheckedTopdownPoseEstimator``, and turn a file cut short into one line.

Why no registered name can do it: a checkpoint is named by a path or URL (``load_from``,
``--resume``, ``tools/test.py CONFIG CHECKPOINT``, ``init_model``, the inferencers,
``init_cfg``), which MMEngine resolves by its prefix; a new prefix (as our ``partial:``) would
have every user rename every checkpoint, and MMEngine's resume finds ``last_checkpoint``'s plain
path itself.

Unnecessary once an MMEngine release loads weights-only with an allow-list: none does up to
0.10.7, the last version checked (its unreleased fix passes ``weights_only=False``, full pickle).
A newer MMEngine gets MMEngine's loaders, and with them no fit check of checkpoint files (which
needs the file name our loaders record): check that version's loaders before raising the bound.
"""
import mmengine
from mmengine.runner import checkpoint as mmengine_checkpoint
from mmengine.runner.checkpoint import CheckpointLoader
from mmengine.utils import digit_version

from mmpose_sam.reliability.checkpoint.loaders import (load_from_ceph, load_from_http,
                                                       load_from_local)

LAST_CHECKED = '0.10.7'
# The schemes replaced, each with our loader.
_LOADERS = {'': load_from_local, r'(\S+\:)?s3://': load_from_ceph,
            r'(\S+\:)?petrel://': load_from_ceph, 'http://': load_from_http,
            'https://': load_from_http}
REPLACES = tuple(f"mmengine.runner.checkpoint.CheckpointLoader._schemes['{prefix}']"
                 for prefix in _LOADERS) + ('mmengine.runner.checkpoint.load_from_http',)


def apply() -> None:
    """Register our local, s3/petrel and http(s) loaders over MMEngine's, and make MMEngine's
    URL schemes download through ours; only on MMEngine <= :data:`LAST_CHECKED`. Idempotent."""
    if digit_version(mmengine.__version__) > digit_version(LAST_CHECKED) or \
            CheckpointLoader._schemes.get('') is load_from_local:
        return
    for prefix, loader in _LOADERS.items():
        CheckpointLoader.register_scheme(prefix, loader, force=True)
    mmengine_checkpoint.load_from_http = load_from_http

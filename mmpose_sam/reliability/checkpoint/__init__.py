"""Checkpoint loading and saving, safe and in one line when something is wrong. See
``docs/checkpoints.md`` for the user's side.

Importing registers names only: the model ``CheckedTopdownPoseEstimator``, the hook
``AtomicCheckpointHook`` (:mod:`mmpose_sam.reliability.hooks.checkpoint_hook`), the file backend
``atomic_local`` and the checkpoint scheme ``partial:``. Our loaders replace MMEngine 0.10.7's
only where :mod:`mmpose_sam.upstream.checkpoint_loading` applies them (our configs import it).

- :mod:`.safe_loading`, :mod:`.allow_list`: checkpoints are unpickled weights-only with the few
  globals MMEngine writes; any other global is refused in one line, unless
  ``MMPOSE_SAM_TRUST_CHECKPOINTS=1``. This also makes MMEngine checkpoints load on torch >= 2.6
  (MMEngine 0.10.7's ``torch.load`` fails there; its unreleased fix trusts every file instead).
- :mod:`.embedded_config`: the config text a checkpoint embeds (which MMEngine executes on
  ``--resume`` and in its inferencers) is read as data and handed back as plain literals; text
  that is not plain data is dropped with a warning.
- :mod:`.loaders`: local, s3/petrel and http(s) loaders that load that way (plus
  ``torchvision://``, ``mmcls://``, ``open-mmlab://`` URLs, which go through http); the
  ``partial:<checkpoint>`` scheme.
- :mod:`.fit`: a checkpoint file that does not fit the pose estimator it is loaded into is refused
  in one line that says what is missing, unexpected or of another shape, and what the checkpoint
  looks like; ``partial:`` loads what fits, on purpose.
- :mod:`.integrity`: a checkpoint cut short (interrupted copy, download or save) or damaged is
  refused in one line with its size on disk and the newest intact checkpoint beside it (for
  ``--resume``: the file to resume from instead).
- :mod:`.atomic_save`: saves through ``atomic_local`` go to a temporary file renamed into place
  (never a truncated checkpoint), with the file mode a plain ``open`` would give; a full disk is
  one line with the space needed and free, and the last good checkpoint, which is intact.
"""
from mmpose_sam.reliability.checkpoint.allow_list import MMENGINE_GLOBALS
from mmpose_sam.reliability.checkpoint.atomic_save import (ATOMIC_BACKEND_ARGS, AtomicLocalBackend,
                                                           DiskFullError)
from mmpose_sam.reliability.checkpoint.fit import (CheckedTopdownPoseEstimator,
                                                   CheckpointMismatchError)
from mmpose_sam.reliability.checkpoint.integrity import IncompleteCheckpointError
from mmpose_sam.reliability.checkpoint.loaders import (PARTIAL_PREFIX, CheckpointNotFoundError,
                                                       load_from_ceph, load_from_http,
                                                       load_from_local, load_from_partial)
from mmpose_sam.reliability.checkpoint.safe_loading import (TRUST_ENV, UnsafeCheckpointError,
                                                            load_safely)

__all__ = [
    'ATOMIC_BACKEND_ARGS', 'AtomicLocalBackend', 'CheckedTopdownPoseEstimator',
    'CheckpointMismatchError', 'CheckpointNotFoundError', 'DiskFullError',
    'IncompleteCheckpointError', 'MMENGINE_GLOBALS', 'PARTIAL_PREFIX', 'TRUST_ENV',
    'UnsafeCheckpointError', 'load_from_ceph', 'load_from_http', 'load_from_local',
    'load_from_partial', 'load_safely'
]

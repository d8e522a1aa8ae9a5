"""Checkpoints loaded as data (weights-only, an allow-list, the embedded config never executed),
refused in one line when they do not fit the model or are cut short, and saved atomically
(README "When things go wrong"; ``docs/checkpoints.md``).

Importing registers names only: ``CheckedTopdownPoseEstimator``, the file backend
``atomic_local`` and the checkpoint scheme ``partial:``; our loaders replace MMEngine's only
through :mod:`mmpose_sam.upstream.checkpoint_loading`.
"""
from mmpose_sam.reliability.checkpoint.atomic_save import (ATOMIC_BACKEND_ARGS, AtomicLocalBackend,
                                                           DiskFullError)
from mmpose_sam.reliability.checkpoint.fit import (CheckedTopdownPoseEstimator,
                                                   CheckpointMismatchError)
from mmpose_sam.reliability.checkpoint.integrity import IncompleteCheckpointError
from mmpose_sam.reliability.checkpoint.loaders import PARTIAL_PREFIX, CheckpointNotFoundError
from mmpose_sam.reliability.checkpoint.safe_loading import TRUST_ENV, UnsafeCheckpointError

__all__ = [
    'ATOMIC_BACKEND_ARGS', 'AtomicLocalBackend', 'CheckedTopdownPoseEstimator',
    'CheckpointMismatchError', 'CheckpointNotFoundError', 'DiskFullError',
    'IncompleteCheckpointError', 'PARTIAL_PREFIX', 'TRUST_ENV', 'UnsafeCheckpointError'
]

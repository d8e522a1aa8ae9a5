"""Checkpoint I/O fixes for MMEngine 0.10.x, applied when ``mmpose_sam`` is imported.

1. **Loading on torch >= 2.6.** ``torch.load`` now defaults to ``weights_only=True``, and MMEngine
   0.10.7 calls it without the argument. Its checkpoints pickle more than tensors (numpy dtypes and
   scalars in ``message_hub``, even ``getattr``), so resuming or testing them fails with
   ``WeightsUnpickler error: Unsupported global``; an allow-list does not reach. MMEngine's own
   (unreleased) upstream fix passes ``weights_only=False`` at its checkpoint-loading call sites;
   this is a backport of that for the file schemes that read MMEngine checkpoints (local paths
   and ``s3://``/``petrel://``), re-registered through MMEngine's ``CheckpointLoader``. Every other
   ``torch.load`` in the process, and the http/``torchvision://`` loaders of ImageNet weights,
   keep torch's safe default. Only load checkpoints you trust, as with any pickle.

2. **No half-written checkpoints.** MMEngine writes a checkpoint with one ``open(path, 'wb')``;
   an interrupted save (killed job, full disk) leaves a truncated ``.pth`` that ``--resume`` then
   picks up. The local storage backend here writes to a temporary file in the same folder and
   renames it into place, which is atomic on POSIX.
"""
import io
import os
import os.path as osp
import tempfile
from pathlib import Path
from typing import Union

import torch
from mmengine.fileio import LocalBackend, get_file_backend, register_backend
from mmengine.runner.checkpoint import CheckpointLoader


@CheckpointLoader.register_scheme(prefixes='', force=True)
def load_from_local(filename: str, map_location=None):
    """MMEngine's local loader with ``weights_only=False`` (MMEngine checkpoints hold more than
    tensors)."""
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'{filename} can not be found.')
    return torch.load(filename, map_location=map_location, weights_only=False)


@CheckpointLoader.register_scheme(prefixes=[r'(\S+\:)?s3://', r'(\S+\:)?petrel://'], force=True)
def load_from_ceph(filename: str, map_location=None, backend: str = 'petrel'):
    """MMEngine's s3/petrel loader with ``weights_only=False``."""
    file_backend = get_file_backend(filename, backend_args={'backend': backend})
    with io.BytesIO(file_backend.get(filename)) as buffer:
        return torch.load(buffer, map_location=map_location, weights_only=False)


@register_backend('local', force=True, prefixes='')
class AtomicLocalBackend(LocalBackend):
    """MMEngine's local storage backend whose ``put`` never leaves a partial file behind."""

    def put(self, obj: bytes, filepath: Union[str, Path]) -> None:
        folder = osp.dirname(osp.abspath(filepath))
        os.makedirs(folder, exist_ok=True)
        fd, tmp_path = tempfile.mkstemp(prefix='.tmp-', suffix=osp.basename(filepath), dir=folder)
        try:
            with os.fdopen(fd, 'wb') as file:
                file.write(obj)
                file.flush()
                os.fsync(file.fileno())
            os.replace(tmp_path, filepath)
        except BaseException:
            os.unlink(tmp_path)
            raise

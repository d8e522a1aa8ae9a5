"""Checkpoint loaders for MMEngine's ``CheckpointLoader`` that load safely
(:func:`~.safe_loading.load_safely`), name the file in the state dict (:func:`~.fit.mark_source`)
and turn a file cut short into one line (:mod:`.integrity`). The local, s3/petrel and http(s)
ones are registered only by :mod:`mmpose_sam.upstream.checkpoint_loading`; ``partial:`` is a new
scheme, registered here. ``pavi://`` and ``open-mmlab://`` names of files in MMEngine's home
folder keep MMEngine's loader.
"""
import io
import os
import os.path as osp
from typing import Any, Callable, Optional
from urllib.parse import urlparse

import torch
from mmengine.dist import get_dist_info
from mmengine.fileio import get_file_backend
from mmengine.runner.checkpoint import CheckpointLoader

from mmpose_sam.errors import UserError
from mmpose_sam.reliability.checkpoint.fit import mark_source
from mmpose_sam.reliability.checkpoint.integrity import (IncompleteCheckpointError, cut_short,
                                                         incomplete_local_file, unreadable,
                                                         zip_problem)
from mmpose_sam.reliability.checkpoint.safe_loading import load_safely

PARTIAL_PREFIX = 'partial:'


class CheckpointNotFoundError(UserError, FileNotFoundError):
    """A local checkpoint path that is not a file."""


def load_from_local(filename: str, map_location: Any = None) -> Any:
    """Load a local checkpoint file.

    Args:
        filename: the file; ``~`` is expanded.
        map_location: as for ``torch.load``.
    """
    path = osp.expanduser(filename)
    if not osp.isfile(path):
        raise CheckpointNotFoundError(f'{filename}: no such checkpoint file')
    try:
        checkpoint = load_safely(
            lambda weights_only: torch.load(path, map_location=map_location,
                                            weights_only=weights_only), filename)
    except Exception as error:  # noqa: B902 - re-raised unless the file is cut short
        # torch's error depends on where the file ends (RuntimeError, OSError EINVAL, EOFError,
        # an unpickling error); the file's zip directory says what happened, cheaply.
        if isinstance(error, IncompleteCheckpointError) or cut_short(path):
            raise incomplete_local_file(filename, path, unreadable(error)) from None
        raise
    return mark_source(checkpoint, filename)


def load_from_ceph(filename: str, map_location: Any = None, backend: str = 'petrel') -> Any:
    """Load a checkpoint from s3 or petrel storage (MMEngine's file backends).

    Args:
        filename: ``s3://...`` or ``petrel://...``, optionally after ``<cluster>:``.
        map_location: as for ``torch.load``.
        backend: MMEngine file backend. Defaults to ``'petrel'``.
    """
    file_backend = get_file_backend(filename, backend_args={'backend': backend})
    data = file_backend.get(filename)

    def load(weights_only: bool) -> Any:
        with io.BytesIO(data) as buffer:
            return torch.load(buffer, map_location=map_location, weights_only=weights_only)

    checkpoint = load_safely(load, filename)
    return mark_source(checkpoint, filename)


def load_from_http(filename: str, map_location: Any = None, model_dir: Optional[str] = None,
                   progress: bool = os.isatty(0)) -> Any:
    """Download a checkpoint into torch's hub cache (once) and load it; in distributed runs rank
    0 downloads first, as in MMEngine.

    Args:
        filename: the URL.
        map_location: as for ``torch.load``.
        model_dir: download folder. Defaults to torch hub's ``checkpoints`` folder.
        progress: show a progress bar. Defaults to whether stdin is a terminal.
    """

    def download_and_load() -> Any:
        try:
            return load_safely(
                lambda weights_only: torch.hub.load_state_dict_from_url(
                    filename, model_dir=model_dir, map_location=map_location, progress=progress,
                    weights_only=weights_only), filename)
        except Exception as error:  # noqa: B902 - re-raised unless the cached copy is cut short
            folder = model_dir or osp.join(torch.hub.get_dir(), 'checkpoints')
            cached = osp.join(folder, osp.basename(urlparse(filename).path))
            if not (isinstance(error, IncompleteCheckpointError) or cut_short(cached)):
                raise
            problem = zip_problem(cached) or unreadable(error)
            raise IncompleteCheckpointError.of(
                filename, f'its downloaded copy {cached}: {problem}',
                ': delete that file and it is downloaded again') from None

    rank, world_size = get_dist_info()
    if rank == 0:
        checkpoint = download_and_load()
    if world_size > 1:
        torch.distributed.barrier()
        if rank > 0:
            checkpoint = download_and_load()
    return mark_source(checkpoint, filename)


# A new name, not one of MMEngine's: registered on import.
@CheckpointLoader.register_scheme(prefixes=PARTIAL_PREFIX)
def load_from_partial(filename: str, map_location: Any = None) -> Any:
    """``partial:<checkpoint>``: ``<checkpoint>`` (any scheme), to be loaded into a pose
    estimator as far as it fits (:mod:`.fit`), e.g. to fine-tune SAM from a SimpleBaseline
    checkpoint: ``load_from = 'partial:work_dirs/sb/epoch_210.pth'``.

    Args:
        filename: ``partial:`` and the checkpoint's name.
        map_location: as for ``torch.load``.
    """
    source = filename[len(PARTIAL_PREFIX):]
    loader: Callable = CheckpointLoader._get_checkpoint_loader(source)
    return mark_source(loader(source, map_location), source, partial=True)

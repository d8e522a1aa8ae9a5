"""MMEngine's checkpoint loaders, re-registered to load safely (:mod:`.safe_loading`).

MMEngine resolves every checkpoint name (``load_from``, ``--resume``, ``tools/test.py``'s
checkpoint, ``init_model``, the inferencers, ``init_cfg=dict(type='Pretrained')``) through the
scheme registry of ``CheckpointLoader``. Registered here, replacing MMEngine 0.10.7's:

- local paths and ``s3://``/``petrel://``: MMEngine calls ``torch.load`` without
  ``weights_only``, so MMEngine checkpoints fail on torch >= 2.6 (torch's new default refuses
  their numpy values), and MMEngine's unreleased fix passes ``weights_only=False``;
- ``http(s)://``, and through it ``torchvision://``, ``modelzoo://``, ``mmcls://`` and
  ``open-mmlab://`` URLs: ``torch.hub.load_state_dict_from_url`` defaults to
  ``weights_only=False``, full pickle on a downloaded file.

Each loads weights-only with the MMEngine allow-list (no upstream release does this yet) and
remembers the file of the tensors it read (:mod:`.provenance`), for the fit check. A file cut short
or damaged is one line (:mod:`.integrity`): its size on disk, and the newest intact checkpoint
beside it (a local file) or the downloaded copy to delete (a URL). One scheme is
new: ``partial:<checkpoint>`` reads ``<checkpoint>`` with its own loader and marks it for loading
only the tensors that fit the model (:mod:`.fit`). ``pavi://`` and ``open-mmlab://`` names of
files in MMEngine's home folder keep MMEngine's loader: ``torch.load`` with torch's default,
weights-only without the allow-list.
"""
import io
import os
import os.path as osp
from typing import Any, Callable, Optional
from urllib.parse import urlparse

import torch
from mmengine.dist import get_dist_info
from mmengine.fileio import get_file_backend
from mmengine.runner import checkpoint as mmengine_checkpoint
from mmengine.runner.checkpoint import CheckpointLoader

from ..errors import UserError
from .integrity import (IncompleteCheckpointError, cut_short, first_line, incomplete_local_file,
                        zip_problem)
from .provenance import remember
from .safe_loading import load_safely

PARTIAL_PREFIX = 'partial:'


class CheckpointNotFoundError(UserError, FileNotFoundError):
    """A local checkpoint path that is not a file."""


@CheckpointLoader.register_scheme(prefixes='', force=True)
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
            detail = error.problem if isinstance(error, IncompleteCheckpointError) else \
                f'torch cannot read it ({first_line(error)})'
            raise incomplete_local_file(filename, path, detail) from None
        raise
    remember(checkpoint, filename)
    return checkpoint


@CheckpointLoader.register_scheme(prefixes=[r'(\S+\:)?s3://', r'(\S+\:)?petrel://'], force=True)
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
    remember(checkpoint, filename)
    return checkpoint


@CheckpointLoader.register_scheme(prefixes=('http://', 'https://'), force=True)
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
            problem = zip_problem(cached) or (
                error.problem if isinstance(error, IncompleteCheckpointError) else
                f'torch cannot read it ({first_line(error)})')
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
    remember(checkpoint, filename)
    return checkpoint


# MMEngine's torchvision://, modelzoo://, mmcls:// and open-mmlab:// loaders turn the name into a
# URL and call `load_from_http` of their module by name, not through the registry.
mmengine_checkpoint.load_from_http = load_from_http


@CheckpointLoader.register_scheme(prefixes=PARTIAL_PREFIX, force=True)
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
    checkpoint = loader(source, map_location)
    remember(checkpoint, source, partial=True)
    return checkpoint

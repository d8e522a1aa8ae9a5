"""Several MMEngine runners in one process, as ``tools/main_job.py``, ``compare.py`` and
``benchmark_train.py`` build them (train, then test; one model, then the other).

MMPose's ``default_runtime.py`` names its visualizer ``'visualizer'``, and MMEngine (0.10.7)
builds a visualizer through ``get_instance``, which hands back an existing instance of that name:
every runner after the first would log its scalars into the first runner's ``vis_data/`` folder
and its own would never be written. MMPose's tools build one runner per process and never meet
this; a runner built here gets a visualizer of its own.
"""
import copy
import itertools
from pathlib import Path
from typing import Optional, Union

from mmengine.config import Config
from mmengine.runner import Runner

_serial = itertools.count()


def build_runner(cfg: Config) -> Runner:
    """``Runner.from_cfg(cfg)`` with a visualizer no other runner of this process shares."""
    cfg = cfg.copy()
    if cfg.get('visualizer') is not None:
        name = cfg.visualizer.get('name', 'visualizer')
        cfg.visualizer = dict(cfg.visualizer, name=f'{name}#{next(_serial)}')
    return Runner.from_cfg(cfg)


def shorten_schedule(cfg: Config, epochs: int) -> None:
    """Train ``cfg`` for ``epochs`` epochs, in place: epoch-based schedulers end there and lose
    their later milestones (iteration-based ones, a warm-up, are left as they are)."""
    cfg.train_cfg.max_epochs = epochs
    for scheduler in cfg.param_scheduler:
        if scheduler.get('by_epoch', True):
            scheduler.end = epochs
            if 'milestones' in scheduler:
                scheduler.milestones = [m for m in scheduler.milestones if m < epochs]


def run_config(cfg: Config, work_dir: Union[str, Path], seed: Optional[int],
               epochs: Optional[int] = None) -> Config:
    """A copy of ``cfg`` for one run of this process: its own work dir, no launcher, ``seed``
    (None: a fresh one) and, with ``epochs``, the schedule shortened to that many epochs."""
    cfg = copy.deepcopy(cfg)
    cfg.work_dir = str(Path(work_dir).resolve())
    cfg.launcher = 'none'
    cfg.randomness = dict(seed=seed)
    if epochs:
        shorten_schedule(cfg, epochs)
    return cfg

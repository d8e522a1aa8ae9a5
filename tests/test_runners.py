"""Runners built one after another in one process (main job, comparison, benchmark) keep their
logs apart."""
from mmengine.config import Config

from conftest import SAM_SAMPLE_CONFIG
from toolkit.runners import build_runner


def test_each_runner_gets_its_own_visualizer_and_log_folder(tmp_path):
    runners = []
    for name in ('first', 'second'):
        cfg = Config.fromfile(SAM_SAMPLE_CONFIG)
        cfg.work_dir = str(tmp_path / name)
        runners.append(build_runner(cfg))
    first, second = (runner.visualizer for runner in runners)
    assert first is not second
    assert first.instance_name.startswith('visualizer#')  # MMPose's name, numbered
    save_dirs = [visualizer._vis_backends['LocalVisBackend']._save_dir
                 for visualizer in (first, second)]
    assert save_dirs[0].startswith(str(tmp_path / 'first'))
    assert save_dirs[1].startswith(str(tmp_path / 'second'))

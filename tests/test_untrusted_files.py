"""Untrusted files are data: an ONNX file's metadata never runs code (its config is JSON, checked
before MMEngine's registries build from it), and a checkpoint cut short is one line with its size
and the intact checkpoint beside it (tools/test.py, the demo, --resume), never a traceback.

Checkpoints that run code on load are in tests/test_safe_loading.py, a full disk during a save in
tests/test_checkpoint.py.
"""
import json
import os
import secrets
import sys
import time
from pathlib import Path

import pytest
import torch
from mmengine.runner.checkpoint import CheckpointLoader, _load_checkpoint

import mmpose_sam.upstream  # noqa: F401  (our loaders, as our configs' custom_imports get them)
from conftest import ROOT, SAMPLE_DIR, SB_SAMPLE_CONFIG, load_tool, run_python, tool_runner
from mmpose_sam.reliability.checkpoint import IncompleteCheckpointError
from mmpose_sam.reliability.checkpoint.integrity import human_size, newest_intact, zip_problem

IMAGE = SAMPLE_DIR / '000000000785.jpg'
RE_EXPORT = 're-export it with tools/deploy/export_onnx.py CONFIG CHECKPOINT --out FILE'
TYPES_ONLY = f"an exported model's config may only name types registered in MMPose ({RE_EXPORT})"

demo = load_tool('demo')


# ONNX metadata ---------------------------------------------------------------------------------
@pytest.fixture(scope='module')
def good_props():
    """The metadata tools/deploy/export_onnx.py writes for the SimpleBaseline sample config."""
    pytest.importorskip('onnxruntime', reason='the deploy extra: pip install -e .[deploy]')
    from mmengine.config import Config
    from mmpose.datasets.datasets.utils import parse_pose_metainfo

    from mmpose_sam.deploy.metadata import pose_metadata
    cfg = Config.fromfile(str(SB_SAMPLE_CONFIG))
    dataset_meta = parse_pose_metainfo(dict(from_file='configs/_base_/datasets/coco.py'))
    return pose_metadata(cfg, dataset_meta, 'epoch_1.pth')


def onnx_file(path: Path, props: dict) -> Path:
    """A tiny ONNX model (``input`` -> ``heatmaps``, an Identity) with ``props`` as metadata."""
    import onnx
    from onnx import TensorProto, helper
    shape = ['batch', 3, 128, 96]
    graph = helper.make_graph(
        [helper.make_node('Identity', ['input'], ['heatmaps'])], 'g',
        [helper.make_tensor_value_info('input', TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info('heatmaps', TensorProto.FLOAT, shape)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 17)])
    for key, value in props.items():
        model.metadata_props.add(key=key, value=value)
    onnx.save(model, str(path))
    return path


@pytest.fixture
def marker(tmp_path):
    """A file that the crafted metadata creates if any of it runs."""
    return tmp_path / 'pwned'


@pytest.fixture
def importable(tmp_path, monkeypatch, marker):
    """The name of a new module on ``sys.path`` that creates the marker when it is imported: a
    name MMEngine's registries would import (``type``, ``_scope_``, ``default_scope``). A new
    name for each test: a module is imported once per process."""
    name = f'pwn_{secrets.token_hex(4)}'
    folder = tmp_path / 'modules'
    folder.mkdir()
    (folder / f'{name}.py').write_text(f'open({str(marker)!r}, "w").close()\n')
    monkeypatch.syspath_prepend(str(folder))
    yield name
    sys.modules.pop(name, None)


def with_config(props: dict, edit) -> dict:
    config = json.loads(props['config'])
    edit(config)
    return {**props, 'config': json.dumps(config)}


def pipeline_step(config: dict, **step) -> None:
    config['test_dataloader']['dataset']['pipeline'][0] = step


def run_onnx_demo(path: Path, tmp_path: Path) -> str:
    with pytest.raises(SystemExit) as exit_info:
        demo.main(['--backend', 'onnxruntime', str(path), '--input', str(IMAGE), '--out-dir',
                   str(tmp_path / 'out')])
    message = str(exit_info.value)
    assert '\n' not in message, message
    return message


def test_a_good_export_is_data_and_builds_the_inferencer(good_props, tmp_path):
    from mmengine.config import Config

    from mmpose_sam.deploy.inferencer import OnnxTopdownInferencer
    from mmpose_sam.deploy.onnxruntime_model import OnnxPoseModel
    path = onnx_file(tmp_path / 'good.onnx', good_props)
    metadata = OnnxPoseModel(path).metadata
    expected = json.loads(json.dumps(Config.fromfile(str(SB_SAMPLE_CONFIG)).to_dict()))
    assert metadata['config'] == expected  # the config's data, tuples as lists
    assert metadata['mmpose_sam.format'] == '2' and metadata['checkpoint'] == 'epoch_1.pth'
    inferencer = OnnxTopdownInferencer(path)
    assert inferencer.cfg.model.head.decoder.type == 'MSRAHeatmap'
    assert [type(t).__name__ for t in inferencer.pipeline.transforms] == [
        'LoadImage', 'GetBBoxCenterScale', 'TopdownAffine', 'PackPoseInputs']
    assert 'custom_imports' not in inferencer.cfg


@pytest.mark.parametrize('case', [
    'python config, format 1', 'python config, format 2', 'dotted type', 'unregistered type',
    'scope', 'default_scope', 'dataset_type'])
def test_crafted_onnx_config_never_runs(good_props, tmp_path, marker, importable, case):
    """The attack of format 1 (``Config.fromstring`` executed the config text) and what
    MMEngine's registries would import or call from a JSON config."""
    exploit = f"_ = __import__('os').system('touch {marker}')\nmodel = dict()\n"
    if case.startswith('python config'):
        props = {**good_props, 'config': exploit, 'mmpose_sam.format': case[-1]}
    elif case == 'dotted type':  # Registry.get falls back to importing and calling the name
        props = with_config(good_props, lambda c: pipeline_step(
            c, type='subprocess.getoutput', cmd=f'touch {marker}'))
    elif case == 'unregistered type':  # ... also without a dot: import_module(name)
        props = with_config(good_props, lambda c: pipeline_step(c, type=importable))
    elif case == 'scope':  # build_from_cfg imports <scope>.registry
        props = with_config(good_props, lambda c: pipeline_step(
            c, type='LoadImage', _scope_=importable))
    elif case == 'default_scope':
        props = with_config(good_props, lambda c: c.update(default_scope=importable))
    else:
        props = with_config(good_props, lambda c: c.update(dataset_type=importable))
    path = onnx_file(tmp_path / 'crafted.onnx', props)
    try:
        message = run_onnx_demo(path, tmp_path)
    finally:  # checked first, whatever else went wrong
        assert not marker.exists(), 'the metadata ran code'
    expected = {
        'python config, format 1':
            'exported by an older mmpose-sam (metadata format 1, which predates the safe format '
            f'2: its config is Python code, which is never run); {RE_EXPORT}',
        'python config, format 2':
            "metadata 'config' is not valid JSON of this layout (Expecting value: line 1 column 1 "
            '(char 0))',
        'dotted type':
            "metadata 'config': test_dataloader.dataset.pipeline[0].type is "
            f"'subprocess.getoutput', not the name of a registered type; {TYPES_ONLY}",
        'unregistered type': f"metadata 'config': type {importable!r} is not registered; "
                             f'{TYPES_ONLY}',
        'scope': "metadata 'config': test_dataloader.dataset.pipeline[0]._scope_ is "
                 f"{importable!r}, not one of mmpose, mmengine; {TYPES_ONLY}",
        'default_scope': f"metadata 'config': default_scope is {importable!r}, not one of "
                         f'mmpose, mmengine; {TYPES_ONLY}',
        'dataset_type': f"metadata 'config': type {importable!r} is not registered; "
                        f'{TYPES_ONLY}',
    }[case]
    assert message == f'error: {path}: {expected}'


def test_custom_imports_of_an_onnx_config_are_not_imported(good_props, tmp_path, marker,
                                                            importable):
    from mmpose_sam.deploy.inferencer import OnnxTopdownInferencer
    props = with_config(good_props, lambda c: c.update(
        custom_imports=dict(imports=[importable], allow_failed_imports=False)))
    inferencer = OnnxTopdownInferencer(onnx_file(tmp_path / 'imports.onnx', props))
    assert 'custom_imports' not in inferencer.cfg and not marker.exists()


@pytest.mark.parametrize('key, value, problem', [
    ('codec', None, "metadata has no 'codec' (not written by tools/deploy/export_onnx.py, or "
                    f'damaged: {RE_EXPORT})'),
    ('mean', '[1, 2,', "metadata 'mean' is not valid JSON of this layout (Expecting value: line 1 "
                       'column 7 (char 6))'),
    ('input_size', '[96]', "metadata 'input_size' is not a [w, h] pair of positive integers: "
                           "'[96]'"),
    ('config', '"model"', "metadata 'config' is not a config (an object with a \"model\"): "
                          "'\"model\"'"),
    ('dataset_meta', '{"sigmas": {"__ndarray__": [1], "dtype": "O"}}',
     "metadata 'dataset_meta' is not valid JSON of this layout (a bad array (ValueError: arrays "
     'of dtype object are not allowed))'),
    ('mmpose_sam.format', 'two', "metadata 'mmpose_sam.format' is 'two', not a format number"),
    ('mmpose_sam.format', '3', 'metadata format 3 is newer than this mmpose-sam reads (2)'),
], ids=['missing key', 'bad JSON', 'bad value', 'config not an object', 'object array',
        'bad format', 'newer format'])
def test_onnx_metadata_not_of_our_layout_is_one_line(good_props, tmp_path, key, value, problem):
    props = dict(good_props)
    if value is None:
        del props[key]
    else:
        props[key] = value
    path = onnx_file(tmp_path / 'bad.onnx', props)
    assert run_onnx_demo(path, tmp_path) == f'error: {path}: {problem}'


def test_crafted_onnx_file_in_a_child_process(good_props, tmp_path, marker):
    exploit = f"_ = __import__('os').system('touch {marker}')\nmodel = dict()\n"
    path = onnx_file(tmp_path / 'old.onnx', {**good_props, 'config': exploit,
                                             'mmpose_sam.format': '1'})
    proc = run_python([ROOT / 'tools' / 'demo.py', '--backend', 'onnxruntime', path, '--input',
                       IMAGE, '--out-dir', tmp_path / 'out'], check=False, timeout=300)
    assert not marker.exists(), 'the metadata ran code'
    assert proc.returncode == 1 and 'Traceback' not in proc.stderr, proc.stderr[-3000:]
    assert proc.stderr.strip().splitlines()[-1] == (
        f'error: {path}: exported by an older mmpose-sam (metadata format 1, which predates the '
        f'safe format 2: its config is Python code, which is never run); {RE_EXPORT}')


# Checkpoints cut short -------------------------------------------------------------------------
def tiny_checkpoint(path: Path, epoch: int = 1, mtime: float = None) -> Path:
    torch.save({'meta': {'epoch': epoch}, 'state_dict': {'w': torch.ones(4096)}}, path)
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return path


def cut_short(path: Path, keep: float = 0.5) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[:int(len(data) * keep)])
    return path


def incomplete(path: Path, intact=None) -> str:
    """The one-line message for the cut-short ``path`` (loaded, or resumed from)."""
    problem = (f'{human_size(path.stat().st_size)} on disk, and its zip directory, which torch '
               'writes last, is missing')
    hint = ': cut short by an interrupted copy, download or save?'
    if intact:
        hint += f' The newest intact checkpoint beside it: {intact}'
    return f'{path}: incomplete or corrupt checkpoint: {problem}{hint}'


@pytest.fixture
def work_dir(tmp_path):
    """epoch_1.pth (intact), epoch_2.pth (cut short, the newest), epoch_3.pth (intact but
    older than both: the newest intact one is picked by time, not by name)."""
    now = time.time()
    tiny_checkpoint(tmp_path / 'epoch_3.pth', 3, now - 300)
    tiny_checkpoint(tmp_path / 'epoch_1.pth', 1, now - 200)
    cut_short(tiny_checkpoint(tmp_path / 'epoch_2.pth', 2))
    return tmp_path


def test_human_size():
    assert human_size(17) == '17 bytes'
    assert human_size(58916864) == '56.2 MiB (58,916,864 bytes)'
    assert human_size(3 * 2**30) == '3.0 GiB (3,221,225,472 bytes)'


def test_cut_short_checkpoint_is_one_line_naming_the_intact_one(work_dir):
    path = work_dir / 'epoch_2.pth'
    with pytest.raises(IncompleteCheckpointError) as error:
        _load_checkpoint(str(path))
    assert str(error.value) == incomplete(path, work_dir / 'epoch_1.pth')
    assert isinstance(error.value, RuntimeError)  # what torch raised, for callers
    assert (work_dir / 'epoch_1.pth').stat().st_size > path.stat().st_size  # nothing removed


@pytest.mark.parametrize('keep', [0.0, 0.0001, 0.001, 0.5, 0.999])
def test_cut_anywhere(tmp_path, keep):
    """torch's error depends on where the file ends (EOFError, an unpickling error, OSError
    EINVAL, RuntimeError), the message does not."""
    path = cut_short(tiny_checkpoint(tmp_path / 'ckpt.pth'), keep)
    with pytest.raises(IncompleteCheckpointError) as error:
        _load_checkpoint(str(path))
    start = f'{path}: incomplete or corrupt checkpoint: '
    hint = ': cut short by an interrupted copy, download or save?'
    if keep == 0:
        assert str(error.value) == f'{start}0 bytes on disk (empty){hint}'
    elif keep == 0.0001:  # 1 byte, "P"
        assert str(error.value) == f'{start}1 byte on disk: the first bytes of a zip archive only' \
                                   f'{hint}'
    else:
        assert str(error.value) == incomplete(path)


def test_legacy_checkpoint_cut_short(tmp_path):
    path = tmp_path / 'legacy.pth'
    torch.save({'state_dict': {'w': torch.ones(10)}}, path, _use_new_zipfile_serialization=False)
    cut_short(path)
    with pytest.raises(IncompleteCheckpointError) as error:
        _load_checkpoint(str(path))
    assert str(error.value) == (
        f'{path}: incomplete or corrupt checkpoint: {human_size(path.stat().st_size)} on disk, a '
        'legacy (non-zip) checkpoint whose data ends early: torch cannot read it (EOFError): cut '
        'short by an interrupted copy, download or save?')


def test_zip_check_reads_the_directory_only(tmp_path):
    big = tmp_path / 'big.pth'
    torch.save({'state_dict': {f'w{i}': torch.zeros(2**16) for i in range(400)}}, big)  # 100 MiB
    start = time.perf_counter()
    assert zip_problem(str(big)) is None
    assert time.perf_counter() - start < 0.5
    assert zip_problem(str(cut_short(big))).endswith('is missing')
    assert newest_intact(str(tmp_path)) is None


def test_downloaded_copy_cut_short_names_the_file_to_delete(tmp_path, monkeypatch):
    def download(url, dst, *args, **kwargs):  # no network in tests; an interrupted download
        tiny_checkpoint(Path(dst))
        cut_short(Path(dst))

    monkeypatch.setattr(torch.hub, 'download_url_to_file', download)
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch_home'))
    url = 'https://example.com/model.pth'
    with pytest.raises(IncompleteCheckpointError) as error:
        CheckpointLoader.load_checkpoint(url)
    cached = tmp_path / 'torch_home' / 'hub' / 'checkpoints' / 'model.pth'
    assert str(error.value) == (
        f'{url}: incomplete or corrupt checkpoint: its downloaded copy {cached}: '
        f'{human_size(cached.stat().st_size)} on disk, and its zip directory, which torch writes '
        'last, is missing: delete that file and it is downloaded again')


def test_demo_with_a_cut_short_checkpoint_is_one_line(work_dir, tmp_path):
    path = work_dir / 'epoch_2.pth'
    with pytest.raises(SystemExit) as exit_info:
        demo.main([str(SB_SAMPLE_CONFIG), str(path), '--input', str(IMAGE), '--device', 'cpu',
                   '--out-dir', str(tmp_path / 'out')])
    assert str(exit_info.value) == 'error: ' + incomplete(path, work_dir / 'epoch_1.pth')


def test_tools_test_with_a_cut_short_checkpoint_is_one_line(work_dir, tmp_path):
    """The command-line test of tools/test.py (exit 1, one line, no traceback); other tests
    of what it stops with build its runner in their process (conftest's tool_runner)."""
    path = work_dir / 'epoch_2.pth'
    proc = run_python([ROOT / 'tools' / 'test.py', SB_SAMPLE_CONFIG, path, '--work-dir',
                       tmp_path / 'test_work'], check=False, timeout=600)
    assert proc.returncode == 1 and 'Traceback' not in proc.stderr, proc.stderr[-3000:]
    assert proc.stderr.strip().splitlines()[-1] == \
        'error: ' + incomplete(path, work_dir / 'epoch_1.pth')


def test_resume_from_a_cut_short_checkpoint_names_the_one_to_resume_from(work_dir):
    path = work_dir / 'epoch_2.pth'
    (work_dir / 'last_checkpoint').write_text(str(path))  # what --resume reads
    runner = tool_runner(SB_SAMPLE_CONFIG, work_dir, resume=True)
    with pytest.raises(IncompleteCheckpointError) as error:
        runner.train()
    assert str(error.value) == incomplete(path, work_dir / 'epoch_1.pth')  # the one to resume from
    assert sorted(p.name for p in work_dir.glob('*.pth')) == \
        ['epoch_1.pth', 'epoch_2.pth', 'epoch_3.pth']  # nothing removed

"""ONNX export (tools/deploy/export_onnx.py) and the onnxruntime backend (mmpose_sam.deploy,
tools/demo.py --backend onnxruntime): parity with PyTorch on the bundled images for both sample
models (trained checkpoints: an untrained network's flat heatmaps make keypoints meaningless),
the recorded metadata, the one-line errors, and everything else without onnx/onnxruntime."""
import contextlib
import io
import json
import sys

import numpy as np
import pytest
import torch

from conftest import load_tool, ROOT, run_python, SAMPLE_DIR
from mmpose_sam.deploy.metadata import from_json, to_json

pytest.importorskip('onnxruntime', reason='the deploy extra: pip install -e .[deploy]')

DET_FILE = SAMPLE_DIR / 'test_coco_det_AP_H_56.json'
MODELS = ('SAM', 'SimpleBaseline')



demo = load_tool('demo')
export_tool = load_tool('deploy/export_onnx')


@pytest.fixture(scope='module')
def exported(trained_checkpoints, module_mktemp):
    """``{name: (config, checkpoint, onnx file, the export tool's summary line)}``."""
    out = module_mktemp('onnx')
    result = {}
    for name in MODELS:
        config, checkpoint = trained_checkpoints[name]
        onnx_file = out / f'{name}.onnx'
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            export_tool.main([str(config), str(checkpoint), '--out', str(onnx_file)])
        result[name] = (config, checkpoint, onnx_file, printed.getvalue().strip().splitlines()[-1])
    return result


@pytest.fixture(scope='module')
def pytorch_models(exported):
    from mmpose.apis import init_model
    return {name: init_model(str(config), str(checkpoint), device='cpu')
            for name, (config, checkpoint, _, _) in exported.items()}


def gt_crops(model):
    """Model inputs (normalised) and crops (BGR uint8) of the 14 annotated people of the sample,
    through MMPose's test pipeline and the model's data preprocessor."""
    from mmpose_sam.apis import load_image, topdown_inputs
    annotations = json.loads((SAMPLE_DIR / 'test_coco.json').read_text())
    inputs, crops = [], []
    for image in annotations['images']:
        boxes = np.array([[x, y, x + w, y + h] for x, y, w, h in
                          (a['bbox'] for a in annotations['annotations']
                           if a['image_id'] == image['id'])], np.float32)
        batch, image_crops = topdown_inputs(model, load_image(SAMPLE_DIR / image['file_name']),
                                            boxes)
        inputs.append(batch)
        crops += image_crops
    return torch.cat(inputs), crops


def test_export_summary_line_and_onnx_file(exported):
    import onnx
    for name, (_, checkpoint, onnx_file, line) in exported.items():
        assert line.startswith(f'{onnx_file}: ')
        assert ', opset 17, input (batch, 3, 128, 96) -> heatmaps (batch, 17, 32, 24), ' \
               'exported in ' in line
        assert line.endswith('on 2 random crops: ok')
        proto = onnx.load(str(onnx_file), load_external_data=False)
        (graph_input, ), (graph_output, ) = proto.graph.input, proto.graph.output
        dims = [d.dim_param or d.dim_value for d in graph_input.type.tensor_type.shape.dim]
        assert (graph_input.name, dims) == ('input', ['batch', 3, 128, 96])
        dims = [d.dim_param or d.dim_value for d in graph_output.type.tensor_type.shape.dim]
        assert (graph_output.name, dims) == ('heatmaps', ['batch', 17, 32, 24])


def test_metadata_describes_the_model(exported, pytorch_models):
    from mmengine.config import Config

    from mmpose_sam.deploy.onnxruntime_model import OnnxPoseModel
    config, checkpoint, onnx_file, _ = exported['SAM']
    metadata = OnnxPoseModel(onnx_file).metadata
    assert metadata['input_size'] == [96, 128] and metadata['heatmap_size'] == [24, 32]
    assert metadata['mean'] == [123.675, 116.28, 103.53]
    assert metadata['std'] == [58.395, 57.12, 57.375] and metadata['bgr_to_rgb'] is True
    assert metadata['keypoint_names'][:3] == ['nose', 'left_eye', 'right_eye']
    assert len(metadata['keypoint_names']) == 17 and len(metadata['skeleton_links']) == 19
    assert metadata['codec'] == dict(type='MSRAHeatmap', input_size=[96, 128],
                                     heatmap_size=[24, 32], sigma=1, unbiased=True,
                                     blur_kernel_size=3)
    assert metadata['test_cfg']['flip_test'] is False
    assert metadata['checkpoint'] == checkpoint.name
    # The config is data (JSON), never MMEngine's config parser (tests/test_untrusted_files.py).
    assert metadata['mmpose_sam.format'] == '2' and isinstance(metadata['config'], dict)
    rebuilt = Config(metadata['config'])
    assert rebuilt.model.backbone.type == 'SAMResNet'
    expected = Config.fromfile(str(config))
    assert rebuilt.test_dataloader.dataset.pipeline == \
        json.loads(json.dumps(expected.test_dataloader.dataset.pipeline))  # tuples as lists
    expected_meta = pytorch_models['SAM'].dataset_meta
    assert metadata['dataset_meta'].keys() == expected_meta.keys()
    for key, value in expected_meta.items():
        if isinstance(value, np.ndarray):
            np.testing.assert_array_equal(metadata['dataset_meta'][key], value)
            assert metadata['dataset_meta'][key].dtype == value.dtype
        elif key in ('flip_pairs', 'skeleton_links'):  # tuples come back as lists
            assert [tuple(v) for v in metadata['dataset_meta'][key]] == list(value)
        else:
            assert metadata['dataset_meta'][key] == value, key


@pytest.mark.parametrize('name', MODELS)
def test_heatmap_parity_on_the_bundled_people(exported, pytorch_models, name):
    """Heatmaps of the 14 annotated people in one batch (the file was traced with batch 1)."""
    from mmpose_sam.deploy.export import HeatmapNetwork
    from mmpose_sam.deploy.onnxruntime_model import OnnxPoseModel
    model, onnx_model = pytorch_models[name], OnnxPoseModel(exported[name][2])
    inputs, crops = gt_crops(model)
    assert inputs.shape == (14, 3, 128, 96)
    # The metadata's normalisation is the data preprocessor's.
    np.testing.assert_allclose(onnx_model.preprocess(crops), inputs.numpy(), atol=1e-5)
    with torch.no_grad():
        expected = HeatmapNetwork(model)(inputs).numpy()
    actual = onnx_model.run(inputs.numpy())
    assert actual.shape == expected.shape == (14, 17, 32, 24)
    assert expected.max() > 0.3  # trained: clear peaks, so keypoints below mean something
    # README states 1.1e-6 (measured on both sample models); 1e-5 leaves room for another CPU's
    # kernels, and is 100x below what a wrong normalisation or a bf16 export would give.
    assert np.abs(actual - expected).max() < 1e-5


@pytest.mark.parametrize('name', MODELS)
@pytest.mark.parametrize('flip_test', [False, True])
def test_keypoint_parity_through_the_inferencers(exported, name, flip_test):
    """The demo's two backends on the bundled images and detections: the same people, the same
    scores, and keypoints within 1e-3 image pixels wherever the score is 0.1 or more (README
    states 6.1e-5; flip test: the onnxruntime side flips and averages itself). Below that score
    the heatmap is nearly flat and DARK's refinement divides by its near-zero curvature, which
    turns the backends' 1e-6 heatmap difference into up to 0.24 px on a 0.035-score keypoint: not
    a parity defect, and not a keypoint anyone draws or that moves COCO AP."""
    from mmpose_sam.apis import BBoxFile, TopdownInferencer
    from mmpose_sam.deploy.inferencer import OnnxTopdownInferencer
    config, checkpoint, onnx_file, _ = exported[name]
    from mmengine.config import Config
    options = {'model.test_cfg.flip_test': flip_test}
    cfg = Config.fromfile(str(config))
    cfg.merge_from_dict(options)
    backends = [TopdownInferencer(cfg, str(checkpoint), 'cpu', bbox_file=BBoxFile(DET_FILE)),
                OnnxTopdownInferencer(onnx_file, cfg_options=options,
                                      bbox_file=BBoxFile(DET_FILE))]
    pytorch, onnxruntime = (list(backend(str(SAMPLE_DIR), bbox_thr=0.3)) for backend in backends)
    assert len(pytorch) == len(onnxruntime) == 4
    people = checked = 0
    for expected, actual in zip(pytorch, onnxruntime):
        (expected, ), (actual, ) = expected['predictions'], actual['predictions']
        assert [p['bbox'] for p in actual] == [p['bbox'] for p in expected]
        keypoints = [np.array([p['keypoints'] for p in result]) for result in (expected, actual)]
        scores = [np.array([p['keypoint_scores'] for p in result]) for result in (expected, actual)]
        assert np.abs(scores[0] - scores[1]).max() < 1e-5
        confident = scores[0] >= 0.1
        assert np.abs(keypoints[0] - keypoints[1])[confident].max(initial=0) < 1e-3
        people, checked = people + len(actual), checked + confident.sum()
    assert people == 33  # detections with score >= 0.3
    assert checked >= 200, checked  # of 561 keypoints; many detections are people never trained on


def test_onnxruntime_demo_writes_pictures_and_predictions(exported, tmp_path, capsys):
    onnx_file = exported['SAM'][2]
    demo.main(['--backend', 'onnxruntime', str(onnx_file), '--input', str(SAMPLE_DIR),
               '--out-dir', str(tmp_path)])
    import cv2
    for image in sorted(SAMPLE_DIR.glob('*.jpg')):
        picture = cv2.imread(str(tmp_path / 'visualizations' / image.name))
        assert picture.shape == cv2.imread(str(image)).shape
        people = json.loads((tmp_path / 'predictions' / f'{image.stem}.json').read_text())
        assert len(people) == 1 and np.array(people[0]['keypoints']).shape == (17, 2)
    assert capsys.readouterr().out.strip().splitlines()[-1] == (
        f'{SAMPLE_DIR}: 4 images, 4 people (whole image) -> {tmp_path / "visualizations"}, '
        f'{tmp_path / "predictions"}')


def test_bad_onnx_files_are_one_error_line(tmp_path):
    import onnx
    from onnx import TensorProto, helper
    text = tmp_path / 'notes.onnx'
    text.write_text('not a model')
    foreign = tmp_path / 'identity.onnx'  # a valid ONNX model without our metadata
    graph = helper.make_graph(
        [helper.make_node('Identity', ['x'], ['y'])], 'g',
        [helper.make_tensor_value_info('x', TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info('y', TensorProto.FLOAT, [1])])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid('', 17)]), str(foreign))
    for path, problem in [
        (tmp_path / 'missing.onnx', 'no such file'),
        (text, 'not an ONNX model onnxruntime can load (InvalidProtobuf: '),
        (foreign, 'no mmpose-sam metadata (export the model with tools/deploy/export_onnx.py)'),
    ]:
        with pytest.raises(SystemExit) as exit_info:
            demo.main(['--backend', 'onnxruntime', str(path), '--input', str(SAMPLE_DIR)])
        message = str(exit_info.value)
        assert message.startswith(f'error: {path}: {problem}') and '\n' not in message


def test_metadata_json_round_trip():
    value = {'ids': {0: 'nose', 1: 'eye'}, 'colors': np.array([[1, 2, 3]], np.uint8),
             'sigmas': np.array([0.025, 0.5], np.float32), 'links': [(0, 1)], 'n': np.int64(3)}
    back = from_json(to_json(value))
    assert back['ids'] == {0: 'nose', 1: 'eye'} and back['links'] == [[0, 1]] and back['n'] == 3
    for key in ('colors', 'sigmas'):
        np.testing.assert_array_equal(back[key], value[key])
        assert back[key].dtype == value[key].dtype


# Without the deploy extra ----------------------------------------------------------------------
# onnx and onnxruntime made unimportable, as if not installed: a None in sys.modules makes
# `import onnx` fail and importlib.util.find_spec('onnx') return None (torch asks it at import).
BLOCKER = "import sys; sys.modules.update(dict.fromkeys(('onnx', 'onnxruntime')))\n"
HALTED = 'import of {} halted; None in sys.modules'


def test_without_onnx_everything_else_works_and_export_says_how_to_install(
        trained_checkpoints, tmp_path, monkeypatch):
    (tmp_path / 'sitecustomize.py').write_text(BLOCKER)
    blocked = dict(PYTHONPATH=f'{tmp_path}:{ROOT}')
    config, checkpoint = trained_checkpoints['SAM']

    proc = run_python([ROOT / 'tools' / 'deploy' / 'export_onnx.py', config, checkpoint, '--out',
                       tmp_path / 'm.onnx'], check=False, timeout=300, **blocked)
    assert proc.returncode == 1 and 'Traceback' not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == (
        f'error: ONNX export needs the onnx package, which does not import here '
        f'({HALTED.format("onnx")}): pip install -e .[deploy]')

    # The demo in this process, with the same blocker (its command line's exit 1 and one line
    # are test_demo.py's).
    for name in ('onnx', 'onnxruntime'):
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(SystemExit) as stopped:
        load_tool('demo').main(['--backend', 'onnxruntime', str(tmp_path / 'm.onnx'), '--input',
                                str(SAMPLE_DIR / '000000000785.jpg')])
    assert str(stopped.value) == (
        'error: the onnxruntime backend needs the onnxruntime package, which does not import here '
        f'({HALTED.format("onnxruntime")}): pip install -e .[deploy]')
    monkeypatch.undo()

    # The PyTorch demo, and every package module that does not run ONNX itself, import and run.
    proc = run_python(['-c', 'import onnxruntime'], check=False, **blocked)
    assert proc.returncode == 1  # the blocker works
    # (one child: those imports, then tools/demo.py as the command line runs it)
    demo = ('import runpy, sys; import mmpose_sam, mmpose_sam.apis, mmpose_sam.deploy.metadata; '
            'sys.argv = sys.argv[1:]; sys.path.insert(0, sys.argv[0].rsplit("/", 1)[0]); '
            'runpy.run_path(sys.argv[0], run_name="__main__")')
    proc = run_python(['-c', demo, ROOT / 'tools' / 'demo.py', config, checkpoint, '--input',
                       SAMPLE_DIR / '000000000785.jpg', '--out-dir', tmp_path / 'out', '--device',
                       'cpu'], timeout=300, **blocked)
    assert (tmp_path / 'out' / 'predictions' / '000000000785.json').is_file()
    assert proc.stdout.strip().splitlines()[-1].endswith('1 images, 1 people (whole image) -> '
                                                         f'{tmp_path / "out" / "visualizations"}, '
                                                         f'{tmp_path / "out" / "predictions"}')

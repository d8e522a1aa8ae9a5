"""tools/compare.py end to end on the bundled sample: the default four models for one epoch each,
one row and one ratio row per model, AP, the reference AP and the picture; an MMPose zoo config
under the sample's recipe; evaluate-only with given checkpoints; one-line errors.

The one-epoch run checks that the tool trains and writes a well-formed table (one epoch on 12
people teaches nothing, so its AP is whatever it is); the evaluate-only run is given the trained
sample checkpoints (conftest's ``trained_checkpoints``), whose AP the table must report as
test_trained_accuracy.py measures it. Never how fast any model is.
"""
import contextlib
import io
import os

import cv2
import pytest
from mmengine.config import Config

from conftest import ROOT, SAM_SAMPLE_CONFIG, SB_SAMPLE_CONFIG, load_tool, run_python
from test_configs import EXPECTED_PARAMS
from test_trained_accuracy import MIN_AP

METRICS = ('coco/AP', 'coco/AP .5', 'coco/AR')
MODELS = ['simplebaseline-res50', 'seresnet50', 'sam-res50-seq3x3', 'cbam-res50']
PARAMS = {'simplebaseline-res50': EXPECTED_PARAMS['simplebaseline', 50],
          'seresnet50': EXPECTED_PARAMS['seresnet', 50],
          'sam-res50-seq3x3': EXPECTED_PARAMS['sam-seq3x3', 50],
          'cbam-res50': EXPECTED_PARAMS['cbam', 50]}
HRNET = 'mmpose::body_2d_keypoint/topdown_heatmap/coco/td-hm_hrnet-w32_8xb64-210e_coco-256x192.py'
RTMPOSE = 'mmpose::body_2d_keypoint/rtmpose/coco/rtmpose-m_8xb256-420e_coco-256x192.py'

compare = load_tool('compare')


def parse_table(text: str) -> dict:
    """Rows of the markdown table by their first cell, each a {column: cell} dict."""
    lines = [line for line in text.splitlines() if line.startswith('|')]
    header = [cell.strip() for cell in lines[0].strip('|').split('|')]
    rows = [dict(zip(header, (cell.strip() for cell in line.strip('|').split('|'))))
            for line in lines[2:]]
    return {row['model']: row for row in rows}


@contextlib.contextmanager
def as_compare_leaves_it():
    """compare.main changes to the repo root and, for --device cpu, hides the GPUs: put back."""
    cwd, visible = os.getcwd(), os.environ.get('CUDA_VISIBLE_DEVICES')
    try:
        yield
    finally:
        os.chdir(cwd)
        if visible is None:
            os.environ.pop('CUDA_VISIBLE_DEVICES', None)
        else:
            os.environ['CUDA_VISIBLE_DEVICES'] = visible


@pytest.fixture(scope='module')
def comparison(module_mktemp):
    """The default comparison, in this process (the command line's one-line error is
    test_another_codec_under_the_heatmap_recipe_is_one_line's)."""
    work_dir = module_mktemp('compare')
    out = work_dir / 'table.md'
    stdout = io.StringIO()
    with as_compare_leaves_it(), contextlib.redirect_stdout(stdout):
        compare.main(['--epochs', '1', '--work-dir', str(work_dir), '--out', str(out),
                      '--device', 'cpu', '--latency-warmup', '1', '--latency-repeats', '2'])
    return work_dir, out.read_text(), stdout.getvalue()


def test_default_is_the_four_sample_models():
    args = compare.parse_args([])
    assert [compare.model_name(c) for c in args.configs] == MODELS
    assert args.recipe == str(SB_SAMPLE_CONFIG)


def test_table_has_every_model_and_its_ratio_to_the_first(comparison):
    _, table, stdout = comparison
    assert table.strip() in stdout
    rows = parse_table(table)
    first = MODELS[0]
    assert list(rows) == MODELS + [f'{name} / {first}' for name in MODELS[1:]]
    for name in MODELS:
        row = rows[name]
        assert row['params'] == f'{PARAMS[name]:,}' and row['input size'] == '128x96'
        for column in ('GMACs (FlopAnalyzer)', 'latency b1 (ms/crop)', 'latency b8 (ms/crop)',
                       'fast b1 (ms/crop)', 'fast b8 (ms/crop)', 'train time'):
            assert float(row[column].split()[0]) > 0, (name, column)
        if name != first:
            ratio = rows[f'{name} / {first}']
            assert float(ratio['params'].rstrip('x')) == pytest.approx(
                PARAMS[name] / PARAMS[first], abs=1e-3)
            for column in ('GMACs (FlopAnalyzer)', 'latency b8 (ms/crop)', 'fast b8 (ms/crop)',
                           'train time'):
                assert ratio[column].endswith('x') and float(ratio[column].rstrip('x')) > 0
    assert [rows[name]['attention'] for name in MODELS] == ['none', 'none', 'sam-3x3+3x3', 'cbam']
    attention_ops = [float(rows[name]['attention elementwise Gops']) for name in MODELS]
    assert attention_ops[:2] == [0, 0] and all(ops > 0 for ops in attention_ops[2:])


def test_reference_ap_is_labelled_with_its_source(comparison):
    rows = parse_table(comparison[1])
    assert rows['simplebaseline-res50']['reference AP'] == \
        '0.718 (MMPose zoo, td-hm_res50_8xb64-210e_coco-256x192, COCO val2017)'
    assert rows['seresnet50']['reference AP'] == \
        '0.729 (MMPose zoo, td-hm_seresnet50_8xb64-210e_coco-256x192, COCO val2017)'
    assert rows['sam-res50-seq3x3']['reference AP'] == '0.717 (paper Table 2, COCO test-dev)'
    assert rows['cbam-res50']['reference AP'] == '-'  # neither MMPose nor the paper has one
    assert rows['seresnet50 / simplebaseline-res50']['reference AP'] == '+0.0110 (diff)'


def check_metric_cells(rows: dict, first: str, others) -> None:
    """Each AP/AR cell is a number in [0, 1] and each ratio row has the differences."""
    for metric in METRICS:
        reference = float(rows[first][metric])
        assert 0 <= reference <= 1
        for name in others:
            value = float(rows[name][metric])
            assert 0 <= value <= 1
            diff, unit = rows[f'{name} / {first}'][metric].split()
            assert unit == '(diff)' and float(diff) == pytest.approx(value - reference,
                                                                     abs=1.5e-4), rows


def test_table_has_coco_metrics(comparison):
    check_metric_cells(parse_table(comparison[1]), MODELS[0], MODELS[1:])


def test_picture_is_written(comparison):
    work_dir = comparison[0]
    picture = cv2.imread(str(work_dir / 'table.png'))
    assert picture is not None and picture.shape[0] > 500 and picture.shape[1] > 800
    assert f'wrote {work_dir / "table.md"} and {work_dir / "table.png"}' in comparison[2]


def test_each_model_trained_in_its_own_work_dir(comparison):
    work_dir = comparison[0]
    for name in MODELS:
        # one epoch: the final weights only (no validation, so no best_*.pth)
        assert sorted(p.name for p in (work_dir / name).glob('*.pth')) == ['epoch_1.pth']


def test_an_mmpose_zoo_config_gets_the_recipe():
    """MMPose's HRNet-W32 under the sample's recipe: its model with the recipe's codec, data
    preprocessor and test settings, from scratch; everything else is the recipe's."""
    from toolkit.zoo import resolve_config
    recipe = Config.fromfile(str(SB_SAMPLE_CONFIG))
    cfg = compare.with_recipe(Config.fromfile(str(resolve_config(HRNET))), recipe, HRNET)
    assert cfg.model.backbone.type == 'HRNet' and cfg.model.backbone.init_cfg is None
    assert cfg.model.head.in_channels == 32 and cfg.model.head.decoder == recipe.codec
    for key in ('data_preprocessor', 'test_cfg', 'train_cfg'):
        assert cfg.model[key] == recipe.model[key]
    assert {k: v for k, v in cfg.items() if k != 'model'} == \
        {k: v for k, v in recipe.items() if k != 'model'}


def test_profile_only_with_an_mmpose_config(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)  # the tool changes to the repo root: restored after the test
    monkeypatch.setenv('CUDA_VISIBLE_DEVICES', '')  # what --device cpu sets
    out = tmp_path / 'table.md'
    compare.main(['--configs', str(SAM_SAMPLE_CONFIG), HRNET, '--no-train', '--work-dir',
                  str(tmp_path), '--out', str(out), '--device', 'cpu', '--latency-warmup', '0',
                  '--latency-repeats', '1'])
    rows = parse_table(out.read_text())
    assert list(rows) == ['sam-res50-seq3x3', 'hrnet-w32', 'hrnet-w32 / sam-res50-seq3x3']
    hrnet = rows['hrnet-w32']
    assert hrnet['params'] == f"{EXPECTED_PARAMS['hrnet', 'w32']:,}"
    assert hrnet['input size'] == '128x96'  # the recipe's
    assert hrnet['reference AP'] == \
        '0.746 (MMPose zoo, td-hm_hrnet-w32_8xb64-210e_coco-256x192, COCO val2017)'
    assert hrnet['coco/AP'] == '-' and hrnet['train time'] == '-'
    assert not list(tmp_path.rglob('*.pth'))  # nothing trained
    assert cv2.imread(str(out.with_suffix('.png'))) is not None


def test_another_codec_under_the_heatmap_recipe_is_one_line(tmp_path):
    """Before anything is trained: RTMPose decodes SimCC, the sample recipe heatmaps."""
    proc = run_python(['tools/compare.py', '--configs', str(SB_SAMPLE_CONFIG), RTMPOSE,
                       '--work-dir', tmp_path, '--device', 'cpu'], check=False, timeout=300)
    assert proc.returncode == 1 and 'Traceback' not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == (
        f'error: {RTMPOSE}: its head decodes with SimCCLabel, the recipe\'s codec is '
        'MSRAHeatmap: compare it under its own recipe (--recipe own), or for params, GMACs and '
        'latency only (--recipe own --no-train)')
    assert not list(tmp_path.iterdir())


def test_given_checkpoints_are_only_evaluated(trained_checkpoints, tmp_path):
    """--checkpoints: nothing is trained, and the table reports those checkpoints' AP (the
    memorised sample: >= MIN_AP, where fresh or wrong weights score ~0)."""
    out = tmp_path / 'table.md'
    names = ('SimpleBaseline', 'SAM')
    with as_compare_leaves_it():
        compare.main(['--configs', *(str(trained_checkpoints[n][0]) for n in names),
                      '--checkpoints', *(str(trained_checkpoints[n][1]) for n in names),
                      '--work-dir', str(tmp_path), '--out', str(out), '--device', 'cpu',
                      '--latency-warmup', '0', '--latency-repeats', '1'])
    rows = parse_table(out.read_text())
    sb, sam = 'simplebaseline-res50', 'sam-res50-seq3x3'
    assert rows[sam]['train time'] == rows[sb]['train time'] == '- (checkpoint)'
    assert rows[f'{sam} / {sb}']['train time'] == '-'
    assert not list(tmp_path.rglob('*.pth'))  # nothing trained
    check_metric_cells(rows, sb, [sam])
    for name in (sb, sam):
        assert float(rows[name]['coco/AP']) >= MIN_AP, rows[name]

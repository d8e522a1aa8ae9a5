"""tools/compare.py end to end on the bundled sample: one epoch each, both rows, ratios, AP.

The one-epoch run checks that the tool trains and writes a well-formed table (one epoch on 12
people teaches nothing, so its AP is whatever it is); the evaluate-only run is given the trained
sample checkpoints (conftest's ``trained_checkpoints``), whose AP the table must report as
test_trained_accuracy.py measures it. Never how fast either model is.
"""
import pytest

from conftest import run_python
from test_configs import EXPECTED_PARAMS
from test_trained_accuracy import MIN_AP

METRICS = ('coco/AP', 'coco/AP .5', 'coco/AR')


def parse_table(text: str) -> dict:
    """Rows of the markdown table by their first cell, each a {column: cell} dict."""
    lines = [line for line in text.splitlines() if line.startswith('|')]
    header = [cell.strip() for cell in lines[0].strip('|').split('|')]
    rows = [dict(zip(header, (cell.strip() for cell in line.strip('|').split('|'))))
            for line in lines[2:]]
    return {row['model']: row for row in rows}


@pytest.fixture(scope='module')
def comparison(tmp_path_factory):
    work_dir = tmp_path_factory.mktemp('compare')
    out = work_dir / 'table.md'
    proc = run_python(['tools/compare.py', '--epochs', '1', '--work-dir', work_dir, '--out', out,
                       '--device', 'cpu', '--latency-warmup', '1', '--latency-repeats', '2'],
                      timeout=900)
    return work_dir, out.read_text(), proc.stdout


def test_table_has_both_models_and_ratios(comparison):
    _, table, stdout = comparison
    assert table.strip() in stdout
    rows = parse_table(table)
    assert list(rows) == ['SimpleBaseline', 'SAM', 'SAM / SB']
    sb, sam, ratio = rows['SimpleBaseline'], rows['SAM'], rows['SAM / SB']
    assert sb['params'] == f"{EXPECTED_PARAMS['simplebaseline', 50]:,}"
    assert sam['params'] == f"{EXPECTED_PARAMS['sam-seq3x3', 50]:,}"
    assert float(ratio['params'].rstrip('x')) == pytest.approx(
        EXPECTED_PARAMS['sam-seq3x3', 50] / EXPECTED_PARAMS['simplebaseline', 50], abs=1e-3)
    for column in ('GMACs (FlopAnalyzer)', 'latency b1 (ms/crop)', 'latency b8 (ms/crop)',
                   'train time'):
        assert ratio[column].endswith('x') and float(ratio[column].rstrip('x')) > 0
        for row in (sb, sam):
            assert float(row[column].split()[0]) > 0
    assert float(sam['attention elementwise Gops']) > 0 == float(sb['attention elementwise Gops'])


def check_metric_cells(rows: dict) -> None:
    """Each AP/AR cell is a number in [0, 1] and the last row is SAM minus SimpleBaseline."""
    for metric in METRICS:
        sb, sam = (float(rows[name][metric]) for name in ('SimpleBaseline', 'SAM'))
        assert 0 <= sb <= 1 and 0 <= sam <= 1
        diff, unit = rows['SAM / SB'][metric].split()
        assert unit == '(diff)' and float(diff) == pytest.approx(sam - sb, abs=1.5e-4), rows


def test_table_has_coco_metrics(comparison):
    check_metric_cells(parse_table(comparison[1]))


def test_each_model_trained_in_its_own_work_dir(comparison):
    work_dir = comparison[0]
    for name in ('simplebaseline', 'sam'):
        # one epoch: the final weights only (no validation, so no best_*.pth)
        assert sorted(p.name for p in (work_dir / name).glob('*.pth')) == ['epoch_1.pth']


def test_given_checkpoints_are_only_evaluated(trained_checkpoints, tmp_path):
    """--sam-checkpoint/--sb-checkpoint: nothing is trained, and the table reports those
    checkpoints' AP (the memorised sample: >= MIN_AP, where fresh or wrong weights score ~0)."""
    out = tmp_path / 'table.md'
    run_python(['tools/compare.py', '--sam-checkpoint', trained_checkpoints['SAM'][1],
                '--sb-checkpoint', trained_checkpoints['SimpleBaseline'][1],
                '--work-dir', tmp_path, '--out', out, '--device', 'cpu',
                '--latency-warmup', '0', '--latency-repeats', '1'], timeout=900)
    rows = parse_table(out.read_text())
    assert rows['SAM']['train time'] == rows['SimpleBaseline']['train time'] == '- (checkpoint)'
    assert rows['SAM / SB']['train time'] == '-'
    assert not list(tmp_path.rglob('*.pth'))  # nothing trained
    check_metric_cells(rows)
    for name in ('SimpleBaseline', 'SAM'):
        assert float(rows[name]['coco/AP']) >= MIN_AP, rows[name]

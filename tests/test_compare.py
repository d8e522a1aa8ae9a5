"""tools/compare.py end to end on the bundled sample: one epoch each, both rows, ratios, AP.

This checks that the tool runs and writes a well-formed table, never how fast or how accurate
either model is (one epoch on 12 people teaches nothing).
"""
import pytest

from conftest import run_python
from test_configs import EXPECTED_PARAMS

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


def test_table_has_coco_metrics(comparison):
    rows = parse_table(comparison[1])
    for metric in METRICS:
        for name in ('SimpleBaseline', 'SAM'):
            assert 0 <= float(rows[name][metric]) <= 1
        assert rows['SAM / SB'][metric].endswith('(diff)')


def test_each_model_trained_in_its_own_work_dir(comparison):
    work_dir = comparison[0]
    for name in ('simplebaseline', 'sam'):
        # one epoch: the final weights only (no validation, so no best_*.pth)
        assert sorted(p.name for p in (work_dir / name).glob('*.pth')) == ['epoch_1.pth']


def test_given_checkpoints_are_only_evaluated(comparison, tmp_path):
    work_dir = comparison[0]
    out = tmp_path / 'table.md'
    run_python(['tools/compare.py', '--sam-checkpoint', work_dir / 'sam' / 'epoch_1.pth',
                '--sb-checkpoint', work_dir / 'simplebaseline' / 'epoch_1.pth',
                '--work-dir', tmp_path, '--out', out, '--device', 'cpu',
                '--latency-warmup', '0', '--latency-repeats', '1'], timeout=900)
    rows = parse_table(out.read_text())
    assert rows['SAM']['train time'] == rows['SimpleBaseline']['train time'] == '- (checkpoint)'
    assert rows['SAM / SB']['train time'] == '-'
    assert not list(tmp_path.rglob('*.pth'))  # nothing trained
    for metric in METRICS:
        assert 0 <= float(rows['SAM'][metric]) <= 1

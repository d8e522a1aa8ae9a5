"""toolkit.analysis and tools/model_complexity.py: exact parameter counts, the two MAC counters
agree, the attention's element-wise ops are counted, and the metafile matches the tool."""

import pytest
import torch
import yaml

from conftest import CONFIG_DIR, load_tool, ROOT, run_python
from test_configs import EXPECTED_PARAMS, describe

from toolkit.analysis import (MISMATCH_TOLERANCE, build_model, count_complexity, count_parameters,
                              input_hw, load_config)

COCO = CONFIG_DIR / 'coco'
SAM_R50 = COCO / 'td-hm_sam-res50-seq3x3_8xb64-210e_coco-256x192.py'
SB_R50 = COCO / 'td-hm_simplebaseline-res50_8xb64-210e_coco-256x192.py'
# One config per distinct model of EXPECTED_PARAMS (the first by name: 210e, 256x192).
DISTINCT = sorted({describe(p): p for p in sorted(COCO.glob('*.py'), reverse=True)}.values())



@pytest.mark.parametrize('path', DISTINCT, ids=lambda p: '{}-r{}'.format(*describe(p)))
def test_count_parameters_is_exact(path):
    # Parameter shapes do not need real tensors: build on the meta device (no memory, no init).
    with torch.device('meta'):
        model = build_model(load_config(path), 'meta')
    assert count_parameters(model) == EXPECTED_PARAMS[describe(path)]


@pytest.fixture(scope='module')
def counts():
    """Counts of SAM-R50, its conv_first-head variant and SimpleBaseline-R50 at 256x192."""
    sam_cfg, sb_cfg = load_config(SAM_R50), load_config(SB_R50)
    conv_first_cfg = load_config(SAM_R50, {'model.head.upsample_order': 'conv_first'})
    hw = input_hw(sam_cfg)
    assert hw == (256, 192)
    return {name: count_complexity(build_model(cfg), hw)
            for name, cfg in (('sam', sam_cfg), ('sb', sb_cfg), ('conv_first', conv_first_cfg))}


def test_counts_have_the_exact_parameters(counts):
    assert counts['sam'].params == counts['conv_first'].params == EXPECTED_PARAMS['sam-seq3x3', 50]
    assert counts['sb'].params == EXPECTED_PARAMS['simplebaseline', 50]


@pytest.mark.parametrize('name', ['sam', 'sb', 'conv_first'])
def test_flop_analyzer_and_torch_counter_agree_on_convs(counts, name):
    c = counts[name]
    assert c.matmul_macs > 1e9 and c.torch_macs > 1e9
    assert c.mismatch <= MISMATCH_TOLERANCE and c.counters_agree
    # FlopAnalyzer's total also counts batch norm, upsampling and pooling: more, but not much.
    assert c.matmul_macs < c.macs < 1.1 * c.matmul_macs


def test_conv_first_head_has_fewer_macs(counts):
    assert counts['conv_first'].macs < counts['sam'].macs
    assert counts['conv_first'].torch_macs < counts['sam'].torch_macs


def test_elementwise_ops_only_for_attention(counts):
    assert counts['sb'].elementwise_ops == 0
    # Re-derived by hand for 256x192: per stage (C, H, W), 4 passes over C*H*W (channel-gate
    # multiply, channel mean, spatial-gate multiply, residual add), 2 over H*W (ReLU between the
    # 3x3 convs, sigmoid), C/16 + C for the channel gate's ReLU and sigmoid.
    stages = [(256, 64, 48), (512, 32, 24), (1024, 16, 12), (2048, 8, 6)]
    expected = sum(4 * c * h * w + 2 * h * w + c + c // 16 for c, h, w in stages)
    assert counts['sam'].elementwise_ops == counts['conv_first'].elementwise_ops == expected


def test_tool_writes_markdown_and_matches_metafile(tmp_path):
    configs = [SAM_R50.relative_to(ROOT), SB_R50.relative_to(ROOT)]
    markdown = tmp_path / 'complexity.md'
    proc = run_python(['tools/model_complexity.py', *configs, '--markdown', markdown,
                       '--check-metafile'], timeout=600)
    table = markdown.read_text()
    assert table.strip() in proc.stdout
    lines = [line for line in table.splitlines() if line.startswith('|')]
    header = [cell.strip() for cell in lines[0].strip('|').split('|')]
    for column in ('config', 'attention', 'depth', 'input size', 'params', 'paper params',
                   'GMACs (FlopAnalyzer)', 'GMACs (torch counter)', 'attention elementwise Gops',
                   'GMACs, conv_first head'):
        assert column in header
    rows = [dict(zip(header, (c.strip() for c in line.strip('|').split('|'))))
            for line in lines[2:]]
    assert [row['config'] for row in rows] == [p.name for p in configs]
    sam, sb = rows
    assert (sam['attention'], sam['params'], sam['paper params']) == \
        ('sam-3x3+3x3', '30,703,249', '30.7M')
    assert (sb['attention'], sb['params'], sb['paper params']) == ('none', '33,999,697', '34.0M')
    assert float(sam['attention elementwise Gops']) > 0 == float(sb['attention elementwise Gops'])
    assert float(sam['GMACs, conv_first head']) < float(sam['GMACs (FlopAnalyzer)'])
    assert sb['GMACs, conv_first head'] == '-'
    assert 'MISMATCH' not in table


def test_metafile_regenerates_identically():
    # Every config, as `--update-metafile` writes it: the committed file must be that text.
    tool = load_tool('model_complexity')
    rows = tool.measure(tool.default_configs(), 'cpu')
    assert tool.render_metafile(rows) == tool.METAFILE.read_text()
    assert tool.check_metafile(rows, tool.METAFILE) == []
    index = yaml.safe_load((ROOT / 'model-index.yml').read_text())
    assert str(tool.METAFILE.relative_to(ROOT)) in index['Import']


def test_metafile_loads_with_openmims_model_index():
    from modelindex.load_model_index import load  # what `mim` reads model-index.yml with
    index = load(str(ROOT / 'model-index.yml'))
    assert len(index.models) == len(list(COCO.glob('*.py')))
    assert {model.in_collection for model in index.models} == {
        'SimpleBaseline2D', 'EfficientSpatialAttention', 'HRNet', 'CBAM', 'SENet'}


def test_metafile_keeps_paper_figures_apart():
    models = yaml.safe_load((COCO / 'sam_coco.yml').read_text())['Models']
    for entry in models:
        assert 'Results' not in entry  # nothing measured on COCO here
        assert not any('paper' in key.lower() for key in entry['Metadata'])
    ours_r50 = next(e for e in models
                    if e['Name'] == 'td-hm_sam-res50-seq3x3_8xb64-270e_coco-256x192')
    assert ours_r50['Paper']['Parameters (paper)'] == '30.7M'
    assert ours_r50['Paper']['AP (paper, COCO test-dev)'] == 71.7

"""Parameters and GMACs of every COCO config, with the paper's figures beside them.

    python tools/model_complexity.py [CONFIG ...] [--markdown PATH] [--update-metafile]
                                     [--check-metafile] [--device DEVICE]

Without CONFIG, every config of configs/body_2d_keypoint/topdown_heatmap/coco/, each built at
random (nothing downloaded) and counted once per distinct model and input size: exact params,
GMACs of FlopAnalyzer and of torch's counter (and whether they agree), the attention's element-wise
ops, and GMACs with a conv_first head (toolkit/analysis.py says what each counts).
``--update-metafile`` rewrites sam_coco.yml from these counts (with the paper's figures and the
MMPose twin's zoo AP); ``--check-metafile`` exits 1 if it is out of date. README "Configs".
"""
import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import yaml

import mmpose
from toolkit.analysis import (Complexity, attention_label, build_model, count_complexity, input_hw,
                              load_config, table_head, table_row)
from mmengine.device import get_device
from mmpose_sam.models import CBAM, SEAttention, StageAttention
from mmpose_sam.reliability.checkpoint.fit import architecture_name
from toolkit.zoo import PAPER, zoo_twin

ROOT = Path(__file__).resolve().parents[1]
COCO_DIR = ROOT / 'configs' / 'body_2d_keypoint' / 'topdown_heatmap' / 'coco'
METAFILE = COCO_DIR / 'sam_coco.yml'
CVF = 'http://openaccess.thecvf.com/content_'
# The metafile's Collections: name -> (paper title, paper URL or '').
COLLECTIONS = {
    'SimpleBaseline2D': ('Simple baselines for human pose estimation and tracking',
                         f'{CVF}ECCV_2018/html/Bin_Xiao_Simple_Baselines_for_ECCV_2018_paper.html'),
    'EfficientSpatialAttention': ('Efficient Spatial-Attention module for human pose estimation',
                                  ''),
    'HRNet': ('Deep high-resolution representation learning for human pose estimation',
              f'{CVF}CVPR_2019/html/Sun_Deep_High-Resolution_Representation_Learning_for_'
              'Human_Pose_Estimation_CVPR_2019_paper.html'),
    'CBAM': ('CBAM: Convolutional block attention module',
             f'{CVF.replace("http:", "https:")}ECCV_2018/html/'
             'Sanghyun_Woo_Convolutional_Block_Attention_ECCV_2018_paper.html'),
    'SENet': ('Squeeze-and-excitation networks', f'{CVF.replace("http:", "https:")}cvpr_2018/html/'
              'Hu_Squeeze-and-Excitation_Networks_CVPR_2018_paper.html'),
}
ATTENTION_COLLECTIONS = {StageAttention: 'EfficientSpatialAttention', CBAM: 'CBAM',
                         SEAttention: 'SENet'}

SCHEDULES = {210: '210e (MMPose)', 270: '270e (paper)'}


@dataclass
class Row:
    """One config and its counts."""
    config: str  # path from the repo root
    attention: str
    depth: Optional[int]  # ResNet depth; None for other backbones
    hw: Tuple[int, int]
    schedule: str
    architecture: List[str]
    complexity: Complexity
    conv_first: Optional[Complexity]  # SAM head with upsample_order='conv_first'

    @property
    def input_size(self) -> str:
        return f'{self.hw[0]}x{self.hw[1]}'

    @property
    def paper(self) -> dict:
        return PAPER.get((self.attention, self.depth), {})


def default_configs() -> List[Path]:
    """Every config under configs/body_2d_keypoint/topdown_heatmap/coco/."""
    return sorted(COCO_DIR.glob('*.py'))


def _relative(path: Path) -> str:
    path = path.resolve()
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def measure(configs: Sequence[Path], device: str = 'cpu') -> List[Row]:
    """Count every config; configs with the same model and input size share one count."""
    cache: Dict[Tuple[str, Tuple[int, int]], Complexity] = {}

    def counted(cfg, hw) -> Tuple[torch.nn.Module, Complexity]:
        # The module tree identifies the model whatever the config's spelling; building it on the
        # meta device (shapes, no weights) is cheap, so only new models are built for real.
        with torch.device('meta'):
            skeleton = build_model(cfg, 'meta')
        key = (repr(skeleton), hw)
        if key not in cache:
            cache[key] = count_complexity(build_model(cfg, device), hw)
        return skeleton, cache[key]

    rows = []
    for path in configs:
        cfg = load_config(path)
        hw = input_hw(cfg)
        model, complexity = counted(cfg, hw)
        backbone, head = model.backbone, model.head
        attention_types = {type(m) for m in backbone.modules() if type(m) in ATTENTION_COLLECTIONS}
        collection = (ATTENTION_COLLECTIONS[attention_types.pop()] if len(attention_types) == 1
                      else 'HRNet' if 'HRNet' in type(backbone).__name__
                      else 'SimpleBaseline2D')
        conv_first = None
        if type(head).__name__ == 'BilinearHeatmapHead':
            conv_first = counted(
                load_config(cfg, {'model.head.upsample_order': 'conv_first'}), hw)[1]
        epochs = cfg.train_cfg.max_epochs
        rows.append(Row(
            config=_relative(Path(path)),
            attention=attention_label(model),
            depth=getattr(backbone, 'depth', None),
            hw=hw,
            schedule=SCHEDULES.get(epochs, f'{epochs}e'),
            architecture=[collection, architecture_name(backbone), architecture_name(head)],
            complexity=complexity,
            conv_first=conv_first))
        print(f'[model_complexity] {Path(path).name}: {complexity.params:,} params, '
              f'{complexity.macs / 1e9:.3f} GMACs', file=sys.stderr, flush=True)
    return rows


def _g(value: int, digits: int = 3) -> str:
    return f'{value / 1e9:.{digits}f}'


def markdown_table(rows: Sequence[Row]) -> str:
    """The table, with a legend of what each count covers."""
    lines = table_head(['config', 'attention', 'depth', 'input size', 'params', 'params (M)',
                        'paper params', 'GMACs (FlopAnalyzer)', 'GMACs (torch counter)',
                        'counters agree (conv/linear)', 'attention elementwise Gops',
                        'GMACs, conv_first head'], right=(2, 4, 5, 6, 7, 8, 10, 11))
    for row in rows:
        c = row.complexity
        agree = ('yes' if c.counters_agree else '**MISMATCH**') + f' ({c.mismatch:.2%})'
        lines.append(table_row([
            Path(row.config).name, row.attention, row.depth or '-', row.input_size,
            f'{c.params:,}', f'{c.params / 1e6:.2f}', row.paper.get('params', '-'), _g(c.macs),
            _g(c.torch_macs), agree, _g(c.elementwise_ops, 4),
            _g(row.conv_first.macs) if row.conv_first else '-']))
    uncounted = sorted({op for row in rows for op in row.complexity.uncounted_ops})
    lines += [
        '',
        'GMACs (FlopAnalyzer): MMEngine, as MMPose\'s get_flops.py (convs, matrix products, '
        'batch norm, bilinear upsampling, adaptive pooling). GMACs (torch counter): '
        'torch.utils.flop_counter FLOPs / 2, convs and matrix products only; "counters agree" '
        'compares it with FlopAnalyzer\'s conv/linear part. Attention elementwise Gops: analytic '
        'count of the attention ops neither counter sees. Paper params: Tables 1-2 of the paper '
        '(it reports no FLOPs). One crop, batch 1.',
        f'Ops FlopAnalyzer traced but does not count: {", ".join(uncounted) or "none"}.',
    ]
    return '\n'.join(lines)


def metafile_entry(row: Row) -> dict:
    """The model's entry in MMPose's metafile format; the paper's figures under ``Paper``."""
    entry = dict(
        Name=Path(row.config).stem,
        Config=row.config,
        **{'In Collection': row.architecture[0]},
        Metadata={
            'Architecture': row.architecture,
            **({'Depth': row.depth} if row.depth is not None else {}),
            'Attention': row.attention,
            'Input Size': row.input_size,
            'Schedule': row.schedule,
            'Parameters': row.complexity.params,
            'FLOPs': round(row.complexity.macs / 1e9, 3),  # GMACs, FlopAnalyzer
            'Training Data': 'COCO',
        })
    paper = row.paper
    if paper:
        figures = {'Parameters (paper)': paper['params']}
        # The paper's accuracy comes from its own recipe at 256x192: only the configs that
        # follow it carry it.
        if row.schedule == SCHEDULES[270] and row.input_size == '256x192':
            if 'ap' in paper:
                figures['AP (paper, COCO test-dev)'] = paper['ap']
                figures['AR (paper, COCO test-dev)'] = paper['ar']
            if 'map_t1' in paper:
                figures['mAP (paper, Table 1)'] = paper['map_t1']
        figures['Source (paper)'] = paper['source']
        if 'note' in paper:
            figures['Note'] = paper['note']
        entry['Paper'] = figures
    twin = zoo_twin(Path(row.config).stem)
    if twin is not None:
        # MMPose's own result for the config this one mirrors (the same config but for the
        # attention, if any, and our speed and safety settings); never measured here.
        entry['Baseline'] = {
            'Config (MMPose)': twin.name,
            'AP (MMPose zoo, COCO val2017)': twin.ap,
            **({'AR (MMPose zoo, COCO val2017)': twin.ar} if twin.ar is not None else {}),
            'Source': f'MMPose {mmpose.__version__} model zoo, {twin.metafile}',
        }
    return entry


def render_metafile(rows: Sequence[Row]) -> str:
    """The whole metafile text for ``rows``."""
    header = ('# Generated by `python tools/model_complexity.py --update-metafile`: do not edit.\n'
              '# Parameters: exact count; FLOPs: GMACs for one crop (MMEngine FlopAnalyzer).\n'
              '# No COCO results are measured here, so there is no Results key; the paper\'s own\n'
              '# figures are under Paper, MMPose\'s zoo result of the MMPose twin under\n'
              '# Baseline.\n')
    collections = [dict(Name=name, Paper=dict(Title=title, **({'URL': url} if url else {})),
                        README='README.md') for name, (title, url) in COLLECTIONS.items()]
    body = dict(Collections=collections, Models=[metafile_entry(row) for row in rows])
    return header + yaml.safe_dump(body, sort_keys=False, width=100)


def check_metafile(rows: Sequence[Row], metafile: Path) -> List[str]:
    """Differences between ``metafile`` and what ``rows`` give; the whole text is compared when
    ``rows`` cover every config the metafile should list."""
    if not metafile.exists():
        return [f'{metafile} does not exist']
    text = metafile.read_text()
    listed = {entry['Config']: entry for entry in yaml.safe_load(text)['Models']}
    problems = []
    for row in rows:
        expected = metafile_entry(row)
        if listed.get(row.config) != expected:
            problems.append(f'{row.config}: metafile has {listed.get(row.config)}, '
                            f'counts give {expected}')
    every = {_relative(p) for p in default_configs()}
    if {row.config for row in rows} == every and not problems and text != render_metafile(rows):
        problems.append(f'{metafile} lists other configs or differs in layout')
    return problems


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('configs', nargs='*', type=Path,
                        help='configs (default: every config of configs/.../coco/)')
    parser.add_argument('--markdown', type=Path, help='also write the table to this file')
    parser.add_argument('--update-metafile', action='store_true',
                        help='rewrite the metafile (needs every config: no CONFIG arguments)')
    parser.add_argument('--check-metafile', action='store_true',
                        help='exit 1 if the metafile entries of these configs are out of date')
    parser.add_argument('--device', default=get_device(),
                        help='device to build the models on (counts do not depend on it)')
    return parser.parse_args(argv)


def main(argv=None) -> List[Row]:
    args = parse_args(argv)
    if args.update_metafile and args.configs:
        sys.exit('--update-metafile rewrites the whole metafile: run it without CONFIG arguments')
    rows = measure(args.configs or default_configs(), args.device)
    table = markdown_table(rows)
    print(table)
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(table + '\n')
    if args.update_metafile:
        METAFILE.write_text(render_metafile(rows))
        print(f'[model_complexity] wrote {METAFILE}', file=sys.stderr)
    if args.check_metafile:
        problems = check_metafile(rows, METAFILE)
        if problems:
            sys.exit('metafile out of date (python tools/model_complexity.py --update-metafile):'
                     '\n' + '\n'.join(problems))
        print(f'[model_complexity] {METAFILE} is up to date', file=sys.stderr)
    return rows


if __name__ == '__main__':
    main()

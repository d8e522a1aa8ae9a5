"""Every config in configs/ builds through MMPose's registry, with the paper's parameter counts."""
from pathlib import Path

import pytest
from mmengine.config import Config
from mmpose.registry import MODELS

from conftest import CONFIG_DIR, ROOT

CONFIGS = sorted(CONFIG_DIR.rglob('*.py'))

# Exact counts of the full models (backbone + head). The paper's rounded figures (Tables 1-2) are
# in docs/parameter_counts.md; 7x7 differs from the paper's 31.2M there, see that page.
EXPECTED_PARAMS = {
    ('simplebaseline', 50): 33_999_697,
    ('simplebaseline', 101): 52_991_825,
    ('sam-seq3x3', 50): 30_703_249,
    ('sam-par3x3', 50): 30_703_249,
    ('sam-7x7', 50): 30_703_369,
    ('sam-seq3x3', 101): 49_695_377,
    ('sam-par3x3', 101): 49_695_377,
    ('sam-7x7', 101): 49_695_497,
}


def describe(path: Path):
    """(model family, depth) from a config file name such as td-hm_sam-res50-seq3x3_..."""
    backbone = path.name.split('_')[1]  # 'sam-res50-seq3x3' or 'simplebaseline-res101'
    parts = backbone.split('-')
    depth = int(parts[1][len('res'):])
    family = 'simplebaseline' if parts[0] == 'simplebaseline' else f'sam-{parts[2]}'
    return family, depth


def test_config_tree_has_every_table_row():
    names = {p.name for p in CONFIGS}
    for schedule in ('210e', '270e'):
        for depth in (50, 101):
            for size in ('256x192', '384x288'):
                assert f'td-hm_simplebaseline-res{depth}_8xb64-{schedule}_coco-{size}.py' in names
                assert f'td-hm_sam-res{depth}-seq3x3_8xb64-{schedule}_coco-{size}.py' in names
            for variant in ('par3x3', '7x7'):
                assert f'td-hm_sam-res{depth}-{variant}_8xb64-{schedule}_coco-256x192.py' in names


@pytest.mark.parametrize('path', CONFIGS, ids=lambda p: p.name)
def test_config_builds_with_expected_parameters(path):
    cfg = Config.fromfile(str(path))
    assert 'mmpose_sam' in cfg.custom_imports['imports']
    model = MODELS.build(cfg.model)
    family, depth = describe(path)
    assert sum(p.numel() for p in model.parameters()) == EXPECTED_PARAMS[family, depth]
    expected_backbone = 'ResNet' if family == 'simplebaseline' else 'SAMResNet'
    assert type(model.backbone).__name__ == expected_backbone
    assert model.backbone.depth == depth
    if family != 'simplebaseline':
        assert model.backbone.attention_cfg['spatial_kernel'] == {
            'sam-seq3x3': '3x3+3x3', 'sam-par3x3': '3x3//3x3', 'sam-7x7': '7x7'}[family]
    heatmap = tuple(cfg.codec['heatmap_size'])
    assert heatmap == {'384x288': (72, 96), '256x192': (48, 64), '128x96': (24, 32)}[
        path.stem.rsplit('-', 1)[-1]]
    assert tuple(model.head.decoder.heatmap_size) == heatmap


@pytest.mark.parametrize('schedule,lr,epochs,milestones', [('210e', 5e-4, 210, [170, 200]),
                                                           ('270e', 1e-3, 270, [170, 200])])
def test_schedules(schedule, lr, epochs, milestones):
    cfg = Config.fromfile(
        str(CONFIG_DIR / 'coco' / f'td-hm_sam-res50-seq3x3_8xb64-{schedule}_coco-256x192.py'))
    assert cfg.optim_wrapper.optimizer.type == 'Adam'
    assert cfg.optim_wrapper.optimizer.lr == lr
    assert cfg.train_cfg.max_epochs == epochs
    assert cfg.param_scheduler[-1].milestones == milestones
    assert cfg.train_dataloader.batch_size == 64
    if schedule == '270e':
        transforms = {t.type: t for t in cfg.train_dataloader.dataset.pipeline}
        assert transforms['RandomBBoxTransform'].rotate_factor == 40
        assert transforms['RandomBBoxTransform'].scale_factor == (0.7, 1.3)
        assert 'RandomFlip' in transforms and 'RandomHalfBody' not in transforms


def test_sam_and_simplebaseline_differ_only_in_the_model():
    sam = Config.fromfile(
        str(CONFIG_DIR / 'coco' / 'td-hm_sam-res50-seq3x3_8xb64-210e_coco-256x192.py'))
    sb = Config.fromfile(
        str(CONFIG_DIR / 'coco' / 'td-hm_simplebaseline-res50_8xb64-210e_coco-256x192.py'))
    differing = {key for key in set(sam) | set(sb) if sam.get(key) != sb.get(key)}
    assert differing == {'model'}


def test_model_index_lists_every_config():
    import yaml
    index = yaml.safe_load((ROOT / 'model-index.yml').read_text())
    listed = {}
    for import_path in index['Import']:
        for entry in yaml.safe_load((ROOT / import_path).read_text())['Models']:
            listed[entry['Config']] = entry
    coco_configs = {str(p.relative_to(ROOT)) for p in CONFIGS if p.parent.name == 'coco'}
    assert set(listed) == coco_configs
    for config, entry in listed.items():
        meta = entry['Metadata']
        family, depth = describe(Path(config))
        assert meta['Depth'] == depth
        assert meta['Parameters'] == EXPECTED_PARAMS[family, depth]
        assert meta['Attention'] == {'simplebaseline': 'none', 'sam-seq3x3': 'sam-3x3+3x3',
                                     'sam-par3x3': 'sam-3x3//3x3', 'sam-7x7': 'sam-7x7'}[family]
        assert meta['Input Size'] in config
        assert meta['FLOPs'] > 0


PROJECT_CONFIGS = sorted((ROOT / 'projects' / 'sam_pose' / 'configs').glob('*.py'))


@pytest.mark.parametrize('path', PROJECT_CONFIGS, ids=lambda p: p.name)
def test_project_config_builds_the_same_model_as_its_configs_twin(path):
    """projects/sam_pose spells the model out for MMPose checkouts; it must not drift from ours."""
    twin = CONFIG_DIR / 'coco' / path.name
    shapes = []
    for config in (path, twin):
        cfg = Config.fromfile(str(config))
        assert 'mmpose_sam' in cfg.custom_imports['imports']
        model = MODELS.build(cfg.model)
        shapes.append({name: tuple(t.shape) for name, t in model.state_dict().items()})
    assert shapes[0] == shapes[1]  # same tensors, names and shapes: checkpoints interchange
    assert sum(p.numel() for p in model.parameters()) == EXPECTED_PARAMS[describe(path)]


def _flat(value, prefix=''):
    """``{'a.b[0].c': leaf}`` of a config dict, MMEngine's ``_scope_`` markers left out."""
    if isinstance(value, dict):
        return {k: v for key, item in value.items() if key != '_scope_'
                for k, v in _flat(item, f'{prefix}.{key}' if prefix else key).items()}
    if isinstance(value, list):
        return {k: v for i, item in enumerate(value) for k, v in _flat(item, f'{prefix}[{i}]')
                .items()}
    return {prefix: value}


# What our SimpleBaseline configs add to MMPose's: how fast and how safely a run goes, never the
# model, the data, the augmentation or the schedule (README "Training speed").
RUNTIME_ADDITIONS = {
    'custom_imports.imports[0]', 'custom_imports.allow_failed_imports',
    'optim_wrapper.type', 'optim_wrapper.dtype', 'env_cfg.cudnn_benchmark',
    'model.data_preprocessor.type', 'model.data_preprocessor.non_blocking',
    'model.train_cfg.compute_acc', 'default_hooks.runtime_info.type',
    *(f'custom_hooks[{i}].type' for i in range(5)),
    'fast_loader.num_workers', 'fast_loader.persistent_workers', 'fast_loader.pin_memory',
    'checked_dataset.type', 'train_dataloader.collate_fn.type',
    *(f'{split}_dataloader.{key}' for split in ('train', 'val', 'test')
      for key in ('num_workers', 'pin_memory', 'dataset.type')),
}


@pytest.mark.parametrize('ours,mmposes', [
    ('td-hm_simplebaseline-res50_8xb64-210e_coco-256x192.py', 'td-hm_res50_8xb64-210e_coco-256x192.py'),
    ('td-hm_simplebaseline-res101_8xb64-210e_coco-256x192.py', 'td-hm_res101_8xb64-210e_coco-256x192.py'),
    ('td-hm_simplebaseline-res50_8xb64-210e_coco-384x288.py', 'td-hm_res50_8xb64-210e_coco-384x288.py'),
])
def test_simplebaseline_is_mmposes_config_plus_runtime_settings(ours, mmposes):
    import mmpose
    twin = Path(mmpose.__file__).parent / '.mim' / 'configs' / 'body_2d_keypoint' / \
        'topdown_heatmap' / 'coco' / mmposes
    a = _flat(Config.fromfile(str(CONFIG_DIR / 'coco' / ours)).to_dict())
    b = _flat(Config.fromfile(str(twin)).to_dict())
    differing = {key for key in a.keys() | b.keys() if a.get(key, '<none>') != b.get(key, '<none>')}
    assert differing == RUNTIME_ADDITIONS

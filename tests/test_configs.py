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
    # SAM-R50 with another attention module after each stage (same head): ResNet-50 23,508,032 +
    # SAM's head 6,494,737 + CBAM 2 * sum(C * C / 16) + 4 x (98 + 2) = 696,720, or SE 700,400.
    ('cbam', 50): 30_699_489,
    ('se', 50): 30_703_169,
    ('seresnet', 50): 36_530_689,  # MMPose's SEResNet-50 + HeatmapHead
    ('hrnet', 'w32'): 28_536_113,  # MMPose's HRNet-W32 + HeatmapHead ("28.5M" in its docs)
    ('sam-hrnet', 'w32'): 28_548_547,  # + the paper's module on 8 branch outputs: 12,434
}
# The backbone each family's configs build.
BACKBONES = {'simplebaseline': 'ResNet', 'cbam': 'AttentionResNet', 'se': 'AttentionResNet',
             'seresnet': 'SEResNet', 'hrnet': 'HRNet', 'sam-hrnet': 'AttentionHRNet'}


def describe(path: Path):
    """(model family, depth or width) from a config file name such as td-hm_sam-res50-seq3x3_...:
    ('sam-seq3x3', 50), ('simplebaseline', 101), ('cbam', 50), ('seresnet', 50),
    ('hrnet', 'w32') for td-hm_hrnet-w32-baseline_..., ('sam-hrnet', 'w32')."""
    backbone = path.name.split('_')[1]  # 'sam-res50-seq3x3' or 'simplebaseline-res101'
    if backbone.startswith('seresnet'):
        return 'seresnet', int(backbone[len('seresnet'):])
    parts = backbone.split('-')
    if 'hrnet' in parts:
        return ('sam-hrnet' if parts[0] == 'sam' else 'hrnet'), parts[parts.index('hrnet') + 1]
    depth = int(parts[1][len('res'):])
    family = f'sam-{parts[2]}' if parts[0] == 'sam' else parts[0]
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
    assert type(model.backbone).__name__ == BACKBONES.get(family, 'SAMResNet')
    assert getattr(model.backbone, 'depth', depth) == depth
    if family.startswith('sam-') and family != 'sam-hrnet':
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
        assert meta.get('Depth', depth if family.endswith('hrnet') else None) == depth
        assert meta['Parameters'] == EXPECTED_PARAMS[family, depth]
        assert meta['Attention'] == {'simplebaseline': 'none', 'sam-seq3x3': 'sam-3x3+3x3',
                                     'sam-par3x3': 'sam-3x3//3x3', 'sam-7x7': 'sam-7x7',
                                     'cbam': 'cbam', 'se': 'se', 'hrnet': 'none',
                                     'sam-hrnet': 'sam-3x3+3x3'}[family]
        assert meta['Input Size'] in config
        assert meta['FLOPs'] > 0


def mmpose_zoo_result(name: str):
    """The COCO metrics of MMPose's zoo model ``name``, read from the installed metafiles, or
    ``None`` if the zoo has no such model."""
    import mmpose
    import yaml
    configs = Path(mmpose.__file__).parent / '.mim' / 'configs' / 'body_2d_keypoint' / \
        'topdown_heatmap' / 'coco'
    for metafile in sorted(configs.glob('*.yml')):
        for entry in yaml.safe_load(metafile.read_text())['Models']:
            if entry['Name'] == name:
                return entry['Results'][0]['Metrics']
    return None


def test_model_index_gives_mmposes_result_of_each_twin():
    """Configs whose MMPose twin (the same name without our model parts) is in MMPose's zoo carry
    its AP/AR under Baseline, labelled as MMPose's; the others (the paper's 270e schedule;
    R101 at 384x288, which MMPose trains at 8xb32) carry none."""
    import yaml
    models = yaml.safe_load((CONFIG_DIR / 'coco' / 'sam_coco.yml').read_text())['Models']
    twins = {
        'td-hm_sam-hrnet-w32_8xb64-210e_coco-256x192': 'td-hm_hrnet-w32_8xb64-210e_coco-256x192',
        'td-hm_hrnet-w32-baseline_8xb64-210e_coco-256x192':
            'td-hm_hrnet-w32_8xb64-210e_coco-256x192',
        'td-hm_cbam-res50_8xb64-210e_coco-256x192': 'td-hm_res50_8xb64-210e_coco-256x192',
        'td-hm_se-res50_8xb64-210e_coco-256x192': 'td-hm_res50_8xb64-210e_coco-256x192',
    }
    with_baseline = set()
    for entry in models:
        twin = twins.get(entry['Name'], entry['Name'].replace('simplebaseline-', '')
                         .replace('sam-', '').replace('-seq3x3', '').replace('-par3x3', '')
                         .replace('-7x7', ''))
        metrics = mmpose_zoo_result(twin)
        if metrics is None:
            assert 'Baseline' not in entry, entry['Name']
            continue
        with_baseline.add(entry['Name'])
        baseline = entry['Baseline']
        assert baseline['Config (MMPose)'] == twin
        assert baseline['AP (MMPose zoo, COCO val2017)'] == metrics['AP']
        assert baseline['AR (MMPose zoo, COCO val2017)'] == metrics['AR']
        assert baseline['Source'].startswith('MMPose 1.3.2 model zoo, configs/')
    assert len(with_baseline) == 14 and not any('270e' in name for name in with_baseline)
    by_name = {entry['Name']: entry for entry in models}
    assert by_name['td-hm_sam-hrnet-w32_8xb64-210e_coco-256x192']['Baseline'][
        'AP (MMPose zoo, COCO val2017)'] == 0.746  # the table
    assert by_name['td-hm_cbam-res50_8xb64-210e_coco-256x192']['Baseline'][
        'AP (MMPose zoo, COCO val2017)'] == 0.718


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


# What our root configs add to MMPose's: how fast and how safely a run goes, never the model, the
# data, the augmentation or the schedule (README "Training speed"); besides, the same settings
# under `speed_and_safety` (configs/_base_/mmpose_sam_settings.py), which the roots assign.
RUNTIME_ADDITIONS = {
    'custom_imports.imports[0]', 'custom_imports.imports[1]', 'custom_imports.allow_failed_imports',
    # our subclasses by name: the fit check, acc_pose on the device, CPU DDP, atomic saves
    'model.type', 'model.head.type', 'model_wrapper_cfg.type', 'model_wrapper_cfg.broadcast_buffers',
    'default_hooks.checkpoint.type',
    'optim_wrapper.type', 'optim_wrapper.dtype', 'env_cfg.cudnn_benchmark',
    'model.data_preprocessor.type', 'model.data_preprocessor.non_blocking',
    'model.train_cfg.compute_acc', 'default_hooks.runtime_info.type',
    *(f'custom_hooks[{i}].type' for i in range(5)),
    'fast_loader.num_workers', 'fast_loader.persistent_workers', 'fast_loader.pin_memory',
    'checked_dataset.type', 'train_dataloader.collate_fn.type',
    *(f'{split}_dataloader.{key}' for split in ('train', 'val', 'test')
      for key in ('num_workers', 'pin_memory', 'dataset.type')),
    'train_cfg.type', 'train_cfg.by_epoch',  # our train loop; MMEngine's refuses by_epoch
}


@pytest.mark.parametrize('ours,mmposes', [
    ('td-hm_simplebaseline-res50_8xb64-210e_coco-256x192.py', 'td-hm_res50_8xb64-210e_coco-256x192.py'),
    ('td-hm_simplebaseline-res101_8xb64-210e_coco-256x192.py', 'td-hm_res101_8xb64-210e_coco-256x192.py'),
    ('td-hm_simplebaseline-res50_8xb64-210e_coco-384x288.py', 'td-hm_res50_8xb64-210e_coco-384x288.py'),
    ('td-hm_hrnet-w32-baseline_8xb64-210e_coco-256x192.py', 'td-hm_hrnet-w32_8xb64-210e_coco-256x192.py'),
])
def test_root_is_mmposes_config_plus_runtime_settings(ours, mmposes):
    import mmpose
    twin = Path(mmpose.__file__).parent / '.mim' / 'configs' / 'body_2d_keypoint' / \
        'topdown_heatmap' / 'coco' / mmposes
    a = _flat(Config.fromfile(str(CONFIG_DIR / 'coco' / ours)).to_dict())
    b = _flat(Config.fromfile(str(twin)).to_dict())
    differing = {key for key in a.keys() | b.keys() if a.get(key, '<none>') != b.get(key, '<none>')}
    shared = {key for key in differing if key.startswith('speed_and_safety.')}
    assert differing - shared == RUNTIME_ADDITIONS
    # Each shared setting is applied where it belongs (the settings file is not just included).
    for key in shared - {'speed_and_safety.train_cfg._delete_'}:
        applied = key[len('speed_and_safety.'):]
        assert a[applied] == a[key], applied
    assert shared  # the settings come from configs/_base_/mmpose_sam_settings.py


def _model_diff(config: str, other: str) -> set:
    a = _flat(Config.fromfile(str(CONFIG_DIR / 'coco' / config)).to_dict())
    b = _flat(Config.fromfile(str(CONFIG_DIR / 'coco' / other)).to_dict())
    return {key for key in a.keys() | b.keys() if a.get(key, '<none>') != b.get(key, '<none>')}


@pytest.mark.parametrize('control', ['cbam', 'se'])
def test_control_differs_from_sam_r50_only_in_the_attention_module(control):
    sam = 'td-hm_sam-res50-seq3x3_8xb64-210e_coco-256x192.py'
    config = f'td-hm_{control}-res50_8xb64-210e_coco-256x192.py'
    assert _model_diff(config, sam) == {
        'model.backbone.type', 'model.backbone.attention.type', 'model.backbone.attention.ratio',
        'model.backbone.spatial_kernel', 'model.backbone.attention_ratio'}
    models = [MODELS.build(Config.fromfile(str(CONFIG_DIR / 'coco' / c)).model)
              for c in (config, sam)]
    attention = tuple(f'backbone.{name}.' for name in ('layer1.3', 'layer2.4', 'layer3.6',
                                                         'layer4.3'))
    shapes = [{k: tuple(v.shape) for k, v in m.state_dict().items() if not k.startswith(attention)}
              for m in models]
    assert shapes[0] == shapes[1]  # same ResNet-50, same head: only the attention differs
    assert type(models[0].head) is type(models[1].head)
    assert {type(m).__name__ for m in models[0].backbone.attention_modules()} == {
        {'cbam': 'CBAM', 'se': 'SEAttention'}[control]}


def test_sam_hrnet_is_mmposes_hrnet_plus_attention():
    base = 'td-hm_hrnet-w32-baseline_8xb64-210e_coco-256x192.py'
    sam = 'td-hm_sam-hrnet-w32_8xb64-210e_coco-256x192.py'
    assert _model_diff(sam, base) == {
        'model.backbone.type', 'model.backbone.attention.type', 'model.backbone.attention.ratio',
        'model.backbone.attention.spatial_kernel'}

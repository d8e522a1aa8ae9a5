"""Child processes of ``tests/test_plugin_only_registers.py``: what ``import mmpose_sam`` changes in
a process, and a plain MMPose model's life (fine-tune, train, save, resume) with and without it.

    python tests/helpers_plugin_identity.py snapshot [MODULE]  # what importing MODULE changed
    AS_IF_MMENGINE=0.10.8 python tests/helpers_plugin_identity.py snapshot mmpose_sam.upstream
    python tests/helpers_plugin_identity.py life OUT_DIR [--plugin]  # finetune, then train

Each mode prints one JSON object on its last line.
"""
import importlib
import inspect
import json
import logging
import sys
import types

# Everything of the upstream stack that the plugin could touch, imported before the snapshot.
UPSTREAM = ('torch', 'torch.nn', 'torch.serialization', 'torch.hub', 'mmengine', 'mmengine.runner',
            'mmengine.runner.checkpoint', 'mmengine.optim', 'mmengine.model', 'mmengine.dist',
            'mmengine.dist.utils', 'mmengine.fileio', 'mmengine.hooks', 'mmengine.registry',
            'mmengine.logging', 'mmcv', 'mmcv.transforms', 'mmcv.cnn', 'mmdet', 'mmdet.registry',
            'mmpose', 'mmpose.apis', 'mmpose.models', 'mmpose.models.heads',
            'mmpose.models.pose_estimators', 'mmpose.utils', 'mmpose.utils.tensor_utils',
            'mmpose.datasets', 'mmpose.evaluation', 'mmpose.registry', 'mmpose.engine')
ROOTS = ('torch', 'mmengine', 'mmcv', 'mmdet', 'mmpose')


def _upstream_modules():
    return {name: module for name, module in list(sys.modules.items())
            if isinstance(module, types.ModuleType) and name.split('.')[0] in ROOTS}


def _code_objects(namespace: dict) -> dict:
    """The functions, classes and descriptors of a module's or class's namespace: what a patch
    replaces (plain data such as caches and counters changes by itself)."""
    return {key: value for key, value in namespace.items()
            if inspect.isroutine(value) or inspect.isclass(value) or
            isinstance(value, (property, staticmethod, classmethod))}


def _registries():
    from mmengine.registry import Registry
    found = {}
    for module in _upstream_modules().values():
        for value in list(vars(module).values()):
            if isinstance(value, Registry):
                found[f'{value.scope}::{value.name}'] = value
    return found


def snapshot(target: str = 'mmpose_sam'):
    for name in UPSTREAM:
        importlib.import_module(name)
    from mmengine.fileio.backends import registry_utils
    from mmengine.runner.checkpoint import CheckpointLoader
    before_modules = _upstream_modules()
    objects = {}
    for mname, module in before_modules.items():
        namespace = _code_objects(vars(module))
        objects[mname] = namespace
        for cname, cls in namespace.items():
            if inspect.isclass(cls) and cls.__module__ == mname:
                objects[f'{mname}:{cname}'] = _code_objects(dict(vars(cls)))
    registries = {key: dict(registry.module_dict) for key, registry in _registries().items()}
    schemes = dict(CheckpointLoader._schemes)
    backends = dict(registry_utils.backends)
    prefix_backends = dict(registry_utils.prefix_to_backends)
    excepthook = sys.excepthook

    import os
    if os.environ.get('AS_IF_MMENGINE'):  # a newer MMEngine than the fixes were checked against
        import mmengine
        mmengine.__version__ = os.environ['AS_IF_MMENGINE']
    importlib.import_module(target)  # what is under test

    changed = []
    after_modules = _upstream_modules()
    for key, namespace in objects.items():
        mname, _, cname = key.partition(':')
        holder = after_modules[mname] if not cname else getattr(after_modules[mname], cname)
        now, name = vars(holder), key.replace(':', '.')
        for attr, value in namespace.items():
            if attr not in now:
                changed.append(f'{name}.{attr} -> removed')
            elif now[attr] is not value:
                changed.append(f'{name}.{attr} -> replaced by '
                               f'{getattr(now[attr], "__module__", "?")}')
        for attr, value in _code_objects(dict(now)).items():
            if attr not in namespace and getattr(value, '__module__', '').startswith('mmpose_sam'):
                changed.append(f'{name}.{attr} -> added by {value.__module__}')
    added = []
    registries_after = _registries()
    for key, entries in registries.items():
        now = registries_after[key].module_dict
        for name, obj in entries.items():
            if now.get(name) is not obj:
                changed.append(f'registry {key}::{name} -> replaced by {now.get(name)}')
        for name, obj in now.items():
            if name not in entries:
                added.append(f'{key}::{name}')
                parent = registries_after[key].parent
                if parent is not None and name in parent.module_dict:
                    changed.append(f'registry {key}::{name} -> shadows {parent.scope}::{name}')
    for label, old, new in (
            ('mmengine.runner.checkpoint.CheckpointLoader._schemes', schemes,
             CheckpointLoader._schemes),
            ('mmengine.fileio.backends.registry_utils.backends', backends, registry_utils.backends),
            ('mmengine.fileio.backends.registry_utils.prefix_to_backends', prefix_backends,
             registry_utils.prefix_to_backends)):
        for name, obj in old.items():
            if new.get(name) is not obj:
                changed.append(f"{label}['{name}'] -> replaced")
        added += [f"{label}['{name}']" for name in new if name not in old]
    if sys.excepthook is not excepthook:
        changed.append('sys.excepthook -> replaced')
    return dict(changed=changed, added=added, modules=len(objects))


def _plain_model_cfg(num_keypoints: int = 17) -> dict:
    """A plain MMPose top-down model (ResNet-18, MMPose's HeatmapHead), nothing of ours."""
    # 64x96 crops: ResNet's stride-32 features are 2x3, three 2x deconvolutions make the 16x24
    # heatmaps (a quarter of the input, as MMPose's configs have it).
    codec = dict(type='MSRAHeatmap', input_size=(64, 96), heatmap_size=(16, 24), sigma=2)
    return dict(
        type='TopdownPoseEstimator',
        data_preprocessor=dict(type='PoseDataPreprocessor', mean=[123.675, 116.28, 103.53],
                               std=[58.395, 57.12, 57.375], bgr_to_rgb=True),
        backbone=dict(type='ResNet', depth=18),
        head=dict(type='HeatmapHead', in_channels=512, out_channels=num_keypoints,
                  deconv_out_channels=(64, 64, 64), deconv_kernel_sizes=(4, 4, 4),
                  loss=dict(type='KeypointMSELoss', use_target_weight=True), decoder=codec),
        test_cfg=dict(flip_test=False))


def _state_digest(model) -> str:
    import hashlib
    digest = hashlib.sha256()
    for key, value in sorted(model.state_dict().items()):
        digest.update(key.encode())
        digest.update(value.detach().cpu().float().numpy().tobytes())
    return digest.hexdigest()


def finetune(out: str):
    """MMPose's usual transfer: a 17-keypoint checkpoint into a 14-keypoint model with
    ``mmengine.runner.load_checkpoint``: MMEngine logs the mismatched head and goes on."""
    import torch
    from mmengine.logging import MMLogger
    from mmengine.runner import load_checkpoint
    from mmpose.registry import MODELS
    from mmpose.utils import register_all_modules
    register_all_modules()
    torch.manual_seed(0)
    source = MODELS.build(_plain_model_cfg(17))
    torch.save({'state_dict': source.state_dict()}, out)  # plain tensors: loads weights-only
    torch.manual_seed(1)
    target = MODELS.build(_plain_model_cfg(14))
    records = []
    handler = logging.Handler()
    handler.emit = lambda record: records.append(record.getMessage())
    MMLogger.get_current_instance().addHandler(handler)
    try:
        load_checkpoint(target, out, map_location='cpu', logger='current')
        outcome = 'loaded'
    except Exception as error:  # noqa: BLE001  (the outcome is what is compared)
        outcome = f'{type(error).__name__}: {error}'
    return dict(outcome=outcome, state=_state_digest(target),
                warnings=[record.replace(out, 'OUT') for record in records])


def train(out: str):
    """A plain MMPose config trains 2 iterations, saves, and resumes for a third."""
    import os

    import numpy as np
    from mmengine.config import Config
    from mmengine.runner import Runner
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    sample = os.path.join(root, 'data', 'coco_sample')
    codec = _plain_model_cfg()['head']['decoder']
    pipeline = [dict(type='LoadImage'), dict(type='GetBBoxCenterScale'),
                dict(type='TopdownAffine', input_size=codec['input_size']),
                dict(type='GenerateTarget', encoder=codec), dict(type='PackPoseInputs')]
    dataset = dict(type='CocoDataset', data_root=sample, ann_file='test_coco.json',
                   data_prefix=dict(img=''), pipeline=pipeline)

    def cfg(iters: int, resume: bool) -> Config:
        return Config(dict(
            default_scope='mmpose', model=_plain_model_cfg(), work_dir=out,
            experiment_name=f'plain-{iters}', randomness=dict(seed=0, deterministic=True),
            train_dataloader=dict(batch_size=4, num_workers=0, dataset=dataset,
                                  sampler=dict(type='DefaultSampler', shuffle=False)),
            train_cfg=dict(by_epoch=False, max_iters=iters),
            optim_wrapper=dict(optimizer=dict(type='Adam', lr=1e-3)),
            default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=2, by_epoch=False),
                               logger=dict(type='LoggerHook', interval=1)),
            env_cfg=dict(dist_cfg=dict(backend='gloo')), resume=resume,
            log_level='WARNING'))

    losses = []
    for iters, resume in ((2, False), (3, True)):  # the second run resumes from iter_2.pth
        runner = Runner.from_cfg(cfg(iters, resume))
        runner.train()
        history = runner.message_hub.get_scalar('train/loss').data[0]
        losses.append([round(float(value), 6) for value in np.asarray(history)])
    files = sorted(name for name in os.listdir(out) if name.endswith('.pth') or
                   name == 'last_checkpoint')
    return dict(losses=losses, files=files, state=_state_digest(runner.model))


def life(out: str):
    """``finetune`` and then ``train``, in one process (one child's imports, ~10 s, for both)."""
    import os
    os.makedirs(out, exist_ok=True)
    return dict(finetune=finetune(os.path.join(out, 'finetune.pth')),
                train=train(os.path.join(out, 'train')))


if __name__ == '__main__':
    mode = sys.argv[1]
    if '--plugin' in sys.argv:
        import mmpose_sam  # noqa: F401
    result = snapshot(*sys.argv[2:3]) if mode == 'snapshot' else life(sys.argv[2])
    print(json.dumps(result))

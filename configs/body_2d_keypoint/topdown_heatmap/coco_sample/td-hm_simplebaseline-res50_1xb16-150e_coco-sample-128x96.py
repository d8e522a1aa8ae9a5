# SimpleBaseline-R50 from scratch on the bundled COCO sample (data/coco_sample: 4 val2017 images,
# 12 people with keypoints). Twelve people cannot teach pose estimation; training and testing on
# them is a memorisation check of the whole MMPose loop (data, codec, model, loss, decoding, COCO
# evaluation). Augmentation is off, the learning rate high and the input 128x96 (heatmaps 32x24; a
# quarter of the 256x192 compute) so that it converges in minutes on a CPU. Also the template for
# any COCO-format data set: change data_root, ann_file, data_prefix and bbox_file (README.md,
# "Your own data"); turn augmentation and the flip test back on for real training.
_base_ = ['../coco/td-hm_simplebaseline-res50_8xb64-210e_coco-256x192.py']

data_root = 'data/coco_sample/'
ann_file = 'test_coco.json'
img_prefix = ''
# COCO-format person detections, for testing with detected instead of ground-truth boxes:
# --cfg-options test_dataloader.dataset.bbox_file=data/coco_sample/test_coco_det_AP_H_56.json
det_bbox_file = data_root + 'test_coco_det_AP_H_56.json'

train_cfg = dict(max_epochs=150, val_interval=50)
optim_wrapper = dict(optimizer=dict(type='Adam', lr=2e-3))
param_scheduler = [
    dict(type='LinearLR', begin=0, end=10, start_factor=0.01, by_epoch=False),  # warm-up
    dict(type='MultiStepLR', begin=0, end=150, milestones=[120], gamma=0.1, by_epoch=True)
]
auto_scale_lr = dict(base_batch_size=16)

# 128x96 crops, 32x24 heatmaps (sigma scaled with the heatmap). At 32x24 one heatmap pixel is 4
# input pixels, so targets centred on whole pixels cap the accuracy at strict OKS thresholds:
# DARK (unbiased=True) encodes Gaussians at sub-pixel centres and refines the decoded maximum.
codec = dict(
    type='MSRAHeatmap',
    input_size=(96, 128),
    heatmap_size=(24, 32),
    sigma=1,
    unbiased=True,
    blur_kernel_size=3)
model = dict(
    backbone=dict(init_cfg=None),  # from scratch: no ImageNet download
    head=dict(decoder=codec),
    # Training never flips (no augmentation), so a flip test would average in heatmaps of mirrored
    # people the network has never seen. Measured on SAM-R50 checkpoints: AP 0.891 and 0.941 with
    # the flip test, 1.000 for both without.
    test_cfg=dict(flip_test=False))
train_pipeline = [  # no augmentation: memorise the sample
    dict(type='LoadImage'),
    dict(type='GetBBoxCenterScale'),
    dict(type='TopdownAffine', input_size=codec['input_size']),
    dict(type='GenerateTarget', encoder=codec),
    dict(type='PackPoseInputs')
]
val_pipeline = [
    dict(type='LoadImage'),
    dict(type='GetBBoxCenterScale'),
    dict(type='TopdownAffine', input_size=codec['input_size']),
    dict(type='PackPoseInputs')
]
# What the three loaders share: one process, the whole sample in one batch of up to 16 crops.
sample_loader = dict(batch_size=16, num_workers=0, persistent_workers=False)
sample_data = dict(data_root=data_root, ann_file=ann_file, data_prefix=dict(img=img_prefix))
train_dataloader = dict(**sample_loader, dataset=dict(**sample_data, pipeline=train_pipeline))
val_dataloader = dict(
    **sample_loader,
    dataset=dict(**sample_data, bbox_file=None, pipeline=val_pipeline))  # ground-truth boxes
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + ann_file)
test_evaluator = val_evaluator

default_hooks = dict(
    logger=dict(interval=5),
    checkpoint=dict(interval=50, max_keep_ckpts=1, save_best='coco/AP', rule='greater'))

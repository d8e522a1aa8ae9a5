# SimpleBaseline-R50 trained with the paper's recipe (Tran et al., Sec. 4.1), so that SimpleBaseline
# and SAM can be compared under either schedule:
# Adam (beta1 0.9), lr 1e-3, 270 epochs, lr x0.1 at epochs 170 and 200; augmentation: horizontal
# flip, rotation up to 40 degrees, scale factor 0.3 (no bbox shift, no half-body).
# The paper trained with batch size 4 on one GTX 1080Ti; this keeps MMPose's 8x64 layout (with
# auto_scale_lr for other batch sizes).
_base_ = ['./td-hm_simplebaseline-res50_8xb64-210e_coco-256x192.py']

train_cfg = dict(max_epochs=270)
optim_wrapper = dict(optimizer=dict(type='Adam', lr=1e-3))
param_scheduler = [
    dict(type='LinearLR', begin=0, end=500, start_factor=0.001, by_epoch=False),  # warm-up
    dict(type='MultiStepLR', begin=0, end=270, milestones=[170, 200], gamma=0.1, by_epoch=True)
]

codec = _base_.codec
train_pipeline = [
    dict(type='LoadImage'),
    dict(type='GetBBoxCenterScale'),
    dict(type='RandomFlip', direction='horizontal'),
    dict(type='RandomBBoxTransform', shift_prob=0., scale_factor=(0.7, 1.3), rotate_factor=40.),
    dict(type='TopdownAffine', input_size=codec['input_size']),
    dict(type='GenerateTarget', encoder=codec),
    dict(type='PackPoseInputs')
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))

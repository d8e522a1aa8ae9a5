# SimpleBaseline-R101: MMPose's td-hm_res101_8xb64-210e_coco-256x192.py differs from its R50 config
# only in the backbone's depth and ImageNet weights, so this is our R50 config with those two.
_base_ = ['./td-hm_simplebaseline-res50_8xb64-210e_coco-256x192.py']

model = dict(
    backbone=dict(
        depth=101,
        init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet101')))

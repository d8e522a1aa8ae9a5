# SimpleBaseline-R101 at 384x288 with the same recipe as its SAM twin: MMPose's R50 384x288 config
# (8x64) with a deeper backbone. (MMPose's own R101 384x288 config trains with 8x32.)
_base_ = ['./td-hm_simplebaseline-res50_8xb64-210e_coco-384x288.py']

model = dict(
    backbone=dict(
        depth=101,
        init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet101')))

# SAM-R101 (3x3+3x3): the R50 config with a deeper backbone.
_base_ = ['./td-hm_sam-res50-seq3x3_8xb64-210e_coco-256x192.py']

model = dict(
    backbone=dict(
        depth=101,
        init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet101')))

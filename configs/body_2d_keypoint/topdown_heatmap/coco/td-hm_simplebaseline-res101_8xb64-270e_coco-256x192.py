# SimpleBaseline-R101 with the paper's recipe: the R50 config with a deeper backbone.
_base_ = ['./td-hm_simplebaseline-res50_8xb64-270e_coco-256x192.py']

model = dict(
    backbone=dict(
        depth=101,
        init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet101')))

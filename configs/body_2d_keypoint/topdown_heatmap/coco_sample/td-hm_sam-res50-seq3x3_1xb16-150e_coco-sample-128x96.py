# SAM-R50 (3x3+3x3) from scratch on the bundled COCO sample: the main job (tools/main_job.py).
# The SimpleBaseline sample config plus the model diff (see its header for the recipe).
_base_ = ['./td-hm_simplebaseline-res50_1xb16-150e_coco-sample-128x96.py']

model = dict(
    backbone=dict(type='SAMResNet', init_cfg=None),
    head=dict(type='BilinearHeatmapHead'))

# CBAM-R50, the control for SAM-R50, from scratch on the bundled COCO sample: the SAM sample config
# with CBAM in place of the paper's attention module (same BilinearHeatmapHead, same recipe).
_base_ = ['./td-hm_sam-res50-seq3x3_1xb16-150e_coco-sample-128x96.py']

model = dict(
    backbone=dict(
        _delete_=True,
        type='AttentionResNet',
        depth=50,
        attention=dict(type='CBAM', ratio=16),
        init_cfg=None))

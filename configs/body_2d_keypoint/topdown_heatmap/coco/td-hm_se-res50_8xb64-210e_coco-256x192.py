# Control for SAM-R50: MMPose's td-hm_res50_8xb64-210e_coco-256x192 with the squeeze-and-excitation
# channel gate alone (Hu et al. 2018; the paper's module without its spatial attention and residual
# add) after each ResNet stage.
# It differs from SAM-R50 (td-hm_sam-res50-seq3x3_8xb64-210e_coco-256x192) only in the attention
# module: it keeps SAM-R50's BilinearHeatmapHead instead of MMPose's HeatmapHead, so that the
# comparison isolates the attention.
_base_ = ['./td-hm_sam-res50-seq3x3_8xb64-210e_coco-256x192.py']

model = dict(
    backbone=dict(
        _delete_=True,  # SAMResNet's arguments are the paper module's
        type='AttentionResNet',
        depth=50,
        attention=dict(type='SEAttention', ratio=16),
        init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet50')))

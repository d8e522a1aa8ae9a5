# Control for SAM-R50: MMPose's td-hm_res50_8xb64-210e_coco-256x192 with CBAM (Woo et al. 2018:
# channel gate on average and max pooling, then a 7x7 spatial gate on the channel average and max,
# no residual add) after each ResNet stage.
# It differs from SAM-R50 (td-hm_sam-res50-seq3x3_8xb64-210e_coco-256x192) only in the attention
# module: it keeps SAM-R50's BilinearHeatmapHead instead of MMPose's HeatmapHead, so that the
# comparison isolates the attention.
_base_ = ['./td-hm_sam-res50-seq3x3_8xb64-210e_coco-256x192.py']

model = dict(
    backbone=dict(
        _delete_=True,  # SAMResNet's arguments are the paper module's
        type='AttentionResNet',
        depth=50,
        attention=dict(type='CBAM', ratio=16),
        init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet50')))

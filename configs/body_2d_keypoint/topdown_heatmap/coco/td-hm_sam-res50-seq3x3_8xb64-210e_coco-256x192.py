# SAM-R50 (3x3+3x3), MMPose's standard COCO schedule: SimpleBaseline's config plus the model diff.
_base_ = ['./td-hm_simplebaseline-res50_8xb64-210e_coco-256x192.py']

# The paper's model (Tran et al., Fig. 1): ResNet with channel + spatial attention after each
# stage, and a head that upsamples by bilinear interpolation + conv instead of transposed convs.
model = dict(
    backbone=dict(
        type='SAMResNet',
        spatial_kernel='3x3+3x3',  # Table 1: '3x3+3x3' (paper), '3x3//3x3' or '7x7'
        attention_ratio=16,
    ),
    head=dict(
        type='BilinearHeatmapHead',
        upsample_out_channels=(256, 256, 256),
        upsample_kernel_sizes=(3, 3, 3),
        # A 3x3 conv after the upsampling: with it the model has the paper's 30.7M (R50) and
        # 49.7M (R101) parameters; see docs/parameter_counts.md. These are the head's defaults.
        conv_out_channels=(256, ),
        conv_kernel_sizes=(3, ),
    ))

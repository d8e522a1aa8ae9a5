# SAM-R50 (3x3+3x3) on COCO 256x192 with MMPose's standard schedule, self-contained so that this
# folder works when copied into an MMPose checkout's projects/ (needs `pip install mmpose-sam`,
# see ../README.md). The same model as configs/body_2d_keypoint/topdown_heatmap/coco/ of mmpose-sam.
_base_ = ['mmpose::body_2d_keypoint/topdown_heatmap/coco/td-hm_res50_8xb64-210e_coco-256x192.py']

custom_imports = dict(imports=['mmpose_sam'], allow_failed_imports=False)

model = dict(
    backbone=dict(type='SAMResNet', spatial_kernel='3x3+3x3', attention_ratio=16),
    head=dict(
        type='BilinearHeatmapHead',
        upsample_out_channels=(256, 256, 256),
        upsample_kernel_sizes=(3, 3, 3),
        conv_out_channels=(256, ),
        conv_kernel_sizes=(3, )))

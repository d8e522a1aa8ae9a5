# SAM-HRNet-W32: MMPose's HRNet-W32 (td-hm_hrnet-w32_8xb64-210e_coco-256x192) plus the paper's
# attention module (channel attention, 3x3+3x3 spatial attention, residual add) after each of the
# four stages, on every resolution branch the stage outputs. Everything else, the head included,
# is MMPose's; ImageNet HRNet weights load into the HRNet part, the attention modules start fresh.
_base_ = ['./td-hm_hrnet-w32-baseline_8xb64-210e_coco-256x192.py']

model = dict(
    backbone=dict(
        type='AttentionHRNet',
        attention=dict(type='StageAttention', ratio=16, spatial_kernel='3x3+3x3')))

# HRNet-W32 (Sun et al. 2019) with MMPose's model, data and schedule, plus our speed and safety
# settings (configs/_base_/mmpose_sam_settings.py, the same as in our SimpleBaseline-R50 root): the
# base of SAM-HRNet-W32, and MMPose's strongest model of this size as a baseline in the same
# runtime. Nothing here changes the model, the data, the augmentation or the schedule.
_base_ = [
    'mmpose::body_2d_keypoint/topdown_heatmap/coco/td-hm_hrnet-w32_8xb64-210e_coco-256x192.py',
    '../../../_base_/mmpose_sam_settings.py'
]

# MMEngine refuses a key defined by two bases: our settings merge into MMPose's keys here.
optim_wrapper = _base_.speed_and_safety.optim_wrapper
env_cfg = _base_.speed_and_safety.env_cfg
model = _base_.speed_and_safety.model
train_dataloader = _base_.speed_and_safety.train_dataloader
val_dataloader = _base_.speed_and_safety.val_dataloader
test_dataloader = val_dataloader
train_cfg = _base_.speed_and_safety.train_cfg
default_hooks = _base_.speed_and_safety.default_hooks
custom_hooks = _base_.speed_and_safety.custom_hooks
model_wrapper_cfg = _base_.speed_and_safety.model_wrapper_cfg

# SimpleBaseline-R50 (Xiao et al. 2018) with MMPose's model, data and schedule, the baseline the paper
# compares against. Every ResNet COCO config here (SimpleBaseline, SAM and the CBAM/SE controls,
# R50 and R101, 256x192 and 384x288, both schedules) inherits this file, so our speed and safety
# settings are the same for all of them and comparisons stay fair. They are MMPose's config plus
# configs/_base_/mmpose_sam_settings.py (shared with the HRNet root), which changes neither the
# model, the data, the augmentation nor the schedule: it sets how fast and how safely a run goes
# (README "Training speed").
_base_ = ['mmpose::body_2d_keypoint/topdown_heatmap/coco/td-hm_res50_8xb64-210e_coco-256x192.py',
          '../../../_base_/mmpose_sam_settings.py']

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

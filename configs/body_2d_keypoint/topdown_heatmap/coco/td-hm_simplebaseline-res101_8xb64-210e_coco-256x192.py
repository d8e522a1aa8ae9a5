# SimpleBaseline-R101 (Xiao et al. 2018) exactly as MMPose ships it, the baseline the paper
# compares against. It only adds `custom_imports`, so that it runs beside the SAM configs with the
# same checkpoint fixes (mmpose_sam/checkpoint.py).
_base_ = ['mmpose::body_2d_keypoint/topdown_heatmap/coco/td-hm_res101_8xb64-210e_coco-256x192.py']

custom_imports = dict(imports=['mmpose_sam'], allow_failed_imports=False)

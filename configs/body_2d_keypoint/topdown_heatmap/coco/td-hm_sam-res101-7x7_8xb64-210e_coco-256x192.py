# SAM-R101 with the spatial-attention variant of Table 1: one 7x7 conv (the authors' earlier attention module, CBAM-style).
_base_ = ['./td-hm_sam-res101-seq3x3_8xb64-210e_coco-256x192.py']

model = dict(backbone=dict(spatial_kernel='7x7'))

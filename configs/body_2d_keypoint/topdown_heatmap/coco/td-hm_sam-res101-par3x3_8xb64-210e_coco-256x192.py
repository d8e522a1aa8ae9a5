# SAM-R101 with the spatial-attention variant of Table 1: two parallel 3x3 convs, summed.
_base_ = ['./td-hm_sam-res101-seq3x3_8xb64-210e_coco-256x192.py']

model = dict(backbone=dict(spatial_kernel='3x3//3x3'))

# SAM-R50 (3x3+3x3), the paper's schedule: SimpleBaseline's paper-schedule config plus the model diff.
_base_ = ['./td-hm_simplebaseline-res50_8xb64-270e_coco-384x288.py']

# The paper's model: SAMResNet (attention after each stage, 3x3+3x3 spatial convs) and the
# bilinear-upsampling head; both default to the paper's settings (spelled out in
# td-hm_sam-res50-seq3x3_8xb64-210e_coco-256x192.py).
model = dict(backbone=dict(type='SAMResNet'), head=dict(type='BilinearHeatmapHead'))

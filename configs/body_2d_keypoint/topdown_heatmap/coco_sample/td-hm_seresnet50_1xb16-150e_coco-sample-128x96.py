# MMPose's SEResNet-50 (td-hm_seresnet50_8xb64-210e_coco-256x192: an SE gate inside every block,
# MMPose's HeatmapHead) from scratch on the bundled COCO sample, with the SimpleBaseline sample
# config's recipe: MMPose's strongest ResNet-50-sized baseline in the comparison.
_base_ = ['./td-hm_simplebaseline-res50_1xb16-150e_coco-sample-128x96.py']

model = dict(backbone=dict(type='SEResNet'))

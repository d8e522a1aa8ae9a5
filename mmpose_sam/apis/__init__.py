"""Inference helpers: MMPose's inferencer with person boxes from a file (:mod:`.inference`, used by
``tools/demo.py``), the checks of its inputs with one-line errors (:mod:`.inputs`), a faster model
for inference (:mod:`.optimize`) and the spatial attention maps of any attention backbone
(:mod:`.attention`, used by ``tools/visualize_attention.py``)."""
from mmpose_sam.errors import InvalidInputError
from mmpose_sam.apis.attention import (StageMap, capture_spatial_attention, overlay_attention,
                                       person_prefixes, save_attention_pictures,
                                       spatial_attention_gates, topdown_inputs)
from mmpose_sam.apis.inference import TopdownInferencer
from mmpose_sam.apis.inputs import (IMAGE_SUFFIXES, BBoxFile, ImageItem, check_video, is_video,
                                    iter_images, list_images, load_bbox_file, load_image,
                                    load_image_ids, require_files, select_boxes)
from mmpose_sam.apis.optimize import optimize_for_inference

__all__ = [
    # attention maps
    'StageMap', 'capture_spatial_attention', 'overlay_attention', 'person_prefixes',
    'save_attention_pictures', 'spatial_attention_gates', 'topdown_inputs',
    # inputs, boxes, the inferencer
    'IMAGE_SUFFIXES', 'BBoxFile', 'ImageItem', 'InvalidInputError', 'TopdownInferencer',
    'check_video', 'is_video', 'iter_images', 'list_images', 'load_bbox_file',
    'load_image', 'load_image_ids', 'require_files', 'select_boxes',
    # faster inference
    'optimize_for_inference'
]

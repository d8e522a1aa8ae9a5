"""Inference helpers: MMPose's inferencer with person boxes from a file and one-line errors for bad
input (:mod:`.inference`, used by ``tools/demo.py``), and the spatial attention maps of a
SAMResNet (:mod:`.attention`, used by ``tools/visualize_attention.py``)."""
from ..errors import InvalidInputError
from .attention import (StageMap, capture_spatial_attention, overlay_attention, person_prefixes,
                        save_attention_pictures, spatial_attention_gates, topdown_inputs)
from .inference import (IMAGE_SUFFIXES, BBoxFile, ImageItem, TopdownInferencer, check_video,
                        default_device, is_video, iter_images, list_images, load_bbox_file,
                        load_image, load_image_ids, require_files, select_boxes)
from .optimize import optimize_for_inference

__all__ = [
    # attention maps
    'StageMap', 'capture_spatial_attention', 'overlay_attention', 'person_prefixes',
    'save_attention_pictures', 'spatial_attention_gates', 'topdown_inputs',
    # inputs, boxes, the inferencer
    'IMAGE_SUFFIXES', 'BBoxFile', 'ImageItem', 'InvalidInputError', 'TopdownInferencer',
    'check_video', 'default_device', 'is_video', 'iter_images', 'list_images', 'load_bbox_file',
    'load_image', 'load_image_ids', 'require_files', 'select_boxes',
    # faster inference
    'optimize_for_inference'
]

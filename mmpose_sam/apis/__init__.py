"""Inference helpers: MMPose's inferencer with person boxes from a file (:mod:`.inference`), its
input checks (:mod:`.inputs`), :func:`optimize_for_inference` and attention maps
(:mod:`.attention`)."""
from mmpose_sam.errors import InvalidInputError
from mmpose_sam.apis.attention import (StageMap, capture_spatial_attention, person_prefixes,
                                       save_attention_pictures, spatial_attention_gates,
                                       topdown_inputs)
from mmpose_sam.apis.inference import TopdownInferencer
from mmpose_sam.apis.inputs import (BBoxFile, check_video, is_video, iter_images, list_images,
                                    load_image, require_files, select_boxes)
from mmpose_sam.apis.optimize import optimize_for_inference

__all__ = [
    'StageMap', 'capture_spatial_attention', 'person_prefixes', 'save_attention_pictures',
    'spatial_attention_gates', 'topdown_inputs', 'BBoxFile', 'InvalidInputError',
    'TopdownInferencer', 'check_video', 'is_video', 'iter_images', 'list_images', 'load_image',
    'require_files', 'select_boxes', 'optimize_for_inference'
]

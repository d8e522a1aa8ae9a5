"""Inference helpers: images and person boxes in, poses, JSON and pictures out
(:mod:`.inference`, used by ``tools/demo.py``), and the spatial attention maps of a SAMResNet
(:mod:`.attention`, used by ``tools/visualize_attention.py``)."""
from .attention import (StageMap, capture_spatial_attention, overlay_attention, person_prefixes,
                        save_attention_pictures, spatial_attention_gates, topdown_inputs)
from .inference import (BBoxFile, ImageItem, InvalidInputError, build_detector,
                        build_pose_visualizer, default_device, detect_people, draw_poses,
                        estimate_poses, iter_images, list_images, load_bbox_file, load_image,
                        load_image_ids, people_to_json, person_boxes, require_files,
                        select_boxes, whole_image_box, write_json)

__all__ = [
    # attention maps
    'StageMap', 'capture_spatial_attention', 'overlay_attention', 'person_prefixes',
    'save_attention_pictures', 'spatial_attention_gates', 'topdown_inputs',
    # images, boxes, poses, outputs
    'BBoxFile', 'ImageItem', 'InvalidInputError', 'build_detector', 'build_pose_visualizer',
    'default_device', 'detect_people', 'draw_poses', 'estimate_poses', 'iter_images',
    'list_images', 'load_bbox_file', 'load_image', 'load_image_ids', 'people_to_json',
    'person_boxes', 'require_files', 'select_boxes', 'whole_image_box', 'write_json'
]

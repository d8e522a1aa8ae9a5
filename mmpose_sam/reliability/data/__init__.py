"""Checked data: the checks of ``tools/check_dataset.py`` and a COCO dataset that runs them.

``import mmpose_sam`` registers :class:`CheckedCocoDataset` into ``mmpose.registry.DATASETS``.
What is checked, what stops and what is skipped: ``docs/data_checks.md``.
"""
from mmpose_sam.reliability.data.checked_coco_dataset import CheckedCocoDataset, DatasetError
from mmpose_sam.reliability.data.coco_checks import (check_coco_annotations, check_detections,
                                                     load_json, mmpose_keeps)
from mmpose_sam.reliability.data.image_checks import check_image
from mmpose_sam.reliability.data.problems import ERROR, WARNING, Problem

__all__ = [
    'CheckedCocoDataset', 'DatasetError', 'Problem', 'ERROR', 'WARNING', 'check_coco_annotations',
    'check_detections', 'check_image', 'load_json', 'mmpose_keeps'
]

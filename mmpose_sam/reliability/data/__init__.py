"""Checked data: the checks of ``tools/check_dataset.py`` and :class:`CheckedCocoDataset`, which
runs them (``docs/data_checks.md``)."""
from mmpose_sam.reliability.data.checked_coco_dataset import CheckedCocoDataset, DatasetError
from mmpose_sam.reliability.data.coco_checks import (check_coco_annotations, check_detections,
                                                     load_json)
from mmpose_sam.reliability.data.image_checks import check_image
from mmpose_sam.reliability.data.problems import ERROR, WARNING

__all__ = [
    'CheckedCocoDataset', 'DatasetError', 'ERROR', 'WARNING', 'check_coco_annotations',
    'check_detections', 'check_image', 'load_json'
]

"""Support, not the paper: runs that fail safely and say why in one line.

- :mod:`.checkpoint`: checkpoints loaded as data (never executed), refused in one line when they
  do not fit the model or are cut short, saved atomically;
- :mod:`.data`: COCO annotation, detection and image checks, and the dataset that runs them;
- :mod:`.hooks`: divergence, preemption, an unusable GPU, a killed loader worker.
"""
from mmpose_sam.reliability import checkpoint, data, hooks  # they register

__all__ = ['checkpoint', 'data', 'hooks']

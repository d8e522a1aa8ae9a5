from .stacked_batch import StackedPoseDataPreprocessor, stack_collate

__all__ = ['StackedPoseDataPreprocessor', 'stack_collate']

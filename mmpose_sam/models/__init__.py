from .attention import ChannelAttention, SpatialAttention, StageAttention
from .backbones import SAMResNet
from .heads import BilinearHeatmapHead

__all__ = [
    'SAMResNet', 'BilinearHeatmapHead', 'StageAttention', 'ChannelAttention', 'SpatialAttention'
]

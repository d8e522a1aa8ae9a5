from .sam_resnet import SAMResNet

__all__ = ['SAMResNet']

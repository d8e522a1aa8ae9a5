"""mmpose-sam: the Efficient Spatial-Attention pose network as an MMPose 1.x plugin.

Importing the package only adds names to MMPose's and MMEngine's registries
(:func:`registered_modules`) and replaces nothing. The layout:
README "Architecture: the paper and its support"; :mod:`.upstream` is imported by our configs
only (README "Upstream fixes").
"""
import warnings
from typing import List

# MMEngine 0.10.7 and mim import pkg_resources, which setuptools 81 (pinned: mmcv's setup.py and
# `mmpose::` config bases still need it) deprecates with a warning on every command. Nothing to
# act on until MMEngine drops it; a warnings filter, not a patch.
warnings.filterwarnings('ignore', message='pkg_resources is deprecated', category=UserWarning)

from mmpose_sam.version import __version__  # noqa: E402
from mmpose_sam import models, reliability, speed  # noqa: E402  (they register)
from mmpose_sam.models import (BilinearHeatmapHead, ChannelAttention, SAMResNet,  # noqa: E402
                               SpatialAttention, StageAttention)


def registered_modules() -> List[str]:
    """Names this package registers into MMPose's (and MMEngine's) registries."""
    from mmengine.registry import FUNCTIONS, MODEL_WRAPPERS, OPTIM_WRAPPERS
    from mmpose.registry import DATASETS, HOOKS, LOOPS, MODELS, TRANSFORMS
    return [name for registry in (MODELS, HOOKS, LOOPS, DATASETS, TRANSFORMS, OPTIM_WRAPPERS,
                                  MODEL_WRAPPERS, FUNCTIONS)
            for name, obj in registry.module_dict.items()
            if getattr(obj, '__module__', '').startswith(__name__ + '.')]


__all__ = [
    '__version__', 'registered_modules', 'models', 'reliability', 'speed', 'BilinearHeatmapHead',
    'ChannelAttention', 'SAMResNet', 'SpatialAttention', 'StageAttention'
]

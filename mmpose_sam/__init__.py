"""mmpose-sam: the Efficient Spatial-Attention pose network as an MMPose 1.x plugin.

Importing the package (configs do it with ``custom_imports=dict(imports=['mmpose_sam'])``)
registers its models, data preprocessor, hooks and datasets into MMPose's registries (see
:func:`registered_modules`) and applies the fixes for MMEngine 0.10.x and MMPose 1.3.x that the
project needs, each in a module of its own that says which upstream version makes it unnecessary:
checkpoint loading and saving (:mod:`mmpose_sam.checkpoint`), ``--launcher pytorch`` without a GPU
(:mod:`mmpose_sam.distributed`), bf16 AMP (:mod:`mmpose_sam.amp`), MMEngine's ``compile`` option
(:mod:`mmpose_sam.compile`), and the training accuracy on the device
(:mod:`mmpose_sam.models.heads.device_accuracy`). An uncaught :class:`~mmpose_sam.errors.
UserError` (a bad file, option or checkpoint) prints one line instead of a traceback.
"""
import warnings
from typing import List

# MMEngine 0.10.7 and mim import pkg_resources, which setuptools 81 (pinned: mmcv's setup.py and
# `mmpose::` config bases still need it) deprecates with a warning on every command. Nothing to
# act on until MMEngine drops it; imported before MMEngine, this package keeps it off the screen.
warnings.filterwarnings('ignore', message='pkg_resources is deprecated', category=UserWarning)

from .version import __version__  # noqa: E402
# Fixes for MMEngine 0.10.x: they must be in place before a runner loads a checkpoint or starts
# distributed training, which is why configs import this package (custom_imports).
from . import checkpoint, distributed  # noqa: F401,E402
from .errors import install_excepthook  # noqa: E402
from . import datasets, engine, models  # noqa: F401,E402
from .models import (BilinearHeatmapHead, ChannelAttention, SAMResNet,  # noqa: F401,E402
                     SpatialAttention, StackedPoseDataPreprocessor, StageAttention)
from .models.heads import enable_device_accuracy  # noqa: E402
# After the models, so that MMPose's heads are imported and their `to_numpy` can be replaced.
from .amp import AmpOptimWrapper, patch_mmpose_to_numpy  # noqa: F401,E402
from .compile import exclude_optimizer_step_from_compile  # noqa: E402

patch_mmpose_to_numpy()
enable_device_accuracy()
exclude_optimizer_step_from_compile()
install_excepthook()


def registered_modules() -> List[str]:
    """Names this package registers into MMPose's (and MMEngine's) registries, in the order of
    registration. ``AmpOptimWrapper`` replaces MMEngine's under its own name."""
    from mmengine.registry import FUNCTIONS, OPTIM_WRAPPERS
    from mmpose.registry import DATASETS, HOOKS, MODELS, TRANSFORMS
    return [name for registry in (MODELS, HOOKS, DATASETS, TRANSFORMS, OPTIM_WRAPPERS, FUNCTIONS)
            for name, obj in registry.module_dict.items()
            if getattr(obj, '__module__', '').startswith(__name__ + '.')]


__all__ = [
    '__version__', 'registered_modules', 'AmpOptimWrapper', 'BilinearHeatmapHead',
    'ChannelAttention', 'SAMResNet', 'SpatialAttention', 'StackedPoseDataPreprocessor',
    'StageAttention'
]

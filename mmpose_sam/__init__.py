"""mmpose-sam: the Efficient Spatial-Attention pose network as an MMPose 1.x plugin.

Importing the package (configs do it with ``custom_imports=dict(imports=['mmpose_sam'])``)
registers its models into ``mmpose.registry.MODELS`` and a throughput hook into
``mmpose.registry.HOOKS``, lets MMEngine load its own checkpoints on
torch>=2.6 and write them atomically (:mod:`mmpose_sam.checkpoint`), lets ``--launcher
pytorch`` run without a GPU (:mod:`mmpose_sam.distributed`) and MMPose's heads train with bf16
AMP (:mod:`mmpose_sam.amp`).
"""
from .version import __version__
# Fixes for MMEngine 0.10.x: they must be in place before a runner loads a checkpoint or starts
# distributed training, which is why configs import this package (custom_imports).
from . import checkpoint, distributed  # noqa: F401,E402
from .engine import TrainThroughputHook  # noqa: F401,E402
from .models import *  # noqa: F401,F403,E402
from .models import __all__ as _model_names  # noqa: E402
# After the models, so that MMPose's heads are imported and their `to_numpy` can be replaced.
from .amp import patch_mmpose_to_numpy  # noqa: E402

patch_mmpose_to_numpy()


def registered_modules():
    """Names this package registers into MMPose's ``MODELS`` registry."""
    return list(_model_names)


__all__ = ['__version__', 'registered_modules', 'TrainThroughputHook', *_model_names]

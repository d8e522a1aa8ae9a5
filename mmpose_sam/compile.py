"""``torch.compile`` through MMEngine's ``compile`` option, fixed for MMEngine 0.10.x.

MMEngine's ``compile=True`` (or ``compile=dict(...)``, or ``--cfg-options compile=True``)
compiles ``model.train_step`` whole: data preprocessing, forward, loss, backward and the
optimizer step. Two parts of that do not belong in a graph:

- the optimizer step reads the learning rate as a Python float, which TorchDynamo guards on: every
  iteration of a warm-up (MMPose's COCO configs: 500 iterations of LinearLR) changes it and
  recompiles, until Dynamo's recompile limit makes it give up on the frame (seen on CPU here:
  10 slow iterations of recompiling before the schedule settled);
- data samples are Python objects whose metainfo MMPose deep-copies, which Dynamo fails on
  (``StackedPoseDataPreprocessor`` opts out itself).

``OptimWrapper.update_params`` (backward, step, zero_grad) is therefore excluded from tracing:
Dynamo compiles forward and loss (and AOTAutograd their backward), the step runs as it always
did. Applied by ``import mmpose_sam``; unnecessary once MMEngine compiles only the model's
forward (not the case up to 0.10.7).
"""
import torch
from mmengine.optim import OptimWrapper


def exclude_optimizer_step_from_compile() -> None:
    """Mark ``OptimWrapper.update_params`` with ``torch.compiler.disable`` (once)."""
    if not getattr(OptimWrapper.update_params, '_mmpose_sam_eager', False):
        eager = torch.compiler.disable(OptimWrapper.update_params)
        eager._mmpose_sam_eager = True
        OptimWrapper.update_params = eager

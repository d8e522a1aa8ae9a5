"""Run a model in channels_last (NHWC) memory format, weights and input batches alike."""
from typing import Optional

import torch
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from mmpose.registry import HOOKS


def _inputs_to_channels_last(module, args, data: dict) -> dict:
    """Forward hook of the data preprocessor: its ``inputs`` batch in channels_last."""
    inputs = data.get('inputs')
    if isinstance(inputs, torch.Tensor) and inputs.dim() == 4:
        data['inputs'] = inputs.contiguous(memory_format=torch.channels_last)
    return data


@HOOKS.register_module()
class ChannelsLastHook(Hook):
    """Put the model's 4-D weights and every batch its data preprocessor makes in channels_last
    (NHWC, the layout of tensor cores and oneDNN: no transposes around each convolution;
    README "Training speed").

    Converted in ``before_run``, after the runner built (and DDP wrapped) the model: the parameter
    objects stay the same, so the optimizer keeps them. A forward hook on the data preprocessor
    converts training, validation and test batches alike.
    """

    priority = 'VERY_HIGH'  # before any hook that might run the model in before_run

    def __init__(self) -> None:
        self._handle: Optional[torch.utils.hooks.RemovableHandle] = None

    def before_run(self, runner) -> None:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        model.to(memory_format=torch.channels_last)
        if self._handle is None:  # before_run comes again for each of train(), val(), test()
            self._handle = model.data_preprocessor.register_forward_hook(
                _inputs_to_channels_last)

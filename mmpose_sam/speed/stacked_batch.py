"""Move a training batch to the device as a few stacked tensors instead of hundreds of small ones
(README "Training speed": with ``pseudo_collate`` each of a batch's 192 tensors crossed from the
loader worker on its own shared-memory descriptor, about 1 ms each).

:func:`stack_collate` stacks the crops and every same-shape tensor field of the data samples
(``heatmaps``, ``keypoint_weights``) in the worker; :class:`StackedPoseDataPreprocessor` copies
each to the device at once, normalises the batch in one go and puts per-sample views back into
the data samples, so MMPose's heads see what ``pseudo_collate`` gave them. ``pseudo_collate``
batches (testing, the inferencer) take MMPose's path unchanged.
"""
import math
from contextlib import contextmanager
from typing import Dict, List, Sequence

import torch
from mmengine.dataset import pseudo_collate
from mmengine.registry import FUNCTIONS
from mmengine.structures import BaseDataElement

from mmpose.models.data_preprocessors import PoseDataPreprocessor
from mmpose.registry import MODELS

STACKED_FIELDS = 'stacked_fields'


def _same_shape_tensors(values: Sequence) -> bool:
    return (all(isinstance(v, torch.Tensor) for v in values)
            and len({(tuple(v.shape), v.dtype) for v in values}) == 1)


@FUNCTIONS.register_module()
def stack_collate(data_batch: Sequence[dict]) -> dict:
    """``pseudo_collate`` with the images stacked and the data samples' tensors pulled out.

    Returns:
        dict: ``inputs`` (one ``(N, C, H, W)`` tensor when all crops have one shape, else the
        list), ``data_samples`` (without the stacked tensors) and ``stacked_fields``:
        ``{'<element>.<field>': (N, ...) tensor}``, e.g. ``'gt_fields.heatmaps'``.
    """
    batch = pseudo_collate(data_batch)
    if _same_shape_tensors(batch['inputs']):
        batch['inputs'] = torch.stack(batch['inputs'])
    samples = batch.get('data_samples') or []
    stacked: Dict[str, torch.Tensor] = {}
    for element_name in (samples[0].keys() if samples else []):
        elements = [sample.get(element_name) for sample in samples]
        if not all(isinstance(e, BaseDataElement) for e in elements):
            continue
        for field in elements[0].keys():
            values = [element.get(field) for element in elements]
            if _same_shape_tensors(values):
                stacked[f'{element_name}.{field}'] = torch.stack(values)
                for element in elements:
                    element.pop(field)
    batch[STACKED_FIELDS] = stacked
    return batch


@MODELS.register_module()
class StackedPoseDataPreprocessor(PoseDataPreprocessor):
    """MMPose's ``PoseDataPreprocessor`` that also takes :func:`stack_collate` batches.

    Same arguments as :class:`~mmpose.models.data_preprocessors.PoseDataPreprocessor`; set
    ``non_blocking=True`` (with the loader's ``pin_memory=True``) so that the copies to the GPU
    do not wait for the work already queued there.
    """

    # Eager under MMEngine's `compile=True`: TorchDynamo fails (rather than falling back) on the
    # deep copies of the data samples' metainfo, and copying a batch gains nothing from compiling.
    @torch.compiler.disable
    def forward(self, data: dict, training: bool = False) -> dict:
        stacked = data.get(STACKED_FIELDS) or {}
        data = {k: v for k, v in data.items() if k != STACKED_FIELDS}
        inputs = data['inputs']
        if (self._channel_conversion and isinstance(inputs, torch.Tensor) and inputs.dim() == 4
                and inputs.shape[1] == 3):
            # MMEngine converts BGR to RGB with `inputs[:, [2, 1, 0]]`: an index tensor built from
            # a Python list and copied to the GPU, a host-device wait every batch. For 3 channels
            # that is a flip, which needs no index tensor.
            data['inputs'] = self.cast_data(inputs).flip(1)
            with self._channels_already_converted():
                data = super().forward(data, training)
        else:
            data = super().forward(data, training)
        for name, values in stacked.items():
            element_name, field = name.split('.', 1)
            values = values.to(self.device, non_blocking=self._non_blocking)
            for sample, value in zip(data['data_samples'], values):
                sample.get(element_name).set_field(value, field)
        return data

    @contextmanager
    def _channels_already_converted(self):
        self._channel_conversion, converting = False, self._channel_conversion
        try:
            yield
        finally:
            self._channel_conversion = converting

    def _get_pad_shape(self, data: dict) -> List[tuple]:
        # MMPose 1.3.2 reads a stacked (N, C, H, W) batch's height from dim 1 (the channels).
        inputs = data['inputs']
        if not isinstance(inputs, torch.Tensor):
            return super()._get_pad_shape(data)
        divisor = self.pad_size_divisor
        height, width = (math.ceil(s / divisor) * divisor for s in inputs.shape[-2:])
        return [(height, width)] * inputs.shape[0]

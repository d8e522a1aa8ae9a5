"""Parameter, MAC and latency counting shared by ``tools/model_complexity.py``, ``compare.py`` and
``benchmark_inference.py``.

Compute is counted as MMPose's ``get_flops.py`` does (MMEngine's FlopAnalyzer on the model in
tensor mode; one multiply-add = one "flop", i.e. a MAC) and cross-checked with PyTorch's
FlopCounterMode on what both count:

============================  ===================  ======================
op                            FlopAnalyzer         FlopCounterMode
============================  ===================  ======================
conv / deconv / linear        MACs                 2 x MACs
batch norm (eval)             2 per element        not counted
bilinear upsampling           4 per output element not counted
adaptive avg pool (CA's GAP)  1 per input element  not counted
sigmoid, mul, add, mean, ReLU not counted          not counted
============================  ===================  ======================

The attention module's own work is in the last row: each module type counts it analytically
(:meth:`~mmpose_sam.models.AttentionModule.elementwise_ops`; for the paper's module: the gating
multiplies, sigmoids and ReLU, the channel mean, the residual add). ResNet's own ReLUs and
residual adds are left out, as MMPose does.
"""
import copy
import json
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from mmengine.analysis import FlopAnalyzer
from mmengine.config import Config
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from mmpose.registry import MODELS
from mmpose_sam.deploy.export import HeatmapNetwork
from mmpose_sam.models.attention import AttentionModule

SAMPLE_DIR = Path(__file__).resolve().parents[2] / 'data' / 'coco_sample'
# FlopAnalyzer's names for the ops that FlopCounterMode counts too (convs and matrix products).
MATMUL_OPS = ('conv', 'linear', 'addmm', 'matmul', 'mm', 'bmm', 'einsum')
# Relative difference between the two counters above which a result is flagged.
MISMATCH_TOLERANCE = 0.01


def synchronized_clock() -> float:
    """``time.perf_counter()`` after the GPU has finished its queued work: CUDA kernels run
    asynchronously, so a clock read without synchronising would time the queueing, not the work.
    On a CPU, or before CUDA is initialised, it is the plain clock."""
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize()
    return time.perf_counter()


def format_ratio(numerator: Optional[float], denominator: Optional[float]) -> str:
    """``'1.234x'``, or ``'-'`` when either side is missing (or the denominator is 0)."""
    return f'{numerator / denominator:.3f}x' if numerator is not None and denominator else '-'


def load_config(config: Union[str, Path, Config], cfg_options: Optional[dict] = None) -> Config:
    """A config from a path (or a copy of a :class:`Config`), with ``cfg_options`` merged in.

    ``Config.fromfile`` imports the config's ``custom_imports`` (``mmpose_sam``) on the way.
    """
    cfg = copy.deepcopy(config) if isinstance(config, Config) else Config.fromfile(str(config))
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    return cfg


def build_model(cfg: Config, device: Union[str, torch.device] = 'cpu') -> nn.Module:
    """The config's pose estimator through MMPose's registry, randomly initialised, in eval mode.

    The backbone's and head's ``init_cfg`` are dropped so that nothing is ever downloaded
    (ImageNet weights do not change any count).
    """
    from mmengine.registry import init_default_scope
    # MMPose's own configs name MMPose modules without a scope (PoseDataPreprocessor, which
    # MMEngine's BaseModel builds from MMEngine's registry): their scope must be the default.
    init_default_scope(cfg.get('default_scope', 'mmpose'))
    model_cfg = copy.deepcopy(cfg.model)
    for part in ('backbone', 'neck', 'head'):
        if part in model_cfg:
            model_cfg[part]['init_cfg'] = None
    return MODELS.build(model_cfg).to(device).eval()


def input_hw(cfg: Config) -> Tuple[int, int]:
    """(height, width) of one crop: the codec's ``input_size``, which MMPose writes as (w, h)."""
    width, height = cfg.codec['input_size']
    return height, width


def count_parameters(model: nn.Module) -> int:
    """Exact number of parameters (shared tensors once)."""
    return sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())


@dataclass
class Complexity:
    """Counts for one forward pass of one crop.

    Attributes:
        params: exact parameter count.
        macs: FlopAnalyzer's total (what MMPose's get_flops.py reports), in MACs.
        matmul_macs: the conv/linear part of ``macs``.
        torch_macs: FlopCounterMode's FLOPs / 2 (it counts only convs and matrix products).
        elementwise_ops: the attention modules' element-wise ops, which neither counter sees
            (``AttentionModule.elementwise_ops``); 0 for models without attention.
        uncounted_ops: ops FlopAnalyzer traced but does not count, name -> number of calls.
    """
    params: int
    macs: int
    matmul_macs: int
    torch_macs: int
    elementwise_ops: int
    uncounted_ops: Dict[str, int] = field(default_factory=dict)

    @property
    def mismatch(self) -> float:
        """Relative difference of the two counters on the convs and matrix products."""
        return abs(self.matmul_macs - self.torch_macs) / max(self.matmul_macs, self.torch_macs, 1)

    @property
    def counters_agree(self) -> bool:
        """Whether :attr:`mismatch` is within :data:`MISMATCH_TOLERANCE`."""
        return self.mismatch <= MISMATCH_TOLERANCE


def attention_label(model: nn.Module) -> str:
    """What attention a model has: ``'none'``, or its attention modules' labels (``'sam-3x3+3x3'``,
    ``'cbam'``, ``'se'``; several joined by ``', '``)."""
    labels = sorted({m.label for m in model.modules() if isinstance(m, AttentionModule)})
    return ', '.join(labels) or 'none'


def count_complexity(model: nn.Module, hw: Tuple[int, int]) -> Complexity:
    """Parameters and MACs of ``model`` (a pose estimator) for one ``3 x H x W`` crop."""
    device = next(model.parameters()).device
    inputs = torch.rand(1, 3, *hw, device=device)
    wrapped = HeatmapNetwork(model).eval()  # as MMPose's get_flops.py measures

    analyzer = FlopAnalyzer(wrapped, inputs)
    analyzer.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    by_operator = analyzer.by_operator()

    # The torch counter's pass also records each attention module's input shape.
    shapes = []
    hooks = [m.register_forward_pre_hook(lambda mod, args: shapes.append((mod, args[0].shape)))
             for m in model.modules() if isinstance(m, AttentionModule)]
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            wrapped(inputs)
    finally:
        for hook in hooks:
            hook.remove()

    return Complexity(
        params=count_parameters(model),
        macs=analyzer.total(),
        matmul_macs=sum(by_operator.get(op, 0) for op in MATMUL_OPS),
        torch_macs=counter.get_total_flops() // 2,
        elementwise_ops=sum(m.elementwise_ops(tuple(s)) for m, s in shapes),
        uncounted_ops=dict(analyzer.unsupported_ops()))


def median_latency(run: Callable[[], object], batch_size: int = 1, warmup: int = 5,
                   repeats: int = 20) -> float:
    """Median seconds per crop of ``run()`` on a ``batch_size`` batch: ``warmup`` calls discarded
    (allocator, cuDNN autotuning), then each of ``repeats`` timed alone with
    :func:`synchronized_clock`. The median resists the odd slow pass on a shared machine."""
    times = []
    for i in range(warmup + repeats):
        start = synchronized_clock()
        run()
        if i >= warmup:
            times.append(synchronized_clock() - start)
    return statistics.median(times) / batch_size


def measure_latency(model: nn.Module,
                    hw: Tuple[int, int],
                    batch_size: int = 1,
                    warmup: int = 5,
                    repeats: int = 20,
                    channels_last: bool = False) -> float:
    """:func:`median_latency` of ``model(inputs, mode='tensor')`` on random crops, in eval mode
    under ``torch.no_grad`` on the model's device."""
    device = next(model.parameters()).device
    inputs = torch.rand(batch_size, 3, *hw, device=device)
    if channels_last:  # as a channels_last model's data preprocessor hands them over
        inputs = inputs.contiguous(memory_format=torch.channels_last)
    model.eval()
    with torch.no_grad():
        return median_latency(lambda: model(inputs, None, mode='tensor'), batch_size, warmup,
                              repeats)


def sample_people(folder: Path = SAMPLE_DIR,
                  min_keypoints: int = 1) -> List[Tuple[str, np.ndarray]]:
    """``[(image path, (N, 4) xyxy GT boxes)]`` of the bundled images (people with at least
    ``min_keypoints`` labelled keypoints)."""
    coco = json.loads((folder / 'test_coco.json').read_text())
    people = []
    for image in coco['images']:
        boxes = [a['bbox'] for a in coco['annotations']
                 if a['image_id'] == image['id'] and a.get('num_keypoints', 1) >= min_keypoints]
        xyxy = np.array([[x, y, x + w, y + h] for x, y, w, h in boxes], dtype=np.float32)
        people.append((str(folder / image['file_name']), xyxy))
    return people


def table_row(cells: Sequence[object]) -> str:
    """One markdown table row."""
    return '| ' + ' | '.join(map(str, cells)) + ' |'


def table_head(header: Sequence[str], right: Sequence[int] = ()) -> List[str]:
    """A markdown table's header row and its separator; the columns numbered in ``right``
    (from 0) right-aligned."""
    return [table_row(header), table_row(['---:' if i in right else '---'
                                          for i in range(len(header))])]

"""MMPose backbones with an attention module (any registered
:class:`~mmpose_sam.models.attention.AttentionModule`) after their stages (README "The model").

Each module is the last element of its stage, so the plain backbone's parameter names are
unchanged (its checkpoints load) and ``frozen_stages``/``norm_eval`` cover it. ResNet-like
backbones get it through ``make_res_layer`` (:class:`ResLayerAttentionMixin`), as MMPose's
``SEResNet`` does; HRNet one per resolution branch (:class:`BranchAttention`).
"""
from typing import Dict, List, Optional, Sequence

from mmengine.logging import print_log
from mmengine.runner.checkpoint import CheckpointLoader
from torch import Tensor, nn

from mmpose.models.backbones import HRNet, ResNet, ResNetV1d, ResNeXt, SEResNet
from mmpose.registry import MODELS
from mmpose_sam.models.attention import AttentionModule

DEFAULT_ATTENTION = dict(type='StageAttention')  # the paper's module, ratio 16, 3x3+3x3


class AttentionBackboneMixin:
    """The ``attention`` and ``attention_stages`` arguments, building the modules, and ImageNet
    initialisation with fresh attention modules. Put it first among the bases."""
    attention_cfg: dict
    attention_stages: tuple

    def _setup_attention(self, attention: Optional[dict], attention_stages: Sequence[int],
                         num_stages: int) -> None:
        # Before the backbone's __init__, which builds the stages: plain attributes only.
        attention = DEFAULT_ATTENTION if attention is None else attention
        if not isinstance(attention, dict) or 'type' not in attention:
            raise ValueError(f"attention must be a dict with a 'type' (e.g. "
                             f"dict(type='StageAttention')), got {attention!r}")
        kind = attention['type']
        cls = MODELS.get(kind) if isinstance(kind, str) else kind
        if not (isinstance(cls, type) and issubclass(cls, AttentionModule)):
            raise ValueError(f'attention type {kind!r} is not an AttentionModule (StageAttention, '
                             'CBAM, SEAttention or a registered subclass of '
                             'mmpose_sam.models.AttentionModule)')
        if not set(attention_stages) <= set(range(num_stages)):
            raise ValueError(f'attention_stages must be indices in {tuple(range(num_stages))}, '
                             f'got {tuple(attention_stages)}')
        self.attention_cfg = dict(attention)
        self.attention_class = cls
        self.attention_stages = tuple(attention_stages)

    def _build_attention(self, channels: int, stage: int,
                         branch: Optional[int] = None) -> AttentionModule:
        """The configured attention module for ``channels`` after stage index ``stage``."""
        # The class found in MMPose's registry at set-up, not MODELS.build: under another default
        # scope (a process that built an MMDetection detector first) that looks in MMDet's.
        args = {k: v for k, v in self.attention_cfg.items() if k != 'type'}
        module = self.attention_class(channels=channels, **args)
        module.stage, module.branch = stage + 1, branch
        return module

    def stage_names(self) -> List[str]:
        """Names of the backbone's stage modules, in order (stage index 0 first)."""
        raise NotImplementedError

    def attention_stage_of(self, name: str) -> Optional[int]:
        """The stage number (1-based) of the module ``name`` (relative to the backbone, e.g.
        ``'layer2.4'``), or ``None`` if it is not inside a stage. Works for modules this model
        does not have, e.g. the attention module of another model's checkpoint."""
        names = self.stage_names()
        container = name.split('.', 1)[0]
        return names.index(container) + 1 if container in names else None

    def attention_modules(self) -> List[AttentionModule]:
        """The attention modules, in forward order."""
        return [m for m in self.modules() if isinstance(m, AttentionModule)]

    @property
    def plain_backbone(self) -> type:
        """The MMPose backbone class this one extends (``ResNet``, ``HRNet``, ...)."""
        return next(cls for cls in type(self).__mro__ if cls.__module__.startswith('mmpose.'))

    def _describe(self) -> str:
        depth = getattr(self, 'depth', None)
        return f'{type(self).__name__}' + (f'(depth={depth})' if depth is not None else '')

    def init_weights(self):
        """Default init, or pretrained backbone weights with fresh attention modules, in one log
        line (MMEngine's ``Pretrained`` would list every attention tensor as a mismatch). Missing
        non-attention tensors, or unexpected ones of the backbone's own modules, are errors;
        tensors of modules it lacks (an ImageNet classifier's) are ignored."""
        init_cfg = self.init_cfg if isinstance(self.init_cfg, dict) else {}
        if init_cfg.get('type') != 'Pretrained':
            return super().init_weights()
        self.init_cfg = None  # default init for everything (attention included) ...
        super().init_weights()
        self.init_cfg = init_cfg  # ... then the plain part is overwritten by the checkpoint
        self._load_pretrained(init_cfg['checkpoint'], init_cfg.get('prefix'))

    def _load_pretrained(self, checkpoint: str, prefix: Optional[str]) -> None:
        state_dict = CheckpointLoader.load_checkpoint(checkpoint, map_location='cpu')
        state_dict = state_dict.get('state_dict', state_dict)
        if prefix:
            state_dict = {
                key[len(prefix):]: value
                for key, value in state_dict.items() if key.startswith(prefix)
            }
        own = self.state_dict()
        wrong_shape = sorted(k for k, v in state_dict.items()
                             if k in own and v.shape != own[k].shape)
        if wrong_shape:
            raise ValueError(f'{checkpoint} does not match {self._describe()}:'
                             f' shapes differ for {_few(wrong_shape)}')
        missing, unexpected = self.load_state_dict(state_dict, strict=False)
        modules = self.attention_modules()
        attention = tuple(name + '.' for name, module in self.named_modules()
                          if isinstance(module, AttentionModule))
        children = {name for name, _ in self.named_children()}
        wrong_missing = sorted(key for key in missing if not key.startswith(attention))
        wrong_unexpected = sorted(key for key in unexpected if key.split('.', 1)[0] in children)
        if wrong_missing or wrong_unexpected:
            raise ValueError(
                f'{checkpoint} does not match {self._describe()}: '
                f'missing {_few(wrong_missing)}, unexpected {_few(wrong_unexpected)}')
        print_log(
            f'{type(self).__name__}: loaded {len(state_dict) - len(unexpected)} '
            f'{self.plain_backbone.__name__} tensors from {checkpoint}; {len(missing)} attention '
            f'tensors in {len(modules)} modules keep their fresh init' + _ignored(unexpected),
            logger='current')


def _few(keys: List[str]) -> str:
    return f'{keys[:5]}{"..." if len(keys) > 5 else ""}'


def _ignored(keys: Sequence[str]) -> str:
    """``'; ignored fc.bias, fc.weight'``, or by module for many keys."""
    if not keys:
        return ''
    if len(keys) <= 4:
        return f'; ignored {", ".join(sorted(keys))}'
    modules = sorted({key.split('.', 1)[0] for key in keys})
    return f'; ignored {len(keys)} tensors of {", ".join(modules)}'


class ResLayerAttentionMixin(AttentionBackboneMixin):
    """Attention appended to each stage's ``ResLayer`` (``layer1.3`` for ResNet-50) of a
    ResNet-like backbone.

    Args:
        attention (dict, optional): Config of the attention module, without ``channels``.
            Defaults to the paper's, ``dict(type='StageAttention')``.
        attention_stages (Sequence[int]): Indices of the stages followed by attention.
            Defaults to all four, ``(0, 1, 2, 3)``, as in the paper.
        *args, **kwargs: Passed to the MMPose backbone.
    """

    def __init__(self, *args, attention: Optional[dict] = None,
                 attention_stages: Sequence[int] = (0, 1, 2, 3), **kwargs):
        self._setup_attention(attention, attention_stages, kwargs.get('num_stages', 4))
        super().__init__(*args, **kwargs)

    def make_res_layer(self, **kwargs):
        res_layer = super().make_res_layer(**kwargs)
        # ResNet.__init__ appends each stage's name to res_layers after building it, so the
        # current length is the index of the stage being built.
        stage = len(self.res_layers)
        if stage in self.attention_stages:
            res_layer.append(self._build_attention(kwargs['out_channels'], stage))
        return res_layer

    def stage_names(self) -> List[str]:
        return list(self.res_layers)


@MODELS.register_module()
class AttentionResNet(ResLayerAttentionMixin, ResNet):
    """MMPose's ``ResNet`` with attention after its stages; see :class:`ResLayerAttentionMixin`."""


@MODELS.register_module()
class AttentionResNetV1d(ResLayerAttentionMixin, ResNetV1d):
    """MMPose's ``ResNetV1d`` (deep stem, average-pool downsampling) with attention after its
    stages; see :class:`ResLayerAttentionMixin`."""


@MODELS.register_module()
class AttentionResNeXt(ResLayerAttentionMixin, ResNeXt):
    """MMPose's ``ResNeXt`` with attention after its stages; see
    :class:`ResLayerAttentionMixin`."""


@MODELS.register_module()
class AttentionSEResNet(ResLayerAttentionMixin, SEResNet):
    """MMPose's ``SEResNet`` (an SE gate inside every block) with attention after its stages as
    well; see :class:`ResLayerAttentionMixin`."""


class BranchAttention(nn.ModuleList):
    """One attention module per resolution branch of a multi-branch stage: the stage's list of
    tensors in, the list of their attended tensors out."""

    def forward(self, xs: List[Tensor]) -> List[Tensor]:
        return [module(x) for module, x in zip(self, xs)]


@MODELS.register_module()
class AttentionHRNet(AttentionBackboneMixin, HRNet):
    """MMPose's ``HRNet`` with attention after each stage, on every branch the stage outputs:
    ``layer1`` ends in one module, stages 2-4 in a :class:`BranchAttention` (``stage3.4.0`` ..
    ``stage3.4.2`` for HRNet-W32; a last stage without ``multiscale_output`` outputs branch 0
    only). Args as :class:`ResLayerAttentionMixin`; ``extra`` and the rest as ``HRNet``.
    """
    STAGES = ('layer1', 'stage2', 'stage3', 'stage4')

    def __init__(self, extra: Dict, attention: Optional[dict] = None,
                 attention_stages: Sequence[int] = (0, 1, 2, 3), **kwargs):
        self._setup_attention(attention, attention_stages, len(self.STAGES))
        super().__init__(extra, **kwargs)
        for index, name in enumerate(self.STAGES):
            if index in self.attention_stages:
                stage = getattr(self, name)
                stage.append(self._stage_attention(stage[-1], index))
        self._freeze_stages()  # again: HRNet.__init__ froze its stages before they had attention

    def stage_names(self) -> List[str]:
        return list(self.STAGES)

    def _stage_attention(self, last: nn.Module, index: int) -> nn.Module:
        if index == 0:  # layer1: a sequence of bottlenecks, one tensor out
            return self._build_attention(last.out_channels, index)
        # After HRModule.__init__, in_channels holds each branch's output channels.
        outputs = last.num_branches if last.multiscale_output else 1
        return BranchAttention(self._build_attention(channels, index, branch)
                               for branch, channels in enumerate(last.in_channels[:outputs]))

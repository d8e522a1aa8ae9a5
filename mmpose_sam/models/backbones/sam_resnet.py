"""ResNet with the paper's attention module after each stage (Fig. 1 of Tran et al.)."""
from typing import Optional, Sequence

from mmengine.logging import print_log
from mmengine.runner.checkpoint import CheckpointLoader

from mmpose.models.backbones.resnet import ResNet
from mmpose.registry import MODELS
from ..attention import StageAttention


@MODELS.register_module()
class SAMResNet(ResNet):
    """ResNet whose stages each end in a :class:`StageAttention` (channel attention, then spatial
    attention, then a residual add of the stage output).

    Everything else is MMPose's :class:`~mmpose.models.backbones.ResNet`: depths, ``out_indices``,
    ``frozen_stages``, ``norm_eval``, ``with_cp``. The attention module is appended as the last
    element of its stage's ``ResLayer`` (``layer1.3`` for ResNet-50), so that

    - ResNet's own parameter names are unchanged and ImageNet weights
      (``init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet50')``) load as they
      are, with only the attention modules missing, reported in one log line;
    - ``frozen_stages`` and ``norm_eval`` cover a stage's attention module with its blocks.

    Args:
        depth (int): ResNet depth, e.g. 50 or 101.
        attention_stages (Sequence[int]): Indices of the stages followed by attention.
            Defaults to all four, ``(0, 1, 2, 3)``, as in the paper.
        attention_ratio (int): Channel-attention reduction ratio ``r``. Defaults to 16.
        spatial_kernel (str): ``'3x3+3x3'`` (paper), ``'3x3//3x3'`` or ``'7x7'``.
        spatial_pooling (str): ``'avg'`` (paper) or ``'avg+max'`` (CBAM).
        attention_residual (bool): Residual add of the stage output. Defaults to ``True``.
        identity_init (bool): Start each attention module as an exact identity (see
            :class:`StageAttention`), useful when fine-tuning from ImageNet weights.
            Defaults to ``False``.
        **kwargs: Passed to MMPose's ``ResNet``.

    Example:
        >>> import torch
        >>> from mmpose_sam.models import SAMResNet
        >>> model = SAMResNet(depth=50, out_indices=(0, 1, 2, 3))
        >>> model.eval()
        >>> [tuple(o.shape) for o in model(torch.rand(1, 3, 256, 192))]
        [(1, 256, 64, 48), (1, 512, 32, 24), (1, 1024, 16, 12), (1, 2048, 8, 6)]
    """

    def __init__(self,
                 depth: int,
                 attention_stages: Sequence[int] = (0, 1, 2, 3),
                 attention_ratio: int = 16,
                 spatial_kernel: str = '3x3+3x3',
                 spatial_pooling: str = 'avg',
                 attention_residual: bool = True,
                 identity_init: bool = False,
                 **kwargs):
        num_stages = kwargs.get('num_stages', 4)
        if not set(attention_stages) <= set(range(num_stages)):
            raise ValueError(f'attention_stages must be indices in {tuple(range(num_stages))}, '
                             f'got {tuple(attention_stages)}')
        # Read by make_res_layer(), which ResNet.__init__ calls once per stage (as in SEResNet).
        self.attention_stages = tuple(attention_stages)
        self.attention_cfg = dict(
            ratio=attention_ratio,
            spatial_kernel=spatial_kernel,
            spatial_pooling=spatial_pooling,
            residual=attention_residual,
            identity_init=identity_init)
        super().__init__(depth, **kwargs)

    def make_res_layer(self, **kwargs):
        res_layer = super().make_res_layer(**kwargs)
        # ResNet.__init__ appends each stage's name to res_layers after building it, so the
        # current length is the index of the stage being built.
        if len(self.res_layers) in self.attention_stages:
            res_layer.append(StageAttention(kwargs['out_channels'], **self.attention_cfg))
        return res_layer

    def init_weights(self):
        """Default init, or ImageNet ResNet weights with fresh attention modules.

        MMEngine's generic ``Pretrained`` init would list every attention tensor as a mismatch;
        here the check is exact instead: anything missing other than attention, or unexpected other
        than the classifier (``fc``), is an error, and the outcome is one log line.
        """
        init_cfg = self.init_cfg if isinstance(self.init_cfg, dict) else {}
        if init_cfg.get('type') != 'Pretrained':
            return super().init_weights()
        self.init_cfg = None  # default init for everything (attention included) ...
        super().init_weights()
        self.init_cfg = init_cfg  # ... then the ResNet part is overwritten by the checkpoint
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
        wrong_shape = sorted(k for k, v in state_dict.items() if k in own and v.shape != own[k].shape)
        if wrong_shape:
            raise ValueError(f'{checkpoint} does not match {type(self).__name__}(depth={self.depth}):'
                             f' shapes differ for {wrong_shape[:5]}'
                             f'{"..." if len(wrong_shape) > 5 else ""}')
        missing, unexpected = self.load_state_dict(state_dict, strict=False)
        attention = tuple(name + '.' for name, module in self.named_modules()
                          if isinstance(module, StageAttention))
        wrong_missing = sorted(key for key in missing if not key.startswith(attention))
        wrong_unexpected = sorted(key for key in unexpected if not key.startswith('fc.'))
        if wrong_missing or wrong_unexpected:
            raise ValueError(
                f'{checkpoint} does not match {type(self).__name__}(depth={self.depth}): '
                f'missing {wrong_missing[:5]}{"..." if len(wrong_missing) > 5 else ""}, '
                f'unexpected {wrong_unexpected[:5]}'
                f'{"..." if len(wrong_unexpected) > 5 else ""}')
        print_log(
            f'{type(self).__name__}: loaded {len(state_dict) - len(unexpected)} ResNet tensors '
            f'from {checkpoint}; {len(missing)} attention tensors in '
            f'{len(self.attention_stages)} modules keep their fresh init'
            + (f'; ignored {", ".join(sorted(unexpected))}' if unexpected else ''),
            logger='current')

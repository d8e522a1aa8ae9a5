"""Refuse, in one line, a checkpoint file that does not fit the pose estimator it is loaded into.

MMEngine loads checkpoints with ``strict=False`` and only logs what did not match, so testing a
SimpleBaseline checkpoint with a SAM config runs to the end with fresh attention and head weights
and reports AP 0.000. Every MMPose pose estimator (``BasePoseEstimator``) built after
``import mmpose_sam`` checks instead, whenever a checkpoint file read through MMEngine's
``CheckpointLoader`` is loaded into it (``load_from``, ``--resume``, ``tools/test.py``,
``init_model``, the inferencers, ``init_cfg=dict(type='Pretrained')`` of the whole model):
anything missing, unexpected or of another shape is a :class:`CheckpointMismatchError`::

    work_dirs/sb/epoch_210.pth does not fit TopdownPoseEstimator(SAMResNet, BilinearHeatmapHead):
    missing 32 attention tensors (backbone.layer1.3.channel.conv1.conv.weight, ...), ...:
    no attention weights: a SimpleBaseline checkpoint? Use a SimpleBaseline config

(one line). It runs after PyTorch has matched the keys, so after MMPose's own conversions of old
checkpoints, and reports what really did not load. Not checked: ``num_batches_tracked`` (MMEngine
ignores it too), the data preprocessor's buffers (set by the config), state dicts built in
memory (plain PyTorch semantics), and pretrained weights loaded into a part of the model, e.g.
ImageNet weights into the backbone (the attention backbones report those themselves).

A checkpoint named ``partial:<file>`` is loaded as far as it fits, on purpose (fine-tuning from
another architecture): one log line says what was loaded and what kept its initial values.
"""
import functools
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple

from mmengine.logging import print_log
from mmpose.models.backbones.resnet import Bottleneck, ResNet
from mmpose.models.pose_estimators.base import BasePoseEstimator
from torch import nn

from ..errors import UserError
from .provenance import CheckpointSource, source_of

PARTS = ('backbone', 'attention', 'neck', 'head')
_BLOCK_KEY = re.compile(r'^backbone\.layer(\d+)\.(\d+)\.conv1\.weight$')
# What torch's Module._load_from_state_dict appends to error_msgs for a tensor of another shape.
_SIZE_MISMATCH = re.compile(r'size mismatch for (\S+): copying a param with shape (.+?) from '
                            r'checkpoint, the shape in current model is (.+?)\.$')


class CheckpointMismatchError(UserError, RuntimeError):
    """A checkpoint file that does not fit the pose estimator it is loaded into."""


def ignored(key: str) -> bool:
    """Keys the check never reports: BatchNorm's counter and the data preprocessor's state."""
    return key.endswith('num_batches_tracked') or key.startswith('data_preprocessor.')


def model_attention(model: nn.Module) -> Tuple[str, ...]:
    """Prefixes of the keys of the model's attention modules (``AttentionModule``)."""
    # imported here: mmpose_sam imports this package before its models
    from ..models.attention import AttentionModule
    return tuple(sorted(name + '.' for name, module in model.named_modules()
                        if isinstance(module, AttentionModule)))


def checkpoint_attention(keys: Iterable[str]) -> Tuple[str, ...]:
    """Prefixes of a checkpoint's attention keys: the backbone modules with ``channel`` or
    ``spatial`` children, as every attention module has (the same index can be a ResNet block in
    a deeper checkpoint)."""
    from ..models.attention import attention_key_prefixes
    return attention_key_prefixes(key for key in keys if key.startswith('backbone.'))


def resnet_depth(keys: Iterable[str]) -> Optional[int]:
    """The depth of a ResNet backbone (MMPose's key names) from its keys; ``None`` if it is not
    one of ``ResNet.arch_settings``."""
    keys = set(keys)
    blocks = Counter(int(match.group(1)) for match in map(_BLOCK_KEY.match, keys) if match)
    bottleneck = any(key.endswith('.conv3.weight') for key in keys if key.startswith('backbone.'))
    stage_blocks = tuple(blocks[stage] for stage in range(1, len(blocks) + 1))
    for depth, (block, counts) in ResNet.arch_settings.items():
        if tuple(counts) == stage_blocks and (block is Bottleneck) == bottleneck:
            return depth
    return None


@dataclass
class Fit:
    """How a checkpoint's tensors matched a model's, by part (:data:`PARTS`, or a key's first
    name for other parts), without the :func:`ignored` keys.

    Args:
        model_keys: the model's state dict keys.
        checkpoint_keys: the checkpoint's.
        missing: model keys the checkpoint lacks.
        unexpected: checkpoint keys the model lacks.
        other_shapes: ``(key, checkpoint shape, model shape)`` of tensors that did not load.
        model_attention: prefixes of the model's attention keys (:func:`model_attention`).
        checkpoint_attention: the checkpoint's (:func:`checkpoint_attention`).
        stage_of: the model backbone's ``attention_stage_of`` (stage number of a module name),
            if it has one.
        plain_backbone: name of the MMPose backbone the model's backbone extends (``'ResNet'``).
    """
    model_keys: List[str]
    checkpoint_keys: List[str]
    missing: List[str] = field(default_factory=list)
    unexpected: List[str] = field(default_factory=list)
    other_shapes: List[Tuple[str, str, str]] = field(default_factory=list)
    model_attention: Tuple[str, ...] = ()
    checkpoint_attention: Tuple[str, ...] = ()
    stage_of: Optional[Callable[[str], Optional[int]]] = None
    plain_backbone: Optional[str] = None

    @staticmethod
    def _part(key: str, attention: Tuple[str, ...]) -> str:
        return 'attention' if key.startswith(attention) else key.split('.', 1)[0]

    @property
    def fits(self) -> bool:
        return not (self.missing or self.unexpected or self.other_shapes)

    @property
    def loaded(self) -> int:
        return len(self.model_keys) - len(self.missing) - len(self.other_shapes)

    def problems(self) -> List[str]:
        """``missing 32 attention tensors (first key, ...)``, ``unexpected ...``, ``8 head
        tensors have other shapes (key: checkpoint [..], model [..], ...)``."""
        items = []
        for kind, keys, attention in (('missing', self.missing, self.model_attention),
                                      ('unexpected', self.unexpected, self.checkpoint_attention)):
            for part, group in self._by_part(keys, attention, key=lambda k: k):
                items.append(f'{kind} {len(group)} {part} {_plural(len(group), "tensor")} '
                             f'({_examples(group)})')
        for part, group in self._by_part(self.other_shapes, self.model_attention,
                                         key=lambda item: item[0]):
            key, theirs, ours = group[0]
            verb = 'has another shape' if len(group) == 1 else 'have other shapes'
            more = ', ...' if len(group) > 1 else ''
            items.append(f'{len(group)} {part} {_plural(len(group), "tensor")} {verb} '
                         f'({key}: checkpoint {theirs}, model {ours}{more})')
        return items

    def _by_part(self, items: Sequence, attention: Tuple[str, ...],
                 key) -> List[Tuple[str, list]]:
        groups: Dict[str, list] = {}
        for item in items:
            groups.setdefault(self._part(key(item), attention), []).append(item)
        order = {part: index for index, part in enumerate(PARTS)}
        return sorted(groups.items(), key=lambda group: order.get(group[0], len(order)))

    def looks_like(self) -> str:
        """What tells the checkpoint apart from the model: its ResNet depth, its attention
        weights, and a guess of its architecture."""
        facts, family = [], None
        theirs, ours = resnet_depth(self.checkpoint_keys), resnet_depth(self.model_keys)
        if theirs and ours and theirs != ours:
            facts.append(f'a ResNet-{theirs} backbone')
        theirs_at, ours_at = self.checkpoint_attention, self.model_attention
        if theirs_at and ours_at and theirs_at != ours_at:
            facts.append(f'attention after stages {self._stages(theirs_at)} (the model: '
                         f'{self._stages(ours_at)})')
        elif ours_at and not theirs_at:
            facts.append('no attention weights')
            family = ('SimpleBaseline' if self.plain_backbone in (None, 'ResNet') else
                      f'plain {self.plain_backbone}')
        elif theirs_at and not ours_at:
            facts.append('attention weights')
            family = 'SAM'
        if not facts:
            return ''
        text = ': ' + ', '.join(facts)
        if family:
            depth = f' res{theirs}' if theirs and theirs != ours else ''
            text += f': a {family} checkpoint? Use a {family}{depth} config'
        return text

    def _stages(self, attention: Tuple[str, ...]) -> str:
        """``('backbone.layer1.3.', 'backbone.layer3.6.')`` -> ``'1, 3'`` (the backbone knows
        its stages); the module names themselves for a backbone that does not say."""
        names = [prefix[len('backbone.'):].rstrip('.') for prefix in attention]
        stages = [self.stage_of(name) if self.stage_of else None for name in names]
        if None in stages:
            return ', '.join(names)
        return ', '.join(map(str, sorted(set(stages))))


def _plural(count: int, word: str) -> str:
    return word if count == 1 else word + 's'


def _tensors(count: int) -> str:
    return f'{count} {_plural(count, "tensor")}'


def _examples(keys: Sequence[str]) -> str:
    return keys[0] + (', ...' if len(keys) > 1 else '')


def _in_order(keys: List[str], reference: List[str]) -> List[str]:
    """``keys`` in the order of ``reference`` (keys not in it last, in their order)."""
    index = {key: position for position, key in enumerate(reference)}
    return sorted(keys, key=lambda key: index.get(key, len(index)))


def _shape(text: str) -> str:
    """``torch.Size([2048, 256, 4, 4])`` -> ``[2048, 256, 4, 4]``."""
    match = re.fullmatch(r'torch\.Size\((.*)\)', text)
    return match.group(1) if match else text


def describe_model(model: nn.Module) -> str:
    """``TopdownPoseEstimator(SAMResNet, BilinearHeatmapHead)``."""
    parts = [type(getattr(model, name)).__name__ for name in ('backbone', 'neck', 'head')
             if isinstance(getattr(model, name, None), nn.Module)]
    return f'{type(model).__name__}({", ".join(parts)})'


def fit_message(source: CheckpointSource, model: nn.Module, fit: Fit) -> str:
    """The one-line message for a checkpoint that does not fit."""
    return (f'{source.name} does not fit {describe_model(model)}: {", ".join(fit.problems())}'
            f'{fit.looks_like()}')


# Loading into an estimator, from its pre-hook to its post-hook ------------------------------
@dataclass
class _Load:
    source: CheckpointSource
    prefix: str
    checkpoint_keys: List[str]
    missing_keys: list  # torch's lists, filled while the load runs
    error_msgs: list


# id(missing_keys list of the load in progress) -> that load
_LOADS: Dict[int, _Load] = {}


def _note_checkpoint(model: nn.Module, state_dict: dict, prefix: str, local_metadata: dict,
                     strict: bool, missing_keys: list, unexpected_keys: list,
                     error_msgs: list) -> None:
    """Pre-hook: remember which file is being loaded, if it is one."""
    source = source_of(state_dict)
    if source is not None:
        keys = [key[len(prefix):] for key in state_dict if key.startswith(prefix)]
        _LOADS[id(missing_keys)] = _Load(source, prefix, keys, missing_keys, error_msgs)


def check_fit(model: nn.Module, incompatible_keys) -> None:
    """Post-hook: raise :class:`CheckpointMismatchError` if the checkpoint did not fit (log
    what was loaded for a ``partial:`` one)."""
    load = _LOADS.pop(id(incompatible_keys.missing_keys), None)
    if load is None or load.missing_keys is not incompatible_keys.missing_keys:
        return  # a state dict built in memory
    prefix = load.prefix

    def own(keys: Iterable[str]) -> List[str]:
        return [key[len(prefix):] for key in keys
                if key.startswith(prefix) and not ignored(key[len(prefix):])]

    shapes = []
    for message in load.error_msgs:
        match = _SIZE_MISMATCH.match(message)
        if match and own([match.group(1)]):
            shapes.append((own([match.group(1)])[0], _shape(match.group(2)),
                           _shape(match.group(3))))
    model_keys = [key for key in model.state_dict() if not ignored(key)]
    checkpoint_keys = [key for key in load.checkpoint_keys if not ignored(key)]
    # torch lists keys in the order it meets them; examples read better in file order
    missing = _in_order(own(incompatible_keys.missing_keys), model_keys)
    unexpected = _in_order(own(incompatible_keys.unexpected_keys), checkpoint_keys)
    backbone = getattr(model, 'backbone', None)
    plain = getattr(backbone, 'plain_backbone', type(backbone))
    fit = Fit(model_keys, checkpoint_keys, missing=missing, unexpected=unexpected,
              other_shapes=shapes, model_attention=model_attention(model),
              checkpoint_attention=checkpoint_attention(checkpoint_keys),
              stage_of=getattr(backbone, 'attention_stage_of', None),
              plain_backbone=plain.__name__ if backbone is not None else None)
    if not load.source.partial:
        if not fit.fits:
            raise CheckpointMismatchError(fit_message(load.source, model, fit))
        return
    if fit.loaded == 0:
        raise CheckpointMismatchError(fit_message(load.source, model, fit)
                                      + ' (nothing fits, not even partially)')
    print_log(f'{load.source.name}: loaded {fit.loaded} of {_tensors(len(fit.model_keys))} of '
              f'{describe_model(model)} (partial:)'
              + (f'; not loaded: {", ".join(fit.problems())}' if not fit.fits else ''),
              logger='current')


def install() -> None:
    """Make every ``BasePoseEstimator`` built from now on check the checkpoints loaded into it.

    MMPose has no such check (no upstream version makes this unnecessary); its
    ``BasePoseEstimator.__init__`` is wrapped to register the two hooks.
    """
    if getattr(BasePoseEstimator.__init__, '_checks_checkpoint_fit', False):
        return
    mmpose_init = BasePoseEstimator.__init__

    @functools.wraps(mmpose_init)
    def __init__(self, *args, **kwargs):
        mmpose_init(self, *args, **kwargs)
        self.register_load_state_dict_pre_hook(_note_checkpoint)
        self.register_load_state_dict_post_hook(check_fit)

    __init__._checks_checkpoint_fit = True
    BasePoseEstimator.__init__ = __init__

"""Refuse, in one line, a checkpoint file that does not fit the pose estimator it is loaded into
(MMEngine loads with ``strict=False`` and only logs: a SimpleBaseline checkpoint tested with a SAM
config reports AP 0.000). ``partial:<file>`` loads what fits, on purpose. The loaders write the
file's name into the state dict's root ``_metadata`` entry (:func:`mark_source`), which MMEngine
hands to the model's load hooks; a state dict built in memory keeps PyTorch's semantics.
What is checked and the messages: ``docs/checkpoints.md`` ("The fit check").
"""
import re
from collections import Counter, OrderedDict
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

from mmengine.logging import print_log
from mmpose.models.backbones.resnet import Bottleneck, ResNet
from mmpose.models.pose_estimators import TopdownPoseEstimator
from mmpose.registry import MODELS
from torch import nn

from mmpose_sam.errors import UserError
from mmpose_sam.models.attention import AttentionModule, attention_key_prefixes

# Keys of the root entry of a state dict's ``_metadata`` that the loaders fill in.
SOURCE, PARTIAL = 'mmpose_sam.source', 'mmpose_sam.partial'
PARTS = ('backbone', 'attention', 'neck', 'head')
_BLOCK_KEY = re.compile(r'^backbone\.layer(\d+)\.(\d+)\.conv1\.weight$')
# What torch's Module._load_from_state_dict appends to error_msgs for a tensor of another shape.
_SIZE_MISMATCH = re.compile(r'size mismatch for (\S+): copying a param with shape (.+?) from '
                            r'checkpoint, the shape in current model is (.+?)\.$')


class CheckpointMismatchError(UserError, RuntimeError):
    """A checkpoint file that does not fit the pose estimator it is loaded into."""


def mark_source(checkpoint: Any, name: str, partial: bool = False) -> Any:
    """Write ``name`` (and whether it was read through ``partial:``) into the root metadata of
    ``checkpoint``'s state dict (its ``state_dict``, or itself when it is a bare state dict);
    returns the checkpoint (a plain dict becomes an ``OrderedDict``, which can carry metadata).

    Args:
        checkpoint: what a loader read.
        name: the file or URL as the user named it, without ``partial:``.
        partial: read through ``partial:``: loading only what fits is intended.
    """
    if not isinstance(checkpoint, dict):
        return checkpoint
    nested = isinstance(checkpoint.get('state_dict'), dict)
    state_dict = checkpoint['state_dict'] if nested else checkpoint
    if not isinstance(state_dict, OrderedDict):
        state_dict = OrderedDict(state_dict)
        if nested:
            checkpoint['state_dict'] = state_dict
        else:
            checkpoint = state_dict
    if getattr(state_dict, '_metadata', None) is None:
        state_dict._metadata = OrderedDict()
    # Kept: torch's and MMPose's load hooks read the root entry's 'version'.
    state_dict._metadata[''] = {**state_dict._metadata.get('', {}), SOURCE: name,
                                PARTIAL: partial}
    return checkpoint


def ignored(key: str) -> bool:
    """Keys the check never reports: BatchNorm's counter and the data preprocessor's state."""
    return key.endswith('num_batches_tracked') or key.startswith('data_preprocessor.')


def model_attention(model: nn.Module) -> Tuple[str, ...]:
    """Prefixes of the keys of the model's attention modules (``AttentionModule``)."""
    return tuple(sorted(name + '.' for name, module in model.named_modules()
                        if isinstance(module, AttentionModule)))


def checkpoint_attention(keys: Iterable[str]) -> Tuple[str, ...]:
    """Prefixes of a checkpoint's attention keys: the backbone modules with ``channel`` or
    ``spatial`` children, as every attention module has (the same index can be a ResNet block in
    a deeper checkpoint)."""
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


def _plural(count: int, word: str) -> str:
    return word if count == 1 else word + 's'


def _in_order(keys: Iterable[str], reference: List[str]) -> List[str]:
    """``keys`` without the :func:`ignored` ones, in the order of ``reference`` (keys not in it
    last): torch lists keys in the order it meets them, examples read better in file order."""
    index = {key: position for position, key in enumerate(reference)}
    return sorted((key for key in keys if not ignored(key)),
                  key=lambda key: index.get(key, len(index)))


def _shape(text: str) -> str:
    """``torch.Size([2048, 256, 4, 4])`` -> ``[2048, 256, 4, 4]``."""
    match = re.fullmatch(r'torch\.Size\((.*)\)', text)
    return match.group(1) if match else text


def architecture_name(module: nn.Module) -> str:
    """The class name of ``module``, past our speed and safety subclasses, which change no
    weights (``CheckedTopdownPoseEstimator`` is a ``TopdownPoseEstimator``)."""
    return next(cls.__name__ for cls in type(module).__mro__
                if not cls.__module__.startswith(('mmpose_sam.speed', 'mmpose_sam.reliability')))


def describe_model(model: nn.Module) -> str:
    """``TopdownPoseEstimator(SAMResNet, BilinearHeatmapHead)``."""
    parts = [architecture_name(getattr(model, name)) for name in ('backbone', 'neck', 'head')
             if isinstance(getattr(model, name, None), nn.Module)]
    return f'{architecture_name(model)}({", ".join(parts)})'


class Fit:
    """How a checkpoint's tensors matched a model's, by part (:data:`PARTS`, or a key's first
    name for other parts), without the :func:`ignored` keys.

    Args:
        model: the pose estimator.
        checkpoint_keys: the checkpoint's state dict keys (after MMPose's conversions).
        missing: model keys the checkpoint lacks.
        unexpected: checkpoint keys the model lacks.
        error_msgs: torch's messages of the load (tensors of other shapes).
    """

    def __init__(self, model: nn.Module, checkpoint_keys: List[str], missing: List[str],
                 unexpected: List[str], error_msgs: List[str]) -> None:
        self.model_keys = [key for key in model.state_dict() if not ignored(key)]
        self.checkpoint_keys = [key for key in checkpoint_keys if not ignored(key)]
        self.missing = _in_order(missing, self.model_keys)
        self.unexpected = _in_order(unexpected, self.checkpoint_keys)
        self.other_shapes = [(m.group(1), _shape(m.group(2)), _shape(m.group(3)))
                             for m in map(_SIZE_MISMATCH.match, error_msgs)
                             if m and not ignored(m.group(1))]
        self.model_attention = model_attention(model)
        self.checkpoint_attention = checkpoint_attention(self.checkpoint_keys)
        backbone = getattr(model, 'backbone', None)
        # the stage number of a backbone module's name, if the backbone says
        self.stage_of: Optional[Callable[[str], Optional[int]]] = getattr(
            backbone, 'attention_stage_of', None)
        # the MMPose backbone the model's backbone extends ('ResNet')
        self.plain_backbone = None if backbone is None else \
            getattr(backbone, 'plain_backbone', type(backbone)).__name__

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
            for part, group in _by_part(keys, attention, key=lambda k: k):
                more = ', ...' if len(group) > 1 else ''
                items.append(f'{kind} {len(group)} {part} {_plural(len(group), "tensor")} '
                             f'({group[0]}{more})')
        for part, group in _by_part(self.other_shapes, self.model_attention,
                                    key=lambda item: item[0]):
            (key, theirs, ours), more = group[0], ', ...' if len(group) > 1 else ''
            verb = 'has another shape' if len(group) == 1 else 'have other shapes'
            items.append(f'{len(group)} {part} {_plural(len(group), "tensor")} {verb} '
                         f'({key}: checkpoint {theirs}, model {ours}{more})')
        return items

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


def _by_part(items: Sequence, attention: Tuple[str, ...], key) -> List[Tuple[str, list]]:
    """``items`` grouped by the part of their key, in the order of :data:`PARTS`."""
    groups: Dict[str, list] = {}
    for item in items:
        name = key(item)
        part = 'attention' if name.startswith(attention) else name.split('.', 1)[0]
        groups.setdefault(part, []).append(item)
    order = {part: index for index, part in enumerate(PARTS)}
    return sorted(groups.items(), key=lambda group: order.get(group[0], len(order)))


@MODELS.register_module()
class CheckedTopdownPoseEstimator(TopdownPoseEstimator):
    """MMPose's ``TopdownPoseEstimator`` that refuses, in one line, a checkpoint file that does
    not fit it (:class:`CheckpointMismatchError`), and logs what a ``partial:`` one loaded.
    Arguments are those of ``TopdownPoseEstimator``; MMPose has no such check (no version makes
    this class unnecessary)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # After MMPose's own pre-hook (old key names converted), before torch matches the keys.
        self.register_load_state_dict_pre_hook(self._note_checkpoint)
        self.register_load_state_dict_post_hook(self._check_fit)

    @staticmethod
    def _note_checkpoint(model: nn.Module, state_dict: dict, prefix: str, local_metadata: dict,
                         strict: bool, missing_keys: list, unexpected_keys: list,
                         error_msgs: list) -> None:
        """Pre-hook: note the checkpoint file being loaded (``None``: a state dict built in
        memory), for the post-hook of the same load."""
        source = local_metadata.get(SOURCE)  # only in the root entry: prefix is ''
        model._checkpoint_load = None if source is None else (
            source, local_metadata.get(PARTIAL, False), list(state_dict), error_msgs)

    @staticmethod
    def _check_fit(model: nn.Module, incompatible_keys) -> None:
        """Post-hook: raise :class:`CheckpointMismatchError` if the checkpoint did not fit (log
        what was loaded for a ``partial:`` one)."""
        load = model.__dict__.pop('_checkpoint_load', None)
        if load is None:
            return
        source, partial, checkpoint_keys, error_msgs = load
        fit = Fit(model, checkpoint_keys, incompatible_keys.missing_keys,
                  incompatible_keys.unexpected_keys, error_msgs)
        message = f'{source} does not fit {describe_model(model)}: {", ".join(fit.problems())}' \
                  f'{fit.looks_like()}'
        if not partial:
            if not fit.fits:
                raise CheckpointMismatchError(message)
        elif fit.loaded == 0:
            raise CheckpointMismatchError(message + ' (nothing fits, not even partially)')
        else:
            print_log(f'{source}: loaded {fit.loaded} of {len(fit.model_keys)} '
                      f'{_plural(len(fit.model_keys), "tensor")} of {describe_model(model)} '
                      '(partial:)' + (f'; not loaded: {", ".join(fit.problems())}'
                                      if not fit.fits else ''), logger='current')

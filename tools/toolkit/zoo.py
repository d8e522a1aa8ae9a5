"""Reference accuracies to put beside what this project measures, never measured here: MMPose's
installed model zoo (COCO val2017, detected boxes, from the ``.yml`` metafiles) and the paper's
figures (COCO test-dev, Table 2, or Table 1's mAP). A config's MMPose *twin* follows from its name
(:func:`twin_name`): ``td-hm_sam-res50-seq3x3_8xb64-210e_coco-256x192`` ->
``td-hm_res50_8xb64-210e_coco-256x192``; the coco_sample configs stand for their 256x192 twins.
"""
import functools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Optional, Tuple, Union

import yaml

MMPOSE_PREFIX = 'mmpose::'

# The paper's figures by (attention label, ResNet depth), all at 256x192 and with the paper's
# recipe; never measured here. 'params' (Tables 1-2) holds for the model at any input size and
# schedule; 'ap'/'ar' are COCO test-dev (Table 2), 'map_t1' Table 1's mAP.
PAPER: Dict[Tuple[str, int], dict] = {
    ('none', 50): dict(params='34.0M', ap=70.4, ar=76.3,
                       source='Table 2, quoting Xiao et al. 2018 (their own recipe)'),
    ('none', 101): dict(params='53.0M', ap=71.4, ar=77.1,
                        source='Table 2, quoting Xiao et al. 2018 (their own recipe)'),
    ('sam-3x3+3x3', 50): dict(params='30.7M', ap=71.7, ar=76.9, map_t1=71.6,
                              source='Tables 1-2'),
    ('sam-3x3+3x3', 101): dict(params='49.7M', ap=72.5, ar=78.1, source='Table 2'),
    ('sam-3x3//3x3', 50): dict(params='30.7M', map_t1=71.5, source='Table 1'),
    ('sam-7x7', 50): dict(params='31.2M', map_t1=71.4, source='Table 1',
                          note='31.2M cannot be derived from the text; see '
                               'docs/parameter_counts.md'),
    ('sam-7x7', 101): dict(params='51.3M', map_t1=72.3, source='Table 1',
                           note='51.3M cannot be derived from the text (Table 2 lists the '
                                "authors' earlier 7x7 module at 50.2M); see "
                                'docs/parameter_counts.md'),
}

# Our name parts that MMPose's names do not have: the model family before the backbone, the
# attention variant after it.
_OUR_PREFIX = re.compile(r'^(?:simplebaseline|sam|cbam|se)-')
_OUR_SUFFIX = re.compile(r'-(?:seq3x3|par3x3|7x7|baseline)$')
_SAMPLE_REST = re.compile(r'^\dxb\d+-\d+e_coco-sample-\d+x\d+$')


@dataclass(frozen=True)
class ZooModel:
    """One model of MMPose's zoo: its ``name`` (the config's stem), ``config`` (path inside
    MMPose's ``configs/``), COCO ``ap``/``ar`` and the ``metafile`` that lists them."""
    name: str
    config: str
    ap: float
    ar: Optional[float]
    metafile: str

    @property
    def label(self) -> str:
        return f'MMPose zoo, {self.name}, COCO val2017'


def mmpose_config_dir() -> Path:
    """``configs/`` of the installed MMPose (its ``.mim`` folder)."""
    import mmpose
    return Path(mmpose.__file__).parent / '.mim' / 'configs'


def resolve_config(config: Union[str, Path]) -> Path:
    """The file of a config path or of an MMPose config named ``mmpose::<path in configs/>``.

    Raises:
        FileNotFoundError: no such file (in the installed MMPose, for ``mmpose::``).
    """
    text = str(config)
    in_mmpose = text.startswith(MMPOSE_PREFIX)
    path = mmpose_config_dir() / text[len(MMPOSE_PREFIX):] if in_mmpose else Path(text)
    if not path.is_file():
        where = f' in the installed MMPose ({mmpose_config_dir()})' if in_mmpose else ''
        raise FileNotFoundError(f'config {text} not found{where}')
    return path


@functools.lru_cache(maxsize=1)
def zoo_models() -> Dict[str, ZooModel]:
    """Every 2D body model of the installed MMPose zoo with a COCO result, by name."""
    root = mmpose_config_dir()
    models: Dict[str, ZooModel] = {}
    for metafile in sorted((root / 'body_2d_keypoint').rglob('*.yml')):
        for entry in (yaml.safe_load(metafile.read_text()) or {}).get('Models', []):
            results = entry.get('Results') or []
            results = [results] if isinstance(results, dict) else results
            coco = next((r['Metrics'] for r in results
                         if r.get('Dataset') == 'COCO' and 'AP' in r.get('Metrics', {})), None)
            if coco is None or entry.get('Name') in models:
                continue
            models[entry['Name']] = ZooModel(
                name=entry['Name'], config=entry['Config'], ap=float(coco['AP']),
                ar=float(coco['AR']) if 'AR' in coco else None,
                metafile=str(metafile.relative_to(root.parent)))
    return models


def twin_name(stem: str) -> Optional[str]:
    """The MMPose zoo name our config ``stem`` is the twin of (whether or not the zoo lists it),
    or ``None`` for a name not of the ``td-hm_<model>_<schedule>_<data>-<size>`` form."""
    match = re.fullmatch(r'td-hm_([^_]+)_(.+)', stem)
    if not match:
        return None
    model = _OUR_SUFFIX.sub('', _OUR_PREFIX.sub('', match.group(1)))
    rest = match.group(2)
    if _SAMPLE_REST.match(rest):  # the sample configs stand for the COCO 256x192 models
        rest = '8xb64-210e_coco-256x192'
    return f'td-hm_{model}_{rest}'


def zoo_twin(stem: str) -> Optional[ZooModel]:
    """The zoo model whose config our config ``stem`` mirrors (``None`` if the zoo has none,
    e.g. for the paper's 270-epoch schedule)."""
    name = twin_name(stem)
    return zoo_models().get(name) if name else None


@dataclass(frozen=True)
class Reference:
    """A reference AP and where it comes from."""
    ap: float
    source: str

    def __str__(self) -> str:
        return f'{self.ap:.3f} ({self.source})'


def reference_ap(config: Union[str, Path], attention: str,
                 depth: Optional[int]) -> Optional[Reference]:
    """The accuracy to show beside a config's measured AP.

    - an MMPose config, or ours without attention whose MMPose twin is in the zoo: the zoo's AP;
    - ours with the paper's attention: the paper's AP (Table 2, test-dev) where it reports one;
    - otherwise (CBAM/SE controls, SAM-HRNet): ``None``.

    Args:
        config: the config file.
        attention: the model's attention label (``'none'``, ``'sam-3x3+3x3'``, ``'cbam'``...).
        depth: the backbone's ResNet depth, ``None`` for other backbones.
    """
    stem = Path(config).stem
    zoo = zoo_models()
    if Path(config).resolve().is_relative_to(mmpose_config_dir().resolve()) and stem in zoo:
        return Reference(zoo[stem].ap, zoo[stem].label)
    twin = zoo_twin(stem)
    if attention == 'none' and twin is not None:
        return Reference(twin.ap, twin.label)
    paper = PAPER.get((attention, depth), {})
    if attention != 'none' and 'ap' in paper:
        return Reference(paper['ap'] / 100, 'paper Table 2, COCO test-dev')
    return None

"""MMEngine's checkpoint loaders of local paths, s3/petrel and http(s), and the
``load_from_http`` its other URL schemes call by module name, replaced by ours
(:mod:`mmpose_sam.reliability.checkpoint.loaders`: weights-only with an allow-list, the file named
for the fit check, a file cut short in one line). Why, and what retires it:
README "Upstream fixes". A newer MMEngine gets its own loaders, and with them no fit check of
checkpoint files: check that version's loaders before raising :data:`LAST_CHECKED`.
"""
import mmengine
from mmengine.runner import checkpoint as mmengine_checkpoint
from mmengine.runner.checkpoint import CheckpointLoader
from mmengine.utils import digit_version

from mmpose_sam.reliability.checkpoint.loaders import (load_from_ceph, load_from_http,
                                                       load_from_local)

LAST_CHECKED = '0.10.7'
_LOADERS = {'': load_from_local, r'(\S+\:)?s3://': load_from_ceph,
            r'(\S+\:)?petrel://': load_from_ceph, 'http://': load_from_http,
            'https://': load_from_http}
REPLACES = tuple(f"mmengine.runner.checkpoint.CheckpointLoader._schemes['{prefix}']"
                 for prefix in _LOADERS) + ('mmengine.runner.checkpoint.load_from_http',)


def apply() -> None:
    """Register our local, s3/petrel and http(s) loaders over MMEngine's, and make MMEngine's
    URL schemes download through ours; only on MMEngine <= :data:`LAST_CHECKED`. Idempotent."""
    if digit_version(mmengine.__version__) > digit_version(LAST_CHECKED) or \
            CheckpointLoader._schemes.get('') is load_from_local:
        return
    for prefix, loader in _LOADERS.items():
        CheckpointLoader.register_scheme(prefix, loader, force=True)
    mmengine_checkpoint.load_from_http = load_from_http

"""Check the environment: ``python tools/check_env.py [--quiet]`` (exit 1 with a fix per problem).

Loads ``mmpose_sam/env.py`` by path rather than importing the package, so that it still reports
clearly when ``import mmpose_sam`` itself would fail (no mmcv ops, numpy ABI mismatch, ...).
"""
import importlib.util
import sys
import warnings
from pathlib import Path

# setuptools 81's pkg_resources deprecation warning, which this check imports on purpose.
warnings.filterwarnings('ignore', message='pkg_resources is deprecated', category=UserWarning)

ENV_FILE = Path(__file__).resolve().parents[1] / 'mmpose_sam' / 'env.py'

if __name__ == '__main__':
    spec = importlib.util.spec_from_file_location('mmpose_sam_env', ENV_FILE)
    env = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(env)
    sys.exit(env.main())

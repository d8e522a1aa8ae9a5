"""Check the environment: ``python tools/check_env.py [--quiet]`` (exit 1 with a fix per problem).

``toolkit.env`` imports nothing of the stack at module level, so that it still reports clearly
when ``import mmpose_sam`` itself would fail (no mmcv ops, numpy ABI mismatch, ...).
"""
import sys
import warnings

# setuptools 81's pkg_resources deprecation warning, which this check imports on purpose.
warnings.filterwarnings('ignore', message='pkg_resources is deprecated', category=UserWarning)

if __name__ == '__main__':
    from toolkit import env  # tools/ is sys.path[0]
    sys.exit(env.main())

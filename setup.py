"""Install mmpose-sam: ``pip install -e .`` into an MMPose 1.x environment.

For the full pinned stack in ``.venv/`` use ``bash tools/setup_env.sh`` (see README.md).
"""
from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent


def read_requirements(name):
    """Requirement lines of ``requirements/<name>.txt``, without comments."""
    lines = (HERE / 'requirements' / name).read_text().splitlines()
    return [line.split('#')[0].strip() for line in lines if line.split('#')[0].strip()]


def read_version():
    namespace = {}
    exec((HERE / 'mmpose_sam' / 'version.py').read_text(), namespace)
    return namespace['__version__']


setup(
    name='mmpose-sam',
    version=read_version(),
    description='Efficient Spatial-Attention ResNet and bilinear-upsampling head for '
    'top-down pose estimation, as an MMPose 1.x plugin',
    long_description=(HERE / 'README.md').read_text(encoding='utf-8'),
    long_description_content_type='text/markdown',
    license='Apache-2.0',
    python_requires='>=3.8',
    packages=find_packages(include=['mmpose_sam', 'mmpose_sam.*']),
    include_package_data=True,
    install_requires=read_requirements('runtime.txt'),
    extras_require={
        'tests': read_requirements('tests.txt'),
        # The exact stack CI tests; mmcv must be built with ops, mmpose installed --no-deps.
        'stack': read_requirements('stack.txt'),
        # ONNX export and the onnxruntime backend (tools/deploy/export_onnx.py, tools/demo.py
        # --backend onnxruntime); pinned to versions that take numpy<2.
        'deploy': read_requirements('deploy.txt'),
    },
    classifiers=[
        'Programming Language :: Python :: 3',
        'Topic :: Scientific/Engineering :: Artificial Intelligence',
    ],
)

"""Compare an exported model with its PyTorch checkpoint on the bundled images.

    python tools/deploy/compare_onnx.py CONFIG CHECKPOINT MODEL.onnx

Heatmaps of every annotated person of data/coco_sample (MMPose's test pipeline and data
preprocessor, one batch), largest absolute difference; and the keypoints of the demo's two backends
(whole-image boxes and the bundled detections, score >= 0.3), largest distance in image pixels.
Latency: ``tools/benchmark_inference.py --modes fp32 onnxruntime``. docs/inference.md.
"""
import argparse
import sys
from pathlib import Path
from typing import List, Optional

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # toolkit
from toolkit import doc_parser  # noqa: E402
from toolkit.analysis import SAMPLE_DIR, sample_people  # noqa: E402
from mmpose.apis import init_model  # noqa: E402
from mmpose_sam.apis import BBoxFile, TopdownInferencer, load_image, topdown_inputs  # noqa: E402
from mmpose_sam.deploy.export import HeatmapNetwork  # noqa: E402
from mmpose_sam.deploy.inferencer import OnnxTopdownInferencer  # noqa: E402
from mmpose_sam.deploy.onnxruntime_model import OnnxPoseModel  # noqa: E402


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = doc_parser(__doc__)
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('onnx', help='the file tools/deploy/export_onnx.py wrote')
    return parser.parse_args(argv)


def keypoint_distance(config: str, checkpoint: str, onnx_file: str) -> float:
    """Largest keypoint distance (image pixels) between the demo's two backends."""
    worst = 0.0
    for bbox_file in (None, BBoxFile(SAMPLE_DIR / 'test_coco_det_AP_H_56.json')):
        results = [list(backend(str(SAMPLE_DIR), bbox_thr=0.3)) for backend in (
            TopdownInferencer(config, checkpoint, 'cpu', bbox_file=bbox_file),
            OnnxTopdownInferencer(onnx_file, bbox_file=bbox_file))]
        for expected, actual in zip(*results):
            for a, b in zip(expected['predictions'][0], actual['predictions'][0]):
                distance = np.linalg.norm(np.subtract(a['keypoints'], b['keypoints']), axis=-1)
                worst = max(worst, float(distance.max()))
    return worst


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    model = init_model(args.config, args.checkpoint, device='cpu')
    network = HeatmapNetwork(model).eval()
    session = OnnxPoseModel(args.onnx, providers=['CPUExecutionProvider'])
    inputs = torch.cat([topdown_inputs(model, load_image(path), boxes)[0]
                        for path, boxes in sample_people(min_keypoints=0)])
    with torch.no_grad():
        heatmap_diff = float(np.abs(network(inputs).numpy() - session.run(inputs.numpy())).max())
    keypoint_diff = keypoint_distance(args.config, args.checkpoint, args.onnx)
    width, height = session.input_size
    print(f'{Path(args.config).stem} ({width}x{height}), {len(inputs)} people: heatmaps max '
          f'abs diff {heatmap_diff:.1e}, keypoints max {keypoint_diff:.2e} px', flush=True)


if __name__ == '__main__':
    main()

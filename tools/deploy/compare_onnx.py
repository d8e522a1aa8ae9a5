"""Compare an exported model with its PyTorch checkpoint: parity on the bundled images, latency.

    python tools/deploy/compare_onnx.py CONFIG CHECKPOINT MODEL.onnx [--batch-sizes 1 8]
        [--iters 20] [--threads 2] [--images data/coco_sample]

Parity: the heatmaps of every annotated person of the bundled sample (MMPose's test pipeline and
data preprocessor, one batch), largest absolute difference; and the decoded keypoints, in image
pixels, of the demo's two backends (tools/demo.py, whole-image boxes and the bundled detections
with score >= 0.3), largest distance. Latency: the network alone (normalised crops -> heatmaps),
PyTorch fp32 eager vs onnxruntime (CPU provider), median of --iters runs after 3 warm-up runs,
per crop, both on --threads threads. Prints one markdown table.
"""
import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Callable, List, Optional

import numpy as np
import torch


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog='\n'.join(__doc__.splitlines()[1:]))
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('onnx', help='the file tools/deploy/export_onnx.py wrote')
    parser.add_argument('--batch-sizes', type=int, nargs='+', default=[1, 8])
    parser.add_argument('--iters', type=int, default=20)
    parser.add_argument('--threads', type=int, default=2, help='PyTorch and onnxruntime threads')
    parser.add_argument('--images', default='data/coco_sample',
                        help='folder with test_coco.json and test_coco_det_AP_H_56.json')
    return parser.parse_args(argv)


def median_seconds(run: Callable[[], object], iters: int) -> float:
    for _ in range(3):
        run()
    times = []
    for _ in range(iters):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def keypoint_distance(config: str, checkpoint: str, onnx_file: str, images: Path) -> float:
    """Largest keypoint distance (image pixels) between the demo's two backends."""
    from mmpose_sam.apis import BBoxFile, TopdownInferencer
    from mmpose_sam.deploy.inferencer import OnnxTopdownInferencer
    worst = 0.0
    for bbox_file in (None, BBoxFile(images / 'test_coco_det_AP_H_56.json')):
        results = [list(backend(str(images), bbox_thr=0.3)) for backend in (
            TopdownInferencer(config, checkpoint, 'cpu', bbox_file=bbox_file),
            OnnxTopdownInferencer(onnx_file, bbox_file=bbox_file))]
        for expected, actual in zip(*results):
            for a, b in zip(expected['predictions'][0], actual['predictions'][0]):
                distance = np.linalg.norm(np.subtract(a['keypoints'], b['keypoints']), axis=-1)
                worst = max(worst, float(distance.max()))
    return worst


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    from mmpose.apis import init_model

    from mmpose_sam.apis import load_image, topdown_inputs
    from mmpose_sam.deploy.export import HeatmapNetwork
    from mmpose_sam.deploy.onnxruntime_model import OnnxPoseModel
    model = init_model(args.config, args.checkpoint, device='cpu')
    network = HeatmapNetwork(model).eval()
    session = OnnxPoseModel(args.onnx, providers=['CPUExecutionProvider'], threads=args.threads)

    images = Path(args.images)
    annotations = json.loads((images / 'test_coco.json').read_text())
    inputs = torch.cat([
        topdown_inputs(model, load_image(images / image['file_name']), np.array(
            [[x, y, x + w, y + h] for x, y, w, h in (a['bbox'] for a in annotations['annotations']
                                                     if a['image_id'] == image['id'])]))[0]
        for image in annotations['images']])
    with torch.no_grad():
        heatmap_diff = float(np.abs(network(inputs).numpy() - session.run(inputs.numpy())).max())
    keypoint_diff = keypoint_distance(args.config, args.checkpoint, args.onnx, images)

    width, height = session.input_size
    rows = [f'{Path(args.config).stem} ({width}x{height}), {len(inputs)} people: heatmaps max '
            f'abs diff {heatmap_diff:.1e}, keypoints max {keypoint_diff:.2e} px', '',
            '| batch | PyTorch fp32 eager (ms/crop) | onnxruntime CPU (ms/crop) | ORT / PyTorch |',
            '| ---: | ---: | ---: | ---: |']
    for batch in args.batch_sizes:
        crops = torch.randn(batch, 3, height, width)
        array = crops.numpy()
        with torch.no_grad():
            eager = median_seconds(lambda: network(crops), args.iters) / batch * 1e3
        ort = median_seconds(lambda: session.run(array), args.iters) / batch * 1e3
        rows.append(f'| {batch} | {eager:.1f} | {ort:.1f} | {ort / eager:.2f}x |')
    print('\n'.join(rows), flush=True)


if __name__ == '__main__':
    main()

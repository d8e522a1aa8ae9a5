"""Top-down inference on MMPose's ``Pose2DInferencer`` with what it lacks (docs/inference.md):
person boxes from a COCO results file, bad images skipped in one line, a progress bar with a
total, attention pictures.
"""
import sys
from pathlib import Path
from typing import Callable, Iterable, List, Optional, Sequence, Union

import numpy as np
import torch
from mmengine.dataset import pseudo_collate
from mmpose.apis.inferencers import Pose2DInferencer

from mmpose_sam.errors import InvalidInputError
from mmpose_sam.apis.inputs import (list_images, load_image, is_video, check_video, BBoxFile,
                                    select_boxes, PathLike)


class _Sized:
    """A generator with a known length, so that the progress bar (rich's ``track``) has a total."""

    def __init__(self, iterable: Iterable, length: int):
        self.iterable, self.length = iterable, length

    def __iter__(self):
        return iter(self.iterable)

    def __len__(self) -> int:
        return self.length


class TopdownInferencer(Pose2DInferencer):
    """MMPose's ``Pose2DInferencer`` for top-down models, with person boxes from a detector, a
    COCO results-format file or the whole image, and one-line errors for bad input; called as
    MMPose's inferencer (see ``tools/demo.py``).

    Args:
        model (str | Config): The config, or anything MMPose's inferencer takes.
        weights (str, optional): The checkpoint.
        device (str, optional): e.g. ``'cpu'``. Defaults to MMEngine's choice.
        det_model (str, optional): MMDetection config of a person detector. Defaults to the
            whole image as one person (MMPose's default detector, a download, is never used).
        det_weights (str, optional): The detector's checkpoint.
        det_cat_ids (int | Sequence[int]): The detector's person class(es). Defaults to 0.
        bbox_file (BBoxFile, optional): Person boxes by image file; an image without boxes in it
            has no people. Takes precedence over ``det_model``.
        attention_dir (str | Path, optional): Where to write each person's spatial attention
            pictures (images only, models with spatial attention).
        show_progress (bool): MMPose's progress bar, with a total. Defaults to False.
    """

    def __init__(self,
                 model,
                 weights: Optional[str] = None,
                 device: Optional[str] = None,
                 det_model: Optional[str] = None,
                 det_weights: Optional[str] = None,
                 det_cat_ids: Union[int, Sequence[int]] = 0,
                 bbox_file: Optional[BBoxFile] = None,
                 attention_dir: Optional[PathLike] = None,
                 show_progress: bool = False) -> None:
        self.bbox_file = bbox_file
        self.attention_dir = Path(attention_dir) if attention_dir else None
        # Every input the preprocessing skipped, as the error that said why (see `preprocess`).
        self.skipped: List[InvalidInputError] = []
        super().__init__(
            model, weights, device, det_model=det_model or 'whole_image', det_weights=det_weights,
            det_cat_ids=det_cat_ids, show_progress=show_progress)

    def _init_collate(self, cfg) -> Callable:
        # MMEngine 0.10.7's inferencer looks `test_dataloader.collate_fn` up by name only, and
        # fails on the dict form that the Runner takes (our configs set stack_collate for
        # training speed). One image's crops at a time need nothing but MMEngine's default.
        return pseudo_collate

    def _inputs_to_list(self, inputs):
        """MMPose's, except that a folder lists its images by suffix (MMPose's MIME-type check
        fails on a file without a suffix), a file that is not a video is always an image, and a
        missing path or unreadable video is an :class:`InvalidInputError`."""
        if not isinstance(inputs, (str, Path)):
            return super()._inputs_to_list(inputs)
        self._video_input = False
        path = Path(inputs)
        if path.is_dir():
            return [str(image) for image in list_images(path)]
        if not path.exists():
            raise InvalidInputError(path, 'no such file or directory')
        if is_video(path):
            check_video(path)
            return super()._inputs_to_list(str(path))  # an mmcv.VideoReader, and video_info
        return [str(path)]

    def preprocess(self, inputs, batch_size: int = 1, bboxes=None, bbox_thr: float = 0.3,
                   nms_thr: float = 0.3, **kwargs):
        """MMPose's preprocessing, one image or frame at a time, that decodes image files itself
        (:func:`load_image`) and skips a bad one: its error is printed as ``error: <path>:
        <problem> (skipped)`` and kept in ``self.skipped``.

        Yields:
            ``(batch, [image])``: the collated crops of the image's people and the BGR image. An
            image without people yields a batch with no ``inputs`` (see :meth:`forward`).
        """

        def generate():
            for index, input in enumerate(inputs):
                try:
                    image = load_image(input) if isinstance(input, str) else input
                    data_infos = self.preprocess_single(
                        image, index, bbox_thr=bbox_thr, nms_thr=nms_thr,
                        bboxes=bboxes[index] if bboxes else None,
                        img_path=input if isinstance(input, str) else None)
                except InvalidInputError as error:
                    print(f'error: {error} (skipped)', file=sys.stderr, flush=True)
                    self.skipped.append(error)
                    continue
                yield self.collate_fn(data_infos), [image]

        return _Sized(generate(), len(inputs)) if hasattr(inputs, '__len__') else generate()

    def preprocess_single(self, input: np.ndarray, index: int, bbox_thr: float = 0.3,
                          nms_thr: float = 0.3, bboxes: Optional[np.ndarray] = None,
                          img_path: Optional[str] = None) -> List[dict]:
        """The test-pipeline outputs of one BGR image's people.

        Args:
            bboxes: ``(N, 4)`` or ``(N, 5)`` boxes of this image, used as given (MMPose 1.3.2
                ignores this argument). Default: the bbox file's boxes with ``score >=
                bbox_thr``, else MMPose's (the detector's, or the whole image).
            img_path: the image's file, which names its outputs (default: MMPose's
                ``<index>.jpg``).
        """
        name = img_path or f'{index}.jpg'.rjust(10, '0')  # MMPose's name for an array
        if bboxes is None and self.bbox_file is not None:
            bboxes = select_boxes(self.bbox_file.boxes_for(name), bbox_thr)
        if bboxes is None:
            data_infos = super().preprocess_single(input, index, bbox_thr, nms_thr)
        else:
            bboxes = np.asarray(bboxes, dtype=np.float32)
            bboxes = bboxes.reshape(-1, bboxes.shape[-1]) if bboxes.size else np.zeros((0, 4))
            scores = bboxes[:, 4] if bboxes.shape[1] > 4 else np.ones(len(bboxes), np.float32)
            data_info = dict(img=input, img_path=name, **self.model.dataset_meta)
            data_infos = [
                self.pipeline(dict(data_info, bbox=box[None, :4], bbox_score=score[None]))
                for box, score in zip(bboxes, scores)
            ]
            if not data_infos:  # no people: the batch carries only the image's metainfo
                return [self._no_people(input, name)]
        for data_info in data_infos:
            data_info['data_samples'].set_metainfo(dict(img_path=name))
        return data_infos

    def _no_people(self, image: np.ndarray, img_path: str) -> dict:
        from mmengine.structures import InstanceData
        from mmpose.structures import PoseDataSample
        num_keypoints = self.model.dataset_meta['num_keypoints']
        sample = PoseDataSample(metainfo=dict(img_path=img_path, ori_shape=image.shape[:2]))
        sample.pred_instances = InstanceData(
            keypoints=np.zeros((0, num_keypoints, 2), np.float32),
            keypoint_scores=np.zeros((0, num_keypoints), np.float32),
            bboxes=np.zeros((0, 4), np.float32), bbox_scores=np.zeros(0, np.float32))
        return dict(inputs=None, data_samples=sample)

    @torch.no_grad()
    def forward(self, inputs: dict, **kwargs):
        """MMPose's forward pass, except for an image without people (nothing to run), then the
        attention pictures if asked for."""
        if inputs['inputs'][0] is None:
            return inputs['data_samples']
        samples = super().forward(inputs, **kwargs)
        if self.attention_dir is not None and not self._video_input:
            self._save_attention(inputs)
        return samples

    def _save_attention(self, batch: dict) -> None:
        """The spatial attention pictures of the batch's people, over their input crops."""
        from mmpose_sam.apis.attention import (capture_spatial_attention, person_prefixes,
                                               save_attention_pictures)
        maps = capture_spatial_attention(self.model, self.model.data_preprocessor(batch)['inputs'])
        stem = Path(batch['data_samples'][0].img_path).stem
        prefixes = person_prefixes(self.attention_dir, stem, len(batch['inputs']))
        for index, (crop, prefix) in enumerate(zip(batch['inputs'], prefixes)):
            crop = np.ascontiguousarray(crop.permute(1, 2, 0).cpu().numpy())  # BGR uint8 HWC
            save_attention_pictures(crop, [(stage, m[index]) for stage, m in maps], prefix)

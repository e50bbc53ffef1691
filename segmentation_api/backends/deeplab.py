"""DeepLabV3 (torchvision, COCO images with the 20 Pascal VOC labels) as a segmentation backend.

Two variants, chosen by backend name (``BACKDROP_SEGMENTATION_BACKEND`` or a request's
``backend``):

=======================  ==================================  ============================================
backend                  torchvision model                   weights file (models folder or hub cache)
=======================  ==================================  ============================================
``deeplabv3``            ``deeplabv3_resnet101``             ``deeplabv3_resnet101_coco-586e9e4e.pth``
``deeplabv3_mobilenet``  ``deeplabv3_mobilenet_v3_large``    ``deeplabv3_mobilenet_v3_large-fc3c493d.pth``
=======================  ==================================  ============================================

Both were trained on COCO restricted to the 20 VOC categories (``person``, ``car``,
``dog``, ...; see :mod:`segmentation_api.voc`); the MobileNet one is about 5 times
smaller and much faster, the ResNet-101 one more accurate (COCO-val mIoU 67.4 vs 60.3,
from the weights' metadata).

Build: ``weights=None, weights_backbone=None`` (nothing is ever downloaded), 21 classes
and ``aux_loss=True``: the published files carry the auxiliary head (``aux_classifier.*``),
so the state dict only loads with ``strict=True`` into a model that has one. Once loaded,
the auxiliary head, which only serves training, is removed so that inference does not pay
for it. The file comes from the models folder, else from torch hub's cache
(:mod:`.files`), read with ``torch.load(..., map_location="cpu", weights_only=True)``.

Per request: the input rule of the weights enum's ``transforms()`` (shorter side to 520 px,
bilinear; ImageNet mean and std), applied by :func:`segmentation_api.semantic.preprocess`
with the shorter side from ``BACKDROP_DEEPLABV3_SIZE``; the network's ``out`` logits
(``1 x 21 x h x w``) -> softmax over the classes -> one instance per requested class present
(:func:`segmentation_api.semantic.class_instances`): its probability is the soft mask.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

import numpy as np
import torch
from torchvision.models import WeightsEnum
from torchvision.models.segmentation import (
    DeepLabV3,
    DeepLabV3_MobileNet_V3_Large_Weights,
    DeepLabV3_ResNet101_Weights,
    deeplabv3_mobilenet_v3_large,
    deeplabv3_resnet101,
)

from service_common.config import Settings
from service_common.weights import DEEPLABV3, DEEPLABV3_MOBILENET, WeightsFile

from .. import voc
from ..semantic import class_instances, preprocess
from .base import BackendError, Instance
from .files import find_weights, not_found_message
from .torch_common import load_state_dict_file, resolve_device

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Variant:
    """One DeepLabV3 model.

    Attributes:
        builder: torchvision's model function.
        weights: torchvision's weights enum member (URL, categories, input rule); it is
            only read, never downloaded.
        file: the weights file in the registry (:mod:`service_common.weights`).
    """

    builder: Callable[..., DeepLabV3]
    weights: WeightsEnum
    file: WeightsFile


#: backend name -> variant.
VARIANTS: dict[str, Variant] = {
    "deeplabv3": Variant(
        deeplabv3_resnet101, DeepLabV3_ResNet101_Weights.COCO_WITH_VOC_LABELS_V1, DEEPLABV3
    ),
    "deeplabv3_mobilenet": Variant(
        deeplabv3_mobilenet_v3_large, DeepLabV3_MobileNet_V3_Large_Weights.COCO_WITH_VOC_LABELS_V1,
        DEEPLABV3_MOBILENET,
    ),
}


@dataclass(frozen=True)
class InputRule:
    """The network input the weights expect (from ``weights.transforms()``).

    Attributes:
        short_side: shorter side of the resized image, px.
        mean, std: per-channel (RGB) normalisation of values in [0, 1].
        interpolation: the resize filter's name (``"bilinear"``).
    """

    short_side: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    interpolation: str


def _check_variant(name: str) -> None:
    if name not in VARIANTS:
        raise BackendError(f"unknown DeepLabV3 variant {name!r}; expected one of {', '.join(VARIANTS)}")


def input_rule(variant: str) -> InputRule:
    """What ``VARIANTS[variant].weights.transforms()`` says about the input."""
    transform = VARIANTS[variant].weights.transforms()
    return InputRule(
        short_side=int(transform.resize_size[0]),
        mean=tuple(float(v) for v in transform.mean),
        std=tuple(float(v) for v in transform.std),
        interpolation=transform.interpolation.value,
    )


def architecture(variant: str) -> DeepLabV3:
    """The untrained network of ``variant`` exactly as its published state dict expects it.

    Random initial weights, auxiliary head included, in training mode (as built). Tests and
    benchmarks make weights files from its ``state_dict()``.
    """
    spec = VARIANTS[variant]
    return spec.builder(weights=None, weights_backbone=None,
                        num_classes=len(voc.categories()), aux_loss=True)


def build_deeplabv3(variant: str, weights_path: Path | None = None) -> DeepLabV3:
    """``variant``'s network in eval mode, without its auxiliary head.

    Args:
        variant: ``"deeplabv3"`` or ``"deeplabv3_mobilenet"``.
        weights_path: a state dict file (the variant's published file); ``None`` leaves the
            random initial weights.

    Raises:
        BackendError: the file is missing, unreadable, or does not fit (strict loading).
    """
    model = architecture(variant)
    if weights_path is not None:
        load_state_dict_file(model, weights_path, VARIANTS[variant].file)
    model.aux_classifier = None  # training only; DeepLabV3.forward skips it when None
    return model.eval()


class DeepLabV3Backend:
    """A loaded DeepLabV3; :meth:`predict` returns one instance per VOC class present.

    One model per worker process; calls are serialised by a lock.
    """

    classes_used = True
    mask_kind = "segmentation"
    class_aliases = MappingProxyType(voc.COCO_SPELLINGS)

    def __init__(self, model: DeepLabV3, name: str = "deeplabv3", device: torch.device | None = None,
                 short_side: int | None = None):
        """
        Args:
            model: the network (from :func:`build_deeplabv3`).
            name: its variant, a key of :data:`VARIANTS`; reported as the backend's name.
            device: where it runs (CPU when ``None``).
            short_side: the network input's shorter side in px; ``None`` = the weights'
                own (520).
        """
        _check_variant(name)
        rule = input_rule(name)
        self.short_side = int(short_side or rule.short_side)
        self.mean, self.std = rule.mean, rule.std
        self.device_obj = device or torch.device("cpu")
        self.model = model.to(self.device_obj).eval()
        self.name = name
        self.device = str(self.device_obj)
        self._lock = threading.Lock()

    @property
    def class_names(self) -> tuple[str, ...]:
        """VOC's 20 class names."""
        return voc.class_names()

    @classmethod
    def from_settings(cls, settings: Settings, variant: str = "deeplabv3") -> DeepLabV3Backend:
        """Build ``variant`` with its weights file from ``settings.models_dir``, else torch hub's cache.

        Raises:
            BackendError: the file is in neither place (the message says where to put it),
                or is unusable.
        """
        _check_variant(variant)
        weights = VARIANTS[variant].file
        path = find_weights(weights, settings.models_dir)
        if path is None:
            raise BackendError(not_found_message(weights, settings.models_dir))
        if settings.torch_threads > 0:
            torch.set_num_threads(settings.torch_threads)
        device = resolve_device(settings.device)
        started = time.perf_counter()
        model = build_deeplabv3(variant, path)
        log.info("loaded %s from %s on %s in %.1f s", variant, path, device, time.perf_counter() - started)
        return cls(model, name=variant, device=device, short_side=settings.deeplabv3_size)

    def probabilities(self, rgb: np.ndarray, class_ids: list[int]) -> tuple[np.ndarray, np.ndarray]:
        """Run the network.

        Args:
            rgb: ``H x W x 3`` uint8.
            class_ids: the output channels wanted (see :func:`segmentation_api.voc.label_ids`).

        Returns:
            ``(probs, winner)`` at the network's resolution ``h x w`` (shorter side
            ``short_side``): ``K x h x w`` float32 softmax probabilities in [0, 1] of
            ``class_ids``, and the ``h x w`` int64 map of the winning class id.
        """
        x = torch.from_numpy(preprocess(rgb, self.short_side, self.mean, self.std))
        with self._lock, torch.inference_mode():
            logits = self.model(x.to(self.device_obj))["out"][0]
            winner = logits.argmax(0)
            probs = logits.softmax(0)[class_ids]
            return probs.float().cpu().numpy(), winner.cpu().numpy()

    def predict(self, rgb: np.ndarray, classes: list[str], score_threshold: float) -> list[Instance]:
        """One instance per class of ``classes`` present with score ``> score_threshold``.

        Args:
            rgb: ``H x W x 3`` uint8.
            classes: VOC names (see :func:`segmentation_api.voc.class_names`).
            score_threshold: in [0, 1].

        Returns:
            instances sorted by decreasing score; masks ``H x W`` float32 in [0, 1] (the
            class's probability); scores are mean probabilities where the class wins.
        """
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise ValueError(f"expected H x W x 3 uint8, got {rgb.shape} {rgb.dtype}")
        class_ids = voc.label_ids(classes)
        probs, winner = self.probabilities(rgb, class_ids)
        return class_instances(probs, winner, class_ids, list(classes),
                               rgb.shape[0], rgb.shape[1], score_threshold)

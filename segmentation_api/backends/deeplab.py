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
``dog``, ...; see the VOC names below); the MobileNet one is about 5 times
smaller and much faster, the ResNet-101 one more accurate (COCO-val mIoU 67.4 vs 60.3,
from the weights' metadata).

Build: ``weights=None, weights_backbone=None`` (nothing is ever downloaded), 21 classes
and ``aux_loss=True``: the published files carry the auxiliary head (``aux_classifier.*``),
so the state dict only loads with ``strict=True`` into a model that has one. Once loaded,
the auxiliary head, which only serves training, is removed so that inference does not pay
for it. The file comes from the models folder, else from torch hub's cache
(:func:`service_common.weights.find_weights`), read with ``torch.load(..., map_location="cpu",
weights_only=True)``. Importing this module does not import torch; building a model does.

Per request: the input rule of the weights enum's ``transforms()`` (shorter side to 520 px,
bilinear; ImageNet mean and std), applied by :func:`segmentation_api.semantic.preprocess`
with the shorter side from ``BACKDROP_DEEPLABV3_SIZE``; the network's ``out`` logits
(``1 x 21 x h x w``) -> softmax over the classes -> one instance per requested class present
(:func:`segmentation_api.semantic.class_instances`): its probability is the soft mask.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import numpy as np

from service_common.config import Settings
from service_common.registry import register_model
from service_common.weights import ModelError, WeightsFile, torchvision_weights

from ..semantic import class_instances, preprocess
from .base import Instance, TorchBackend, check_rgb

if TYPE_CHECKING:
    import torch
    from torchvision.models.segmentation import DeepLabV3

log = logging.getLogger(__name__)

#: The 21 outputs of both variants, indexed by output channel (``__background__`` first):
#: ``DeepLabV3_ResNet101_Weights.COCO_WITH_VOC_LABELS_V1.meta["categories"]`` (the
#: MobileNetV3 weights carry the same list; a test checks both), written out so that the
#: names need no torchvision.
VOC_CATEGORIES: tuple[str, ...] = (
    "__background__", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat",
    "chair", "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant",
    "sheep", "sofa", "train", "tvmonitor",
)
BACKGROUND = VOC_CATEGORIES[0]

#: COCO spelling -> VOC name, for the six VOC classes whose names differ: the HTTP contract
#: speaks of COCO class names, so a request may use either spelling; answers use VOC's.
COCO_SPELLINGS: dict[str, str] = {
    "airplane": "aeroplane",
    "motorcycle": "motorbike",
    "dining table": "diningtable",
    "potted plant": "pottedplant",
    "couch": "sofa",
    "tv": "tvmonitor",
}

_INPUT_RULE = ("RGB in [0, 1], shorter side 520 px (bilinear), ImageNet mean and std "
               "(weights.transforms())")



def _weights(key: str, title: str, filename: str, builder: str, enum: str, size: int) -> WeightsFile:
    """The COCO_WITH_VOC_LABELS_V1 file of torchvision's ``builder`` (weights enum ``enum``)."""
    return torchvision_weights(
        key, filename, used_by=f"segmentation: {title} (torchvision {builder}, COCO_WITH_VOC_LABELS_V1), "
        f"backend {key}", source=f"torchvision {enum}.COCO_WITH_VOC_LABELS_V1",
        trained_on="COCO (the 20 Pascal VOC categories)", approx_size=size, categories=VOC_CATEGORIES,
        input_rule=_INPUT_RULE)


DEEPLABV3 = _weights("deeplabv3", "DeepLabV3 ResNet-101", "deeplabv3_resnet101_coco-586e9e4e.pth",
                     "deeplabv3_resnet101", "DeepLabV3_ResNet101_Weights", 244_545_748)
DEEPLABV3_MOBILENET = _weights(
    "deeplabv3_mobilenet", "DeepLabV3 MobileNetV3-Large", "deeplabv3_mobilenet_v3_large-fc3c493d.pth",
    "deeplabv3_mobilenet_v3_large", "DeepLabV3_MobileNet_V3_Large_Weights", 44_355_813)


@functools.cache
def class_names() -> tuple[str, ...]:
    """The 20 names a client may ask for (``"person"``, ``"car"``, ``"dog"``, ...)."""
    return tuple(c for c in VOC_CATEGORIES if c != BACKGROUND)


def label_ids(names: Sequence[str]) -> list[int]:
    """The output channels of ``names`` (each one of :func:`class_names`)."""
    index = {name: i for i, name in enumerate(VOC_CATEGORIES) if name != BACKGROUND}
    return [index[name] for name in names]


@dataclass(frozen=True)
class Variant:
    """One DeepLabV3 model.

    Attributes:
        builder: the name of torchvision's model function.
        enum: torchvision's weights enum member, as ``"Class.MEMBER"`` (URL, categories,
            input rule); it is only read, never downloaded.
        file: its weights file.
    """

    builder: str
    enum: str
    file: WeightsFile

    def build(self, **kwargs: Any) -> DeepLabV3:
        import torchvision.models.segmentation as tv

        return getattr(tv, self.builder)(**kwargs)

    def weights_enum(self) -> Any:
        import torchvision.models.segmentation as tv

        cls, member = self.enum.split(".")
        return getattr(getattr(tv, cls), member)


#: backend name -> variant.
VARIANTS: dict[str, Variant] = {
    "deeplabv3": Variant("deeplabv3_resnet101", "DeepLabV3_ResNet101_Weights.COCO_WITH_VOC_LABELS_V1",
                         DEEPLABV3),
    "deeplabv3_mobilenet": Variant(
        "deeplabv3_mobilenet_v3_large", "DeepLabV3_MobileNet_V3_Large_Weights.COCO_WITH_VOC_LABELS_V1",
        DEEPLABV3_MOBILENET),
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
        raise ModelError(f"unknown DeepLabV3 variant {name!r}; expected one of {', '.join(VARIANTS)}")


def input_rule(variant: str) -> InputRule:
    """What the weights enum's ``transforms()`` says about the input."""
    transform = VARIANTS[variant].weights_enum().transforms()
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
    return VARIANTS[variant].build(weights=None, weights_backbone=None,
                                   num_classes=len(VOC_CATEGORIES), aux_loss=True)


def build_deeplabv3(variant: str, weights_path: Path | None = None) -> DeepLabV3:
    """``variant``'s network in eval mode, without its auxiliary head.

    Args:
        variant: ``"deeplabv3"`` or ``"deeplabv3_mobilenet"``.
        weights_path: a state dict file (the variant's published file); ``None`` leaves the
            random initial weights.

    Raises:
        ModelError: the file is missing, unreadable, or does not fit (strict loading).
    """
    from service_common.torch_runtime import load_state_dict_file

    model = architecture(variant)
    if weights_path is not None:
        load_state_dict_file(model, weights_path, VARIANTS[variant].file)
    model.aux_classifier = None  # training only; DeepLabV3.forward skips it when None
    return model.eval()


@register_model("segmentation", "deeplabv3", weights=DEEPLABV3, torch=True, title="DeepLabV3 ResNet-101",
                what="VOC regions", mask_kind="segmentation", classes=class_names())
@register_model("segmentation", "deeplabv3_mobilenet", weights=DEEPLABV3_MOBILENET, torch=True,
                title="DeepLabV3 MobileNetV3-Large", what="VOC regions", mask_kind="segmentation",
                classes=class_names())
def load(settings: Settings, name: str) -> DeepLabV3Backend:
    """The backend ``name`` (a key of :data:`VARIANTS`) under ``settings``."""
    return DeepLabV3Backend.from_settings(settings, variant=name)


class DeepLabV3Backend(TorchBackend):
    """A loaded DeepLabV3; :meth:`predict` returns one instance per VOC class present.

    One model per worker process; calls are serialised by a lock.
    """

    class_aliases = MappingProxyType(COCO_SPELLINGS)
    #: VOC's 20 class names (the module's :func:`class_names`).
    class_names: tuple[str, ...] = class_names()

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
        super().__init__(model, name, device)

    @classmethod
    def from_settings(cls, settings: Settings, variant: str = "deeplabv3") -> DeepLabV3Backend:
        """Build ``variant`` with its weights file from ``settings.models_dir``, else torch hub's cache.

        Raises:
            ModelError: the file is in neither place (the message says where to put it),
                or is unusable.
        """
        _check_variant(variant)
        model, device = cls.load(settings, VARIANTS[variant].file, variant,
                                 lambda path: build_deeplabv3(variant, path))
        return cls(model, name=variant, device=device, short_side=settings.deeplabv3_size)

    def probabilities(self, rgb: np.ndarray, class_ids: list[int]) -> tuple[np.ndarray, np.ndarray]:
        """Run the network.

        Args:
            rgb: ``H x W x 3`` uint8.
            class_ids: the output channels wanted (see :func:`label_ids`).

        Returns:
            ``(probs, winner)`` at the network's resolution ``h x w`` (shorter side
            ``short_side``): ``K x h x w`` float32 softmax probabilities in [0, 1] of
            ``class_ids``, and the ``h x w`` int64 map of the winning class id.
        """
        import torch

        x = torch.from_numpy(preprocess(rgb, self.short_side, self.mean, self.std))
        with self._lock, torch.inference_mode():
            logits = self.model(x.to(self.device_obj))["out"][0]
            winner = logits.argmax(0)
            probs = logits.softmax(0)[class_ids]
            return probs.float().cpu().numpy(), winner.cpu().numpy()

    def predict(self, rgb: np.ndarray, classes: list[str], score_threshold: float,
                working_size: int | None = None) -> list[Instance]:
        """One instance per class of ``classes`` (VOC names, :func:`class_names`) present
        with score ``> score_threshold`` (see :meth:`.base.Backend.predict`), by decreasing
        score: its mask is the class's probability, its score the mean probability where the
        class wins."""
        check_rgb(rgb)
        class_ids = label_ids(classes)
        probs, winner = self.probabilities(rgb, class_ids)
        return class_instances(probs, winner, class_ids, list(classes),
                               rgb.shape[0], rgb.shape[1], score_threshold)

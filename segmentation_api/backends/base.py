"""What every segmentation backend is and returns.

A backend is an object with ``name``, ``device``, ``classes_used``, ``class_names``,
``class_aliases``, ``mask_kind`` and ``predict(rgb, classes, score_threshold) -> list[Instance]``, built
once per worker process and then called for each request. Nothing here imports torch.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, Protocol, runtime_checkable

import numpy as np

from contract.values import Box

log = logging.getLogger(__name__)

@dataclass(frozen=True)
class Instance:
    """One detected subject.

    Attributes:
        mask: ``H x W`` float32 soft mask in [0, 1], same size as the input image.
        label: class name (COCO or VOC name such as ``"person"``, or ``"salient"``).
        score: detection confidence in [0, 1].
        box: the detection's box in pixels (``left, top, width, height``).
    """

    mask: np.ndarray
    label: str
    score: float
    box: tuple[int, int, int, int]

    @property
    def area(self) -> int:
        """Pixels with ``mask >= 0.5``."""
        return int(np.count_nonzero(self.mask >= 0.5))


@runtime_checkable
class Backend(Protocol):
    """A loaded segmentation model.

    Attributes:
        name: short name reported in ``X-Segmentation-Backend`` (``"maskrcnn"``, ``"u2netp"``,
            ``"deeplabv3"``).
        device: where it runs (``"cpu"``, ``"cuda:0"``).
        classes_used: ``False`` when the model ignores the requested classes (salient
            object models).
        class_names: the class names a request may ask for (COCO's 80 for Mask R-CNN,
            VOC's 20 for DeepLabV3); a request naming another one is refused.
        class_aliases: other accepted spellings -> one of ``class_names`` (may be empty).
        mask_kind: what its soft masks are (:data:`contract.vocab.MASK_KINDS`): ``"matte"``
            (a matting model's alpha, accurate to the hair: MODNet) or ``"segmentation"`` (a
            segmentation or saliency model's mask, right in the large but not at the edge:
            Mask R-CNN, DeepLabV3, U^2-Net-p). The matting service refines a matte in a
            narrow band around its own soft edge and decides a segmentation mask's edge itself
            in a wide band (:mod:`trimap`); ``/v1/mask`` says which in ``X-Mask-Kind``.
    """

    name: str
    device: str
    classes_used: bool
    class_names: tuple[str, ...]
    class_aliases: Mapping[str, str]
    mask_kind: str

    def predict(self, rgb: np.ndarray, classes: list[str], score_threshold: float,
                working_size: int | None = None) -> list[Instance]:
        """Find the subjects in ``rgb``.

        Args:
            rgb: ``H x W x 3`` uint8 RGB image.
            classes: names from ``class_names`` to keep (ignored when ``classes_used`` is False).
            score_threshold: keep detections whose score is ``> score_threshold``, in [0, 1].
            working_size: the request's ``model_size``: the network input's shorter side, px;
                ``None`` = the backend's own. Only MODNet honours it; the others ignore it.

        Returns:
            the kept instances, masks ``H x W`` float32 in [0, 1]; empty when none.
        """
        ...


def box_of_mask(mask: np.ndarray, level: float = 0.5) -> Box:
    """The box of the pixels with ``mask >= level``; zeros when none."""
    return Box.of(mask >= level)


def check_rgb(rgb: np.ndarray) -> None:
    """Raise ``ValueError`` unless ``rgb`` is an ``H x W x 3`` uint8 image."""
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"expected H x W x 3 uint8, got {rgb.shape} {rgb.dtype}")


#: A people matte's region (alpha >= 0.5) smaller than this share of the image is no subject.
MIN_AREA_FRACTION = 0.005


def score_of(alpha: np.ndarray) -> float:
    """A people matte's score: the mean of ``alpha`` (``H x W`` float32 in ``[0, 1]``) over
    ``alpha >= 0.5``; 0 when that region is under :data:`MIN_AREA_FRACTION` of the image (a
    people model always answers something, so a speck is no subject)."""
    region = alpha >= 0.5
    if np.count_nonzero(region) < MIN_AREA_FRACTION * alpha.size:
        return 0.0
    return float(alpha[region].mean())


def one_instance(mask: np.ndarray, label: str, score: float, score_threshold: float) -> list[Instance]:
    """``mask`` as the one instance ``label`` of ``score`` (the whole-image models: MODNet,
    selfie, U^2-Net-p); none when ``score <= score_threshold`` or no pixel is ``>= 0.5``."""
    box = box_of_mask(mask)
    if score <= score_threshold or box[2] == 0:
        return []
    return [Instance(mask=mask, label=label, score=score, box=box)]


class PeopleMatteBackend:
    """What the whole-image people models (MODNet, the selfie segmenter) share: one class,
    ``person``, answered as a ``matte`` of all the people in the photo, scored by
    :func:`score_of`. A subclass gives :meth:`alpha`."""

    device = "cpu"
    classes_used = True
    mask_kind = "matte"
    class_names: tuple[str, ...]  # the subclass's, from its weights' categories
    class_aliases: Mapping[str, str] = MappingProxyType({})

    def alpha(self, rgb: np.ndarray, working_size: int | None = None) -> np.ndarray:
        """The people's matte of ``rgb`` (``H x W x 3`` uint8): ``H x W`` float32 in
        ``[0, 1]``; ``working_size`` is the request's ``model_size`` (``None`` = the
        backend's own; a model with a fixed input ignores it)."""
        raise NotImplementedError

    def predict(self, rgb: np.ndarray, classes: list[str], score_threshold: float,
                working_size: int | None = None) -> list[Instance]:
        """The people of ``rgb`` as one ``person`` instance; none when its score is
        ``<= score_threshold``. ``classes`` can only be ``["person"]`` (the request parser
        refuses others for these backends)."""
        mask = self.alpha(rgb, working_size)
        return one_instance(mask, self.class_names[0], score_of(mask), score_threshold)


class TorchBackend:
    """What the torch backends (Mask R-CNN, DeepLabV3) share: one model on one device, calls
    serialised by a lock (one model per worker; gunicorn threads would otherwise multiply its
    activation memory), and the loading rule of :meth:`load`. torch is imported only when one
    is built.

    Args:
        model: the network, moved to ``device`` and put in eval mode here.
        name: the backend's name (``X-Segmentation-Backend``).
        device: where it runs (CPU when ``None``).
    """

    classes_used = True
    mask_kind = "segmentation"

    def __init__(self, model: Any, name: str, device: Any = None) -> None:
        import torch

        self.device_obj = device or torch.device("cpu")
        self.model = model.to(self.device_obj).eval()
        self.name = name
        self.device = str(self.device_obj)
        self._lock = threading.Lock()

    @staticmethod
    def load(settings: Any, weights: Any, name: str, build: Callable[[Path], Any]) -> tuple[Any, Any]:
        """``(model, device)``: ``build(path)`` with ``weights``' file from the models folder
        (else torch hub's cache), on ``settings.device``.

        Raises:
            ModelError: the file is in neither place (the message says where to put it), is
                unusable, or the device cannot be used.
        """
        from service_common.torch_runtime import resolve_device
        from service_common.weights import ModelError, find_weights, not_found_message

        path = find_weights(weights, settings.models_dir)
        if path is None:
            raise ModelError(not_found_message(weights, settings.models_dir))
        device = resolve_device(settings.device)
        started = time.perf_counter()
        model = build(path)
        log.info("loaded %s from %s on %s in %.1f s", name, path, device, time.perf_counter() - started)
        return model, device

"""Segmentation backends and the rules that pick them.

``BACKDROP_SEGMENTATION_BACKEND`` names the default backend:

* ``auto`` (default): Mask R-CNN when ``maskrcnn_resnet50_fpn_coco-bf2d0c1e.pth`` is in the
  models folder (or in torch hub's cache), else the offline U^2-Net-p, with a WARNING
  naming the missing file;
* ``maskrcnn`` / ``maskrcnn_v2``: that Mask R-CNN (80 COCO classes; instances);
* ``deeplabv3`` / ``deeplabv3_mobilenet``: DeepLabV3 with a ResNet-101 / MobileNetV3-Large
  backbone (20 VOC classes; one region per class, no instances);
* ``u2netp``: the offline salient-object model.

A named backend whose weights are missing or wrong is an error (the message names the
file). ``BACKDROP_SEGMENTATION_PRELOAD`` (comma-separated names) loads more backends at
start, so that a request may pick one with ``backend=NAME``. Every model is loaded once
per worker process, by ``create_app``, never per request.

Backend modules are imported only when chosen (torch is not imported by this package).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from service_common.config import SEGMENTATION_BACKENDS, Settings
from service_common.weights import MASKRCNN

from .base import Backend, BackendError, Instance, box_of_mask

__all__ = ["BACKEND_NAMES", "Backend", "BackendError", "Instance", "box_of_mask", "load_backend",
           "load_backends", "resolve_name"]

log = logging.getLogger(__name__)

#: Every backend name (``auto`` excluded).
BACKEND_NAMES: tuple[str, ...] = tuple(n for n in SEGMENTATION_BACKENDS if n != "auto")


def resolve_name(settings: Settings) -> str:
    """The backend ``settings`` asks for, with ``auto`` resolved (``maskrcnn`` or ``u2netp``)."""
    choice = settings.segmentation_backend
    if choice != "auto":
        return choice
    from .files import find_weights, not_found_message

    if find_weights(MASKRCNN, settings.models_dir) is not None:
        return "maskrcnn"
    log.warning(
        "BACKDROP_SEGMENTATION_BACKEND=auto: Mask R-CNN weights missing, falling back to the "
        "offline U^2-Net-p salient-object backend (it ignores the requested classes). %s",
        not_found_message(MASKRCNN, settings.models_dir),
    )
    return "u2netp"


def _maskrcnn(settings: Settings, name: str) -> Backend:
    from .maskrcnn import MaskRCNNBackend

    return MaskRCNNBackend.from_settings(settings, variant=name)


def _deeplab(settings: Settings, name: str) -> Backend:
    from .deeplab import DeepLabV3Backend

    return DeepLabV3Backend.from_settings(settings, variant=name)


def _u2netp(settings: Settings, name: str) -> Backend:
    from .u2netp import U2NetPBackend

    return U2NetPBackend.from_settings(settings)


_LOADERS: dict[str, Callable[[Settings, str], Backend]] = {
    "maskrcnn": _maskrcnn,
    "maskrcnn_v2": _maskrcnn,
    "deeplabv3": _deeplab,
    "deeplabv3_mobilenet": _deeplab,
    "u2netp": _u2netp,
}


def load_backend(settings: Settings, name: str | None = None) -> Backend:
    """Build one backend; call once per process.

    Args:
        settings: the configuration (models folder, device, threads, model options).
        name: which backend (one of :data:`BACKEND_NAMES`); ``None`` = the default one
            (:func:`resolve_name`).

    Raises:
        BackendError: unknown name, or its weights file is missing or unusable (the message
            names it).
    """
    name = name or resolve_name(settings)
    loader = _LOADERS.get(name)
    if loader is None:
        raise BackendError(f"unknown segmentation backend {name!r}; expected one of {', '.join(_LOADERS)}")
    return loader(settings, name)


def load_backends(settings: Settings, default: Backend | None = None,
                  extra: list[Backend] | None = None) -> dict[str, Backend]:
    """The default backend and the preloaded ones, by name, the default first.

    Args:
        settings: ``segmentation_backend`` names the default, ``segmentation_preload`` the
            others.
        default: an already built default backend (tests inject one); loaded from
            ``settings`` when ``None``.
        extra: already built extra backends, used instead of loading
            ``settings.segmentation_preload``.

    Raises:
        BackendError: a backend cannot be loaded (the message names its file).
    """
    first = default if default is not None else load_backend(settings)
    backends: dict[str, Backend] = {first.name: first}
    if extra is not None:
        for backend in extra:
            backends.setdefault(backend.name, backend)
        return backends
    for name in settings.segmentation_preload:
        if name not in backends:
            backends[name] = load_backend(settings, name)
    return backends

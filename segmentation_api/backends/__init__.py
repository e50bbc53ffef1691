"""Segmentation backends and the rule that picks one.

``BACKDROP_SEGMENTATION_BACKEND``:

* ``auto`` (default): Mask R-CNN when ``maskrcnn_resnet50_fpn_coco-bf2d0c1e.pth`` is in the
  models folder, else the offline U^2-Net-p, with a WARNING naming the missing file;
* ``maskrcnn`` / ``maskrcnn_v2``: that Mask R-CNN; a missing or wrong file is an error;
* ``u2netp``: the offline salient-object model.

Backend modules are imported only when chosen (torch is not imported by this package).
"""

from __future__ import annotations

import logging

from service_common.config import Settings
from service_common.weights import MASKRCNN, missing_message

from .base import Backend, BackendError, Instance, box_of_mask

__all__ = ["Backend", "BackendError", "Instance", "box_of_mask", "load_backend", "resolve_name"]

log = logging.getLogger(__name__)


def resolve_name(settings: Settings) -> str:
    """The backend ``settings`` asks for, with ``auto`` resolved (``maskrcnn`` or ``u2netp``)."""
    choice = settings.segmentation_backend
    if choice != "auto":
        return choice
    if MASKRCNN.path(settings.models_dir).is_file():
        return "maskrcnn"
    log.warning(
        "BACKDROP_SEGMENTATION_BACKEND=auto: Mask R-CNN weights missing, falling back to the "
        "offline U^2-Net-p salient-object backend (it ignores the requested classes). %s",
        missing_message(MASKRCNN, settings.models_dir),
    )
    return "u2netp"


def load_backend(settings: Settings) -> Backend:
    """Build the backend ``settings`` asks for; call once per process.

    Raises:
        BackendError: its weights file is missing or unusable (the message names it).
    """
    name = resolve_name(settings)
    if name in ("maskrcnn", "maskrcnn_v2"):
        from .maskrcnn import MaskRCNNBackend

        return MaskRCNNBackend.from_settings(settings, variant=name)
    if name == "u2netp":
        from .u2netp import U2NetPBackend

        return U2NetPBackend.from_settings(settings)
    raise BackendError(f"unknown segmentation backend {name!r}")

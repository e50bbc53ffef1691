"""COCO category names, as torchvision's Mask R-CNN weights number them.

The names come from the metadata of torchvision's weights enum, which ships with
torchvision (no download). The list is indexed by the model's label ids: index 0 is
``__background__`` and a few unused ids are ``N/A``; :func:`class_names` leaves those out.
"""

from __future__ import annotations

import functools


@functools.cache
def categories() -> tuple[str, ...]:
    """All 91 entries, indexed by Mask R-CNN label id (``__background__`` and ``N/A`` included)."""
    from torchvision.models.detection import MaskRCNN_ResNet50_FPN_Weights  # heavy import

    return tuple(MaskRCNN_ResNet50_FPN_Weights.COCO_V1.meta["categories"])


@functools.cache
def class_names() -> tuple[str, ...]:
    """The 80 names a client may ask for (``"person"``, ``"dog"``, ``"traffic light"``, ...)."""
    return tuple(c for c in categories() if c not in ("__background__", "N/A"))


def label_ids(names: list[str] | tuple[str, ...]) -> list[int]:
    """The Mask R-CNN label ids of ``names`` (each must be one of :func:`class_names`)."""
    index = {name: i for i, name in enumerate(categories()) if name not in ("__background__", "N/A")}
    return [index[name] for name in names]

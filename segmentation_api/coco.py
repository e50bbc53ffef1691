"""COCO category names, as torchvision's Mask R-CNN weights number them.

The list equals ``MaskRCNN_ResNet50_FPN_Weights.COCO_V1.meta["categories"]`` (a test checks
it); it is written out here so that a worker that only needs the names (validation of
``classes``) does not import torchvision for them (about 3 s and 700 MB per worker). Index 0
is ``__background__`` and a few unused ids are ``N/A``; :func:`class_names` leaves those out.
"""

from __future__ import annotations

import functools

#: All 91 entries, indexed by Mask R-CNN label id.
CATEGORIES: tuple[str, ...] = (
    '__background__', 'person', 'bicycle', 'car', 'motorcycle', 'airplane', 'bus', 'train',
    'truck', 'boat', 'traffic light', 'fire hydrant', 'N/A', 'stop sign', 'parking meter', 'bench',
    'bird', 'cat', 'dog', 'horse', 'sheep', 'cow', 'elephant', 'bear', 'zebra', 'giraffe', 'N/A',
    'backpack', 'umbrella', 'N/A', 'N/A', 'handbag', 'tie', 'suitcase', 'frisbee', 'skis',
    'snowboard', 'sports ball', 'kite', 'baseball bat', 'baseball glove', 'skateboard',
    'surfboard', 'tennis racket', 'bottle', 'N/A', 'wine glass', 'cup', 'fork', 'knife', 'spoon',
    'bowl', 'banana', 'apple', 'sandwich', 'orange', 'broccoli', 'carrot', 'hot dog', 'pizza',
    'donut', 'cake', 'chair', 'couch', 'potted plant', 'bed', 'N/A', 'dining table', 'N/A', 'N/A',
    'toilet', 'N/A', 'tv', 'laptop', 'mouse', 'remote', 'keyboard', 'cell phone', 'microwave',
    'oven', 'toaster', 'sink', 'refrigerator', 'N/A', 'book', 'clock', 'vase', 'scissors',
    'teddy bear', 'hair drier', 'toothbrush',
)


def categories() -> tuple[str, ...]:
    """All 91 entries, indexed by Mask R-CNN label id (``__background__`` and ``N/A`` included)."""
    return CATEGORIES


@functools.cache
def class_names() -> tuple[str, ...]:
    """The 80 names a client may ask for (``"person"``, ``"dog"``, ``"traffic light"``, ...)."""
    return tuple(c for c in CATEGORIES if c not in ("__background__", "N/A"))


def label_ids(names: list[str] | tuple[str, ...]) -> list[int]:
    """The Mask R-CNN label ids of ``names`` (each must be one of :func:`class_names`)."""
    index = {name: i for i, name in enumerate(CATEGORIES) if name not in ("__background__", "N/A")}
    return [index[name] for name in names]

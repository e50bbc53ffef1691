"""Pascal VOC category names, as torchvision's DeepLabV3 weights number them.

The names come from the metadata of torchvision's weights enum
(``DeepLabV3_ResNet101_Weights.COCO_WITH_VOC_LABELS_V1``; the MobileNetV3 weights carry the
same list), which ships with torchvision (no download). Index 0 is ``__background__``, which
is not a subject: :func:`class_names` leaves it out.

Six of the 20 VOC names are spelled differently in COCO (``motorbike`` / ``motorcycle``,
...). The HTTP contract speaks of COCO class names, so :data:`COCO_SPELLINGS` lets a
request use either spelling; answers always use the VOC name.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

BACKGROUND = "__background__"

#: COCO spelling -> VOC name, for the VOC classes whose names differ.
COCO_SPELLINGS: dict[str, str] = {
    "airplane": "aeroplane",
    "motorcycle": "motorbike",
    "dining table": "diningtable",
    "potted plant": "pottedplant",
    "couch": "sofa",
    "tv": "tvmonitor",
}


@functools.cache
def categories() -> tuple[str, ...]:
    """All 21 entries, indexed by the model's output channel (``__background__`` first)."""
    from torchvision.models.segmentation import DeepLabV3_ResNet101_Weights  # heavy import

    return tuple(DeepLabV3_ResNet101_Weights.COCO_WITH_VOC_LABELS_V1.meta["categories"])


@functools.cache
def class_names() -> tuple[str, ...]:
    """The 20 names a client may ask for (``"person"``, ``"car"``, ``"dog"``, ...)."""
    return tuple(c for c in categories() if c != BACKGROUND)


def label_ids(names: Sequence[str]) -> list[int]:
    """The output channels of ``names`` (each one of :func:`class_names`)."""
    index = {name: i for i, name in enumerate(categories()) if name != BACKGROUND}
    return [index[name] for name in names]

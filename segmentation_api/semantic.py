"""Semantic segmentation maps -> instances, and the input rule of such models. Pure numpy.

A semantic segmentation model (DeepLabV3) labels pixels, not objects: it has no instances.
:func:`class_instances` turns its per-class probabilities into one
:class:`~segmentation_api.backends.base.Instance` per requested class that is present:

* **present**: the class wins (has the highest probability of all classes, background
  included) at one pixel at least, and its probability reaches 0.5 somewhere once resized
  to the image (else it would add nothing to a trimap);
* **mask**: the class's softmax probability, ``H x W`` float32 in [0, 1], resized to the
  input size (bilinear when enlarging, area average when shrinking);
* **score**: the mean probability over the pixels where the class wins, in [0, 1] (near 1
  when the model is sure of the region); the instance is kept when ``score > threshold``;
* **box**: the bounding box of ``mask >= 0.5``.

``instances=largest`` then picks the largest class region.

:func:`preprocess` applies the input rule that torchvision's weights enums describe with
``weights.transforms()`` (``SemanticSegmentation``): shorter side resized to a given size
(bilinear, antialiased when shrinking), values scaled to [0, 1], normalised per channel.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
from PIL import Image

from .backends.base import Instance, box_of_mask


def resized_size(height: int, width: int, short_side: int) -> tuple[int, int]:
    """``(h, w)`` with the shorter side ``short_side`` and the aspect ratio kept.

    The longer side is ``int(short_side * long / short)`` (rounded down, as torchvision's
    ``resize`` with a single size does).
    """
    if height <= width:
        return short_side, max(1, int(short_side * width / height))
    return max(1, int(short_side * height / width)), short_side


def preprocess(rgb: np.ndarray, short_side: int, mean: Sequence[float], std: Sequence[float]) -> np.ndarray:
    """``H x W x 3`` uint8 RGB -> ``1 x 3 x h x w`` float32 network input.

    Args:
        rgb: the image.
        short_side: the network input's shorter side, px (``h x w`` keeps the aspect ratio).
        mean, std: per-channel normalisation of values in [0, 1] (RGB order).
    """
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"expected H x W x 3 uint8, got {rgb.shape} {rgb.dtype}")
    h, w = resized_size(rgb.shape[0], rgb.shape[1], short_side)
    if (h, w) != rgb.shape[:2]:
        # Pillow's bilinear filter widens its support when shrinking: antialiased, like
        # torchvision's resize(antialias=True).
        rgb = np.asarray(Image.fromarray(rgb).resize((w, h), Image.Resampling.BILINEAR))
    x = rgb.astype(np.float32) * np.float32(1.0 / 255.0)
    x -= np.asarray(mean, dtype=np.float32)
    x /= np.asarray(std, dtype=np.float32)
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None])


def resize_mask(mask: np.ndarray, height: int, width: int) -> np.ndarray:
    """``h x w`` float32 in [0, 1] -> ``height x width`` float32 in [0, 1]."""
    if mask.shape == (height, width):
        return np.ascontiguousarray(mask, dtype=np.float32)
    shrinking = height * width < mask.shape[0] * mask.shape[1]
    interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    out = cv2.resize(mask.astype(np.float32, copy=False), (width, height), interpolation=interpolation)
    return np.clip(out, 0.0, 1.0)


def class_instances(
    probs: np.ndarray, winner: np.ndarray, class_ids: Sequence[int], labels: Sequence[str],
    height: int, width: int, score_threshold: float,
) -> list[Instance]:
    """One instance per requested class present (see the module docstring).

    Args:
        probs: ``K x h x w`` float32 softmax probabilities in [0, 1] of the ``K`` requested
            classes, at the network's resolution.
        winner: ``h x w`` integer map of the winning class id (argmax over all classes).
        class_ids: the ``K`` class ids (channels of the full output) of ``probs``' planes.
        labels: the ``K`` class names.
        height, width: the input image's size; the masks are resized to it.
        score_threshold: keep a class when its score is ``> score_threshold``, in [0, 1].

    Returns:
        instances sorted by decreasing score; masks ``height x width`` float32 in [0, 1].
    """
    if probs.ndim != 3 or probs.shape[1:] != winner.shape:
        raise ValueError(f"probs {probs.shape} and winner {winner.shape} do not match")
    if not len(class_ids) == len(labels) == probs.shape[0]:
        raise ValueError("probs, class_ids and labels must have the same length")
    instances = []
    for plane, class_id, label in zip(probs, class_ids, labels, strict=True):
        wins = winner == class_id
        if not wins.any():
            continue
        score = float(plane[wins].mean())
        if score <= score_threshold:
            continue
        mask = resize_mask(plane, height, width)
        box = box_of_mask(mask)
        if box[2] == 0:
            continue
        instances.append(Instance(mask=mask, label=label, score=score, box=box))
    instances.sort(key=lambda inst: inst.score, reverse=True)
    return instances

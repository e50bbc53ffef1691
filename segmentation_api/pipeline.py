"""Image -> instances -> trimap, with timings. No HTTP here.

:func:`segment` runs a backend on an RGB image, keeps the requested instances and builds
the trimap; the route turns the result into an HTTP answer.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from .backends import Backend, Instance
from .trimap import Trimap, TrimapOptions, build_trimap

INSTANCE_MODES = ("all", "largest")


@dataclass(frozen=True)
class SegmentParams:
    """What one request asks for (already validated).

    Attributes:
        classes: class names to keep (COCO names for Mask R-CNN, VOC names for DeepLabV3).
        score_threshold: keep detections with score ``> score_threshold``, in [0, 1].
        instances: ``"all"`` or ``"largest"`` (the instance with the largest mask area).
        trimap: thresholds and band of the trimap.
    """

    classes: tuple[str, ...] = ("person",)
    score_threshold: float = 0.6
    instances: str = "all"
    trimap: TrimapOptions = field(default_factory=TrimapOptions)


@dataclass(frozen=True)
class SegmentResult:
    """The outcome of :func:`segment`.

    Attributes:
        instances: the instances kept (empty when nothing was found).
        trimap: the trimap, or ``None`` when there is no subject.
        timings_ms: ``{"model": ..., "trimap": ...}`` in milliseconds.
    """

    instances: list[Instance]
    trimap: Trimap | None
    timings_ms: dict[str, float]


def select_instances(instances: list[Instance], mode: str) -> list[Instance]:
    """All instances, or only the one with the largest mask area (``mode="largest"``)."""
    if mode not in INSTANCE_MODES:
        raise ValueError(f"instances={mode!r}: expected one of {INSTANCE_MODES}")
    if mode == "largest" and len(instances) > 1:
        return [max(instances, key=lambda inst: inst.area)]
    return list(instances)


def segment(backend: Backend, rgb: np.ndarray, params: SegmentParams) -> SegmentResult:
    """Find the subjects of ``rgb`` (``H x W x 3`` uint8) and build their trimap."""
    started = time.perf_counter()
    found = backend.predict(rgb, list(params.classes), params.score_threshold)
    model_done = time.perf_counter()
    kept = select_instances(found, params.instances)
    trimap = build_trimap(np.stack([inst.mask for inst in kept]), params.trimap) if kept else None
    done = time.perf_counter()
    return SegmentResult(
        instances=kept if trimap is not None else [],
        trimap=trimap,
        timings_ms={"model": (model_done - started) * 1000.0, "trimap": (done - model_done) * 1000.0},
    )

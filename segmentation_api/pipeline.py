"""Image -> instances -> soft mask (-> trimap), with timings. No HTTP here.

:func:`segment` runs a backend on an RGB image, keeps the requested instances and combines
their soft masks (the answer of ``/v1/mask``); :func:`with_trimap` adds the trimap built from
them (the answer of ``/v1/trimap``). The routes turn the result into an HTTP answer.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

import numpy as np

from contract.vocab import INSTANCES
from trimap.from_masks import Trimap, TrimapOptions, build_trimap, combine_masks

from .backends import Backend, Instance


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
        mask: their combined soft mask (per-pixel maximum), ``H x W`` float32 in [0, 1];
            ``None`` when there is no subject.
        trimap: the trimap (:func:`with_trimap`), or ``None`` (no subject, or not built).
        timings_ms: ``{"model": ...}`` (the model, selecting and combining the instances),
            plus ``"trimap"`` after :func:`with_trimap`, in milliseconds.
    """

    instances: list[Instance]
    mask: np.ndarray | None
    timings_ms: dict[str, float]
    trimap: Trimap | None = None

    @property
    def found(self) -> bool:
        """Whether a subject was found."""
        return self.mask is not None


def select_instances(instances: list[Instance], mode: str) -> list[Instance]:
    """All instances, or only the one with the largest mask area (``mode="largest"``)."""
    if mode not in INSTANCES:
        raise ValueError(f"instances={mode!r}: expected one of {INSTANCES}")
    if mode == "largest" and len(instances) > 1:
        return [max(instances, key=lambda inst: inst.area)]
    return list(instances)


def segment(backend: Backend, rgb: np.ndarray, params: SegmentParams) -> SegmentResult:
    """Find the subjects of ``rgb`` (``H x W x 3`` uint8) and combine their soft masks.

    No subject (no instance kept, or none with a pixel at or above 0.5) gives a result with
    ``mask is None``.
    """
    started = time.perf_counter()
    found = backend.predict(rgb, list(params.classes), params.score_threshold)
    kept = select_instances(found, params.instances)
    mask = combine_masks(np.stack([inst.mask for inst in kept])) if kept else None
    if mask is not None and not (mask >= params.trimap.subject_level).any():
        mask = None
    return SegmentResult(
        instances=kept if mask is not None else [],
        mask=mask,
        timings_ms={"model": (time.perf_counter() - started) * 1000.0},
    )


def with_trimap(result: SegmentResult, options: TrimapOptions) -> SegmentResult:
    """``result`` with its trimap (:func:`~trimap.from_masks.build_trimap`) and the time it took."""
    if result.mask is None:
        return result
    started = time.perf_counter()
    trimap = build_trimap(result.mask, options)
    timings = {**result.timings_ms, "trimap": (time.perf_counter() - started) * 1000.0}
    return replace(result, trimap=trimap, timings_ms=timings)

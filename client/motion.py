"""Keyframes and motion: the person model on every k-th frame, its matte carried along the
motion in between.

The stack's cost per frame is mostly the person model (segmentation service). Between two
frames a video moves little, so the video client asks for the full path (model, refinement)
on **keyframes** only, every :attr:`Reuse.interval` frames. For a frame ``t`` in between, it
carries the last keyframe ``K``'s matte to ``t`` along the motion and sends it as the
request's ``prior``: the matting service then skips the segmentation service and refines the
carried matte at full resolution in a band around its edge, against frame ``t``'s own
colours (the step that already refines the model's matte). So every frame's edge is
computed from that frame; only the coarse shape is carried.

The motion is OpenCV's DIS optical flow (ultrafast preset) from ``t`` to ``K`` on grey frames
scaled to :attr:`Reuse.flow_width` px wide (a few ms), upsampled, and the matte of ``K`` is
warped backwards with it (``prior_t(x) = alpha_K(x + flow(x))``).

**Fallback**: where the flow cannot be trusted the frame gets the full path itself:
when the 95th percentile of the motion over the subject (and a margin around it) exceeds
:attr:`Reuse.max_motion_px` px, when the warped keyframe differs from frame ``t`` by more
than :attr:`Reuse.max_residual` on average over that region (something appeared that the
keyframe did not show: a hand entering, a turn of the head), or when the keyframe had no
subject.

Scheduling: :meth:`KeyframeMatter.plan` runs in frame order in the caller's thread and
decides which frames are keyframes; :meth:`KeyframeMatter.__call__` runs in a worker thread
(:func:`client.pipeline.ordered_map`). A frame between keyframes waits for its keyframe's
answer; keyframes never wait, so with several requests in flight the next keyframe is
already on its way. Keyframes fall at fixed indices (multiples of the interval), so a
resumed job gives the frames an uninterrupted run gives: it sends the keyframe before its
first frame again, as a prior only (:meth:`KeyframeMatter.warm`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field

import cv2
import numpy as np

#: The person model on every frame (no reuse).
EVERY_FRAME = 1


@dataclass(frozen=True)
class Reuse:
    """When the matte of a keyframe may be carried to the frames after it.

    Attributes:
        interval: a keyframe every ``interval`` frames (``1``: every frame gets the full path).
        max_motion_px: a frame whose subject moved more than this (95th percentile, px of the
            frame) since its keyframe gets the full path.
        max_residual: ... and one whose warped keyframe differs from it by more than this mean
            absolute grey level (0..255) around the subject.
        flow_width: width of the grey frames the flow is computed on, px.
    """

    interval: int = 3
    max_motion_px: float = 24.0
    max_residual: float = 12.0
    flow_width: int = 320

    def __post_init__(self) -> None:
        if self.interval < 1:
            raise ValueError(f"the keyframe interval must be 1 or more, got {self.interval}")
        if self.flow_width < 32:
            raise ValueError(f"flow_width={self.flow_width} is too small (at least 32 px)")


def grey_small(frame: np.ndarray, width: int) -> np.ndarray:
    """``H x W x 3`` uint8 BGR -> grey uint8 ``width`` px wide (aspect kept; never enlarged)."""
    grey = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
    h, w = grey.shape
    if w <= width:
        return grey
    return cv2.resize(grey, (width, max(1, round(h * width / w))), interpolation=cv2.INTER_AREA)


_DIS = threading.local()


def flow_to(grey_t: np.ndarray, grey_k: np.ndarray) -> np.ndarray:
    """Dense flow from frame ``t`` to keyframe ``K`` (same-size grey uint8 frames):
    ``h x w x 2`` float32 ``(dx, dy)`` in px of these frames, so that
    ``grey_t(x) ~ grey_k(x + flow(x))``. DIS, ultrafast preset; one instance per thread."""
    dis = getattr(_DIS, "dis", None)
    if dis is None:
        dis = _DIS.dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST)
    return dis.calc(grey_t, grey_k, None)


def warp_back(image: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """``image`` (``H x W``, any float or uint8) sampled at ``x + flow(x)``, where ``flow`` is
    ``h x w x 2`` at any smaller size (upsampled and scaled to ``H x W``). Bilinear; outside
    the frame the nearest edge pixel."""
    height, width = image.shape[:2]
    fh, fw = flow.shape[:2]
    if (fw, fh) != (width, height):
        flow = cv2.resize(flow, (width, height), interpolation=cv2.INTER_LINEAR)
        flow[..., 0] *= width / fw
        flow[..., 1] *= height / fh
    grid_x, grid_y = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    return cv2.remap(image, grid_x + flow[..., 0], grid_y + flow[..., 1], cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_REPLICATE)


def subject_region(alpha_small: np.ndarray, margin: int) -> np.ndarray:
    """Where the subject is or may move to: ``alpha > 0.02`` grown by ``margin`` px (bool)."""
    region = (alpha_small > 0.02).astype(np.uint8)
    if margin > 0:
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * margin + 1, 2 * margin + 1))
        region = cv2.dilate(region, kernel)
    return region.astype(bool)


@dataclass(frozen=True)
class Carried:
    """A keyframe's matte carried to a frame, and whether it may be used.

    Attributes:
        prior: ``H x W`` float32 in ``[0, 1]``: the keyframe's matte warped to the frame.
        motion_px: 95th percentile of the motion over the subject's region, px of the frame.
        residual: mean absolute grey difference (0..255) between the warped keyframe and the
            frame over that region.
        usable: both within :class:`Reuse`'s limits.
    """

    prior: np.ndarray
    motion_px: float
    residual: float
    usable: bool


def carry(alpha_k: np.ndarray, grey_k: np.ndarray, grey_t: np.ndarray, reuse: Reuse) -> Carried:
    """Carry keyframe ``K``'s matte to frame ``t``.

    Args:
        alpha_k: ``H x W`` float32 in ``[0, 1]``, the keyframe's matte at full size.
        grey_k, grey_t: the two frames as :func:`grey_small` made them (same size).
        reuse: the limits.
    """
    height, width = alpha_k.shape
    flow = flow_to(grey_t, grey_k)
    fh, fw = grey_t.shape
    scale = width / fw
    alpha_small = cv2.resize(alpha_k, (fw, fh), interpolation=cv2.INTER_AREA)
    warped_alpha_small = warp_back(alpha_small, flow)
    region = subject_region(np.maximum(alpha_small, warped_alpha_small), margin=max(2, fw // 40))
    if not region.any():
        return Carried(np.zeros_like(alpha_k), 0.0, 0.0, False)
    magnitude = np.hypot(flow[..., 0], flow[..., 1])[region]
    motion = float(np.percentile(magnitude, 95)) * scale
    warped_grey = warp_back(grey_k, flow)
    residual = float(np.abs(warped_grey.astype(np.int16) - grey_t.astype(np.int16))[region].mean())
    usable = motion <= reuse.max_motion_px and residual <= reuse.max_residual
    prior = warp_back(alpha_k, flow) if usable else np.zeros_like(alpha_k)
    return Carried(np.clip(prior, 0.0, 1.0), motion, residual, usable)


@dataclass
class _Keyframe:
    """A keyframe's grey frame and, once answered, its matte (``None``: no subject)."""

    grey: np.ndarray
    alpha: Future = field(default_factory=Future)


@dataclass(frozen=True)
class FrameTask:
    """One frame as :meth:`KeyframeMatter.plan` scheduled it.

    Attributes:
        index: the frame's index in the video.
        frame: ``H x W x 3`` uint8 BGR.
        keyframe: for a keyframe, its own record (the call fills its matte in); else the
            keyframe whose matte is carried.
        is_key: whether this frame gets the full path.
        prior_only: a keyframe sent again at a resume, only for its matte (not written).
    """

    index: int
    frame: np.ndarray
    keyframe: _Keyframe
    is_key: bool
    prior_only: bool = False


class KeyframeMatter:
    """Callable on :class:`FrameTask` s: keyframes through ``full``, the frames between them
    through ``with_prior`` with the carried matte (see the module docstring).

    Args:
        full: ``MattedFrame = full(frame)``: the whole path (segmentation, refinement).
        with_prior: ``MattedFrame = with_prior(frame, prior)``: the refinement of ``prior``
            (``H x W`` float32 in ``[0, 1]``) only.
        reuse: the interval and the fallback's limits.
    """

    def __init__(self, full: Callable, with_prior: Callable, reuse: Reuse | None = None) -> None:
        self.full, self.with_prior = full, with_prior
        self.reuse = reuse or Reuse()
        self._key: _Keyframe | None = None
        self._lock = threading.Lock()
        #: frames that got the full path although they were not keyframes (fallbacks)
        self.fallbacks = 0
        #: frames that were refined from a carried matte
        self.carried = 0

    def is_keyframe(self, index: int) -> bool:
        """Whether frame ``index`` is a keyframe (fixed indices: multiples of the interval)."""
        return index % self.reuse.interval == 0

    def plan(self, index: int, frame: np.ndarray) -> FrameTask:
        """Schedule frame ``index`` (call in frame order, in one thread)."""
        if self.is_keyframe(index) or self._key is None:
            self._key = _Keyframe(grey_small(frame, self.reuse.flow_width))
            return FrameTask(index, frame, self._key, is_key=True)
        return FrameTask(index, frame, self._key, is_key=False)

    def warm(self, index: int, frame: np.ndarray) -> FrameTask | None:
        """At a resume before frame ``index``: ``frame`` is the last keyframe before it (see
        :meth:`last_keyframe`); schedule it for its matte only. ``None`` when ``index`` is a
        keyframe itself (nothing to carry)."""
        if self.is_keyframe(index):
            return None
        self._key = _Keyframe(grey_small(frame, self.reuse.flow_width))
        return FrameTask(self.last_keyframe(index), frame, self._key, is_key=True, prior_only=True)

    def last_keyframe(self, index: int) -> int:
        """The index of the last keyframe at or before ``index``."""
        return index - index % self.reuse.interval

    def __call__(self, task: FrameTask):
        """The matted frame of ``task`` (a :class:`client.video_matte.MattedFrame`)."""
        if task.is_key:
            try:
                matted = self.full(task.frame)
            except BaseException as exc:
                task.keyframe.alpha.set_exception(exc)
                raise
            task.keyframe.alpha.set_result(None if matted.no_subject else matted.alpha)
            return matted
        try:
            alpha_k = task.keyframe.alpha.result()
        except BaseException:  # the keyframe failed: this frame tries the full path itself
            alpha_k = None
        if alpha_k is not None:
            carried = carry(alpha_k, task.keyframe.grey, grey_small(task.frame, self.reuse.flow_width),
                            self.reuse)
            if carried.usable and (carried.prior >= 0.5).any():
                with self._lock:
                    self.carried += 1
                return self.with_prior(task.frame, carried.prior)
        with self._lock:
            self.fallbacks += 1
        return self.full(task.frame)

"""Temporal stability of video mattes (pure numpy).

Per-frame matting flickers: the same still pixel gets a slightly (or, when segmentation
hesitates, very) different alpha from one frame to the next. :class:`AlphaSmoother`
applies an exponential moving average over time, **only where the picture did not
change**: a pixel whose colour stays the same between two frames should keep its alpha, so
there the new alpha is blended with the previous (smoothed) one; where the picture changed
(real motion) the new alpha is taken as is, so moving edges do not lag or ghost.

Per pixel, with ``d`` the frame-to-frame colour change (the largest over the channels,
0..255, of that pixel alone)::

    still = clip(1 - max(d - noise, 0) / (motion_threshold - noise), 0, 1)
    w     = strength * still
    a_t'  = w * a_{t-1}' + (1 - w) * a_t
    P_t'  = w * P_{t-1}' + (1 - w) * P_t        (P = a * F, premultiplied colour)

and the output colour is ``F_t' = P_t' / a_t'``, so a pixel kept partly visible by the
average also keeps the colour it had (no dark fringes where the new alpha is 0).

``noise`` (2 levels: the compression noise of a still camera) counts as no change at all, so
still pixels get the full ``strength``; from ``motion_threshold`` (8 levels) on, a pixel
moves and takes the new alpha as it is. The gate looks at each pixel alone: a blurred gate
(5 x 5, tried first) spread motion to the still pixels around a moving hand, where 60 % of
the remaining flicker was. A pixel alone misses part of a moving edge, though (an arm over
a wall of nearly its colour changes some pixels by less than the threshold): those kept
their old alpha and left a speckled trail behind the arm. So one more rule: a pixel whose
alpha jumps by more than ``jump`` (0.25) next to motion (a moving pixel within
``reach`` = 7 px) takes the new alpha too; flicker far from motion is still smoothed.

Chosen on the dev clip asl_again (one of three) with ``bench/video_flicker.py``: strength
0.9 brings the flicker on its still pixels (x1000, mean |alpha change|) from 0.33 to 0.10,
against Robust Video Matting's 0.12 at its best ratio; pixels more than 0.2 off the raw
matte (the visible trail) fell from 107 to 15 per frame with the jump rule. The other two
clips are the report (README, Video; docs/video.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np


def still_weight(prev: np.ndarray, cur: np.ndarray, motion_threshold: float,
                 noise: float = 0.0) -> np.ndarray:
    """How still each pixel is between two frames: 1 unchanged (within ``noise``), 0 changed
    by ``motion_threshold`` or more, linear in between.

    Args:
        prev, cur: ``H x W x 3`` uint8 frames.
        motion_threshold: colour change (the largest over the channels, 0..255) that counts
            as motion, ``> noise``.
        noise: colour change that counts as none, ``>= 0``.

    Returns:
        ``H x W`` float32 in ``[0, 1]``.
    """
    levels = np.arange(256, dtype=np.float32)  # every possible change, through a table
    moved = np.maximum(levels - float(noise), 0.0) / (float(motion_threshold) - float(noise))
    table = np.clip(1.0 - moved, 0.0, 1.0).astype(np.float32)
    channels = cv2.split(cv2.absdiff(prev, cur))
    largest = channels[0]
    for channel in channels[1:]:
        largest = cv2.max(largest, channel)
    return table[largest]


@dataclass
class AlphaSmoother:
    """Motion-gated exponential smoothing of alpha (and colour) over a frame sequence.

    Feed frames in order with :meth:`__call__`; call :meth:`reset` at a cut.

    Args:
        strength: weight of the previous frame at still pixels, in ``[0, 1)``; 0 turns
            smoothing off.
        motion_threshold: colour change (0..255, the largest over the channels) from which a
            pixel counts as moving and is not smoothed at all.
        noise: colour change (0..255) that counts as none (still camera noise).
        jump: an alpha change (0..1) that, with motion within ``reach`` px, counts as
            motion even where the pixel's own colour barely changed.
        reach: px around a moving pixel where ``jump`` applies.
    """

    strength: float = 0.9
    motion_threshold: float = 8.0
    noise: float = 2.0
    jump: float = 0.25
    reach: int = 7
    _frame: np.ndarray | None = field(default=None, init=False, repr=False)
    _alpha: np.ndarray | None = field(default=None, init=False, repr=False)
    _premult: np.ndarray | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if not 0.0 <= self.strength < 1.0:
            raise ValueError(f"strength must be in [0, 1), not {self.strength}")
        if not 0.0 <= self.noise < self.motion_threshold:
            raise ValueError(f"need 0 <= noise < motion_threshold, not {self.noise} and "
                             f"{self.motion_threshold}")
        self._kernel = np.ones((2 * self.reach + 1, 2 * self.reach + 1), np.uint8)

    def reset(self) -> None:
        """Forget the previous frame (the next frame is taken as is)."""
        self._frame = self._alpha = self._premult = None

    def state(self) -> dict[str, np.ndarray] | None:
        """What the next frame depends on (``None`` before the first frame): to save with
        a resumable job and give back to :meth:`restore`."""
        if self._frame is None or self._alpha is None or self._premult is None:
            return None
        return {"frame": self._frame, "alpha": self._alpha, "premult": self._premult}

    def restore(self, state: dict[str, np.ndarray] | None) -> None:
        """Continue from a :meth:`state` (``None``: from scratch)."""
        if state is None:
            self.reset()
            return
        self._frame = np.asarray(state["frame"], np.uint8)
        self._alpha = np.asarray(state["alpha"], np.float32)
        self._premult = np.asarray(state["premult"], np.float32)

    def __call__(
        self, frame: np.ndarray, fg: np.ndarray, alpha: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Smooth one frame's matte against the previous frames.

        Args:
            frame: ``H x W x 3`` uint8, the input frame (only used to detect motion).
            fg: ``H x W x 3`` uint8 foreground colours of this frame.
            alpha: ``H x W`` float32 in ``[0, 1]``, this frame's alpha.

        Returns:
            ``(fg', alpha')``: ``H x W x 3`` uint8 and ``H x W`` float32 in ``[0, 1]``.
        """
        alpha = alpha.astype(np.float32, copy=False)
        if self.strength == 0.0:
            return fg, alpha
        premult = fg.astype(np.float32) * alpha[..., None]
        if self._frame is None or self._frame.shape != frame.shape:
            self._frame, self._alpha, self._premult = frame, alpha, premult
            return fg, alpha
        still = still_weight(self._frame, frame, self.motion_threshold, self.noise)
        near_motion = cv2.erode(still, self._kernel) == 0.0  # a moving pixel within reach
        still[near_motion & (np.abs(alpha - self._alpha) > self.jump)] = 0.0
        w = self.strength * still
        out_alpha = alpha + w * (self._alpha - alpha)
        out_premult = self._premult - premult  # in place from here: 640 x 480 x 3 floats
        out_premult *= w[..., None]
        out_premult += premult
        self._frame, self._alpha, self._premult = frame, out_alpha, out_premult
        # Where w == 0 the colour is this frame's; where alpha' vanishes it does not matter
        # (this frame's is kept). Elsewhere F' = P' / alpha', on those pixels only.
        out_fg = fg.copy()
        picked = np.flatnonzero((w > 0.0) & (out_alpha > 1e-4))
        colour = out_premult.reshape(-1, 3)[picked] / out_alpha.reshape(-1)[picked, None]
        out_fg.reshape(-1, 3)[picked] = np.clip(colour + 0.5, 0, 255).astype(np.uint8)
        return out_fg, out_alpha

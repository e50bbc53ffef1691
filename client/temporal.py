"""Temporal stability of video mattes (pure numpy).

Per-frame matting flickers: the same still pixel gets a slightly (or, when segmentation
hesitates, very) different alpha from one frame to the next. :class:`AlphaSmoother`
applies an exponential moving average over time, **only where the picture did not
change**: a pixel whose colour stays the same between two frames should keep its alpha, so
there the new alpha is blended with the previous (smoothed) one; where the picture changed
(real motion) the new alpha is taken as is, so moving edges do not lag or ghost.

Per pixel, with ``d`` the frame-to-frame colour change (the largest over the channels,
0..255, box-blurred over 5 x 5 px)::

    still = clip(1 - max(d - noise, 0) / (motion_threshold - noise), 0, 1)
    w     = strength * still
    a_t'  = w * a_{t-1}' + (1 - w) * a_t
    P_t'  = w * P_{t-1}' + (1 - w) * P_t        (P = a * F, premultiplied colour)

and the output colour is ``F_t' = P_t' / a_t'``, so a pixel kept partly visible by the
average also keeps the colour it had (no dark fringes where the new alpha is 0).

``noise`` (3 levels: sensor and compression noise of a still camera) counts as no change at
all, so still pixels get the full ``strength``; from ``motion_threshold`` (8 levels) on, a
pixel moves and takes the new alpha as it is. Chosen on the dev clip asl_again (one of three)
with ``bench/video_flicker.py``: strength 0.9 brings its flicker on still pixels from 0.35 to
0.12 (x1000, mean |alpha change|), under Robust Video Matting's 0.13, for a drift of 0.0012
on moving pixels; the mean-over-channels gate of before (threshold 12, no dead zone) reached
0.15 at the same strength with 2.5 times the drift. The other two clips are the report
(README, Video).
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
        motion_threshold: colour change (the largest over the channels, 0..255, blurred over
            5 x 5 px) that counts as motion, ``> noise``.
        noise: colour change that counts as none, ``>= 0``.

    Returns:
        ``H x W`` float32 in ``[0, 1]``.
    """
    diff = cv2.absdiff(prev, cur).max(axis=2).astype(np.float32)
    diff = cv2.blur(diff, (5, 5))
    moved = np.maximum(diff - float(noise), 0.0) / (float(motion_threshold) - float(noise))
    return np.clip(1.0 - moved, 0.0, 1.0)


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
    """

    strength: float = 0.9
    motion_threshold: float = 8.0
    noise: float = 3.0
    _frame: np.ndarray | None = field(default=None, init=False, repr=False)
    _alpha: np.ndarray | None = field(default=None, init=False, repr=False)
    _premult: np.ndarray | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if not 0.0 <= self.strength < 1.0:
            raise ValueError(f"strength must be in [0, 1), not {self.strength}")
        if not 0.0 <= self.noise < self.motion_threshold:
            raise ValueError(f"need 0 <= noise < motion_threshold, not {self.noise} and "
                             f"{self.motion_threshold}")

    def reset(self) -> None:
        """Forget the previous frame (the next frame is taken as is)."""
        self._frame = self._alpha = self._premult = None

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
        premult = fg.astype(np.float32) * alpha[..., None]
        if (
            self.strength == 0.0
            or self._frame is None
            or self._frame.shape != frame.shape
        ):
            out_alpha, out_premult = alpha.astype(np.float32), premult
        else:
            w = self.strength * still_weight(self._frame, frame, self.motion_threshold, self.noise)
            out_alpha = w * self._alpha + (1.0 - w) * alpha
            out_premult = w[..., None] * self._premult + (1.0 - w[..., None]) * premult
        self._frame, self._alpha, self._premult = frame, out_alpha, out_premult
        safe = np.maximum(out_alpha, 1e-4)[..., None]
        out_fg = np.where(
            out_alpha[..., None] > 1e-4, out_premult / safe, fg.astype(np.float32)
        )
        return np.clip(out_fg + 0.5, 0, 255).astype(np.uint8), out_alpha

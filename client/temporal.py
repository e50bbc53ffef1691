"""Temporal stability of video mattes (pure numpy).

Per-frame matting flickers: the same still pixel gets a slightly (or, when segmentation
hesitates, very) different alpha from one frame to the next. :class:`AlphaSmoother`
applies an exponential moving average over time, **only where the picture did not
change**: a pixel whose colour stays the same between two frames should keep its alpha, so
there the new alpha is blended with the previous (smoothed) one; where the picture changed
(real motion) the new alpha is taken as is, so moving edges do not lag or ghost.

Per pixel, with ``d`` the frame-to-frame colour change (mean over channels, 0..255,
box-blurred over 5 x 5 px against sensor and compression noise)::

    still = clip(1 - d / motion_threshold, 0, 1)
    w     = strength * still
    a_t'  = w * a_{t-1}' + (1 - w) * a_t
    P_t'  = w * P_{t-1}' + (1 - w) * P_t        (P = a * F, premultiplied colour)

and the output colour is ``F_t' = P_t' / a_t'``, so a pixel kept partly visible by the
average also keeps the colour it had (no dark fringes where the new alpha is 0).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np


def still_weight(prev: np.ndarray, cur: np.ndarray, motion_threshold: float) -> np.ndarray:
    """How still each pixel is between two frames: 1 unchanged, 0 changed by
    ``motion_threshold`` or more.

    Args:
        prev, cur: ``H x W x 3`` uint8 frames.
        motion_threshold: colour change (mean over channels, 0..255) that counts as motion.

    Returns:
        ``H x W`` float32 in ``[0, 1]``.
    """
    diff = cv2.absdiff(prev, cur).astype(np.float32).mean(axis=2)
    diff = cv2.blur(diff, (5, 5))
    return np.clip(1.0 - diff / float(motion_threshold), 0.0, 1.0)


@dataclass
class AlphaSmoother:
    """Motion-gated exponential smoothing of alpha (and colour) over a frame sequence.

    Feed frames in order with :meth:`__call__`; call :meth:`reset` at a cut.

    Args:
        strength: weight of the previous frame at perfectly still pixels, in ``[0, 1)``;
            0 turns smoothing off, 0.5 halves frame-to-frame alpha jitter on still pixels.
        motion_threshold: colour change (0..255, mean over channels) from which a pixel
            counts as moving and is not smoothed at all.
    """

    strength: float = 0.5
    motion_threshold: float = 12.0
    _frame: np.ndarray | None = field(default=None, init=False, repr=False)
    _alpha: np.ndarray | None = field(default=None, init=False, repr=False)
    _premult: np.ndarray | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if not 0.0 <= self.strength < 1.0:
            raise ValueError(f"strength must be in [0, 1), not {self.strength}")
        if self.motion_threshold <= 0:
            raise ValueError(f"motion_threshold must be > 0, not {self.motion_threshold}")

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
            w = self.strength * still_weight(self._frame, frame, self.motion_threshold)
            out_alpha = w * self._alpha + (1.0 - w) * alpha
            out_premult = w[..., None] * self._premult + (1.0 - w[..., None]) * premult
        self._frame, self._alpha, self._premult = frame, out_alpha, out_premult
        safe = np.maximum(out_alpha, 1e-4)[..., None]
        out_fg = np.where(
            out_alpha[..., None] > 1e-4, out_premult / safe, fg.astype(np.float32)
        )
        return np.clip(out_fg + 0.5, 0, 255).astype(np.uint8), out_alpha

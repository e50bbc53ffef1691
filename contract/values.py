"""Value types shared by the services and the clients, and their limits. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

#: Largest ``blur_radius`` (Gaussian sigma, px) accepted.
MAX_BLUR_RADIUS = 1000.0
#: Largest crop margin per side: 500 px or 50 % of the subject (remove.bg's limits).
MAX_MARGIN_PX = 500
MAX_MARGIN_PERCENT = 50.0
#: Smallest size cap on the long side, px.
MIN_SIZE = 16
#: Range of ``model_size``, the people model's working size (shorter side, px).
MIN_MODEL_SIZE = 128
MAX_MODEL_SIZE = 1024

#: ``(r, g, b, a)``, each 0..255.
RGBA = tuple[int, int, int, int]


class Box(NamedTuple):
    """An axis-aligned box in pixels: ``(left, top, width, height)``, the one convention of
    Backdrop (headers ``X-Foreground-*`` and ``X-Subject-Box``, crops, subjects). An empty
    box is all zeros."""

    left: int
    top: int
    width: int
    height: int

    @classmethod
    def of(cls, region: np.ndarray) -> Box:
        """The bounding box of the true pixels of ``region`` (``H x W`` bool); zeros when none."""
        rows = np.flatnonzero(region.any(axis=1))
        if rows.size == 0:
            return cls(0, 0, 0, 0)
        cols = np.flatnonzero(region.any(axis=0))
        top, left = int(rows[0]), int(cols[0])
        return cls(left, top, int(cols[-1]) - left + 1, int(rows[-1]) - top + 1)

    @property
    def empty(self) -> bool:
        return self.width <= 0 or self.height <= 0

    @property
    def right(self) -> int:
        """One past the last column."""
        return self.left + self.width

    @property
    def bottom(self) -> int:
        """One past the last row."""
        return self.top + self.height

    def within(self, frame: Box) -> Box:
        """This box in the coordinates of ``frame``, clipped to it; zeros when outside."""
        left, top = max(self.left, frame.left), max(self.top, frame.top)
        right, bottom = min(self.right, frame.right), min(self.bottom, frame.bottom)
        if right <= left or bottom <= top:
            return Box(0, 0, 0, 0)
        return Box(left - frame.left, top - frame.top, right - left, bottom - top)

    def text(self) -> str:
        """``"left,top,width,height"`` (the ``X-Subject-Box`` header)."""
        return ",".join(str(v) for v in self)


@dataclass(frozen=True)
class Margin:
    """One side's crop margin: ``value`` px, or ``value`` % of the subject's size."""

    value: float
    percent: bool = False

    def pixels(self, subject_extent: int) -> int:
        """The margin in px for a subject ``subject_extent`` px wide (or high)."""
        if self.percent:
            return round(subject_extent * self.value / 100.0)
        return round(self.value)

    def text(self) -> str:
        """``30px`` or ``10%``."""
        return f"{self.value:g}{'%' if self.percent else 'px'}"


@dataclass(frozen=True)
class CropMargin:
    """Margins of the four sides (CSS order: top, right, bottom, left)."""

    top: Margin = Margin(0)
    right: Margin = Margin(0)
    bottom: Margin = Margin(0)
    left: Margin = Margin(0)

    def text(self) -> str:
        """The form value (``"10px 5% 10px 5%"``)."""
        return " ".join(m.text() for m in (self.top, self.right, self.bottom, self.left))


@dataclass(frozen=True)
class SizeLimit:
    """A cap on the result's size; ``None`` fields do not limit. Never upscales."""

    long_side: int | None = None
    max_pixels: int | None = None

    @property
    def is_full(self) -> bool:
        return self.long_side is None and self.max_pixels is None

    def text(self) -> str:
        """The ``size`` form value: ``full`` or the long side in px (a pixel cap has none)."""
        if self.max_pixels is not None:
            raise ValueError("a pixel cap has no size form value")
        return "full" if self.long_side is None else str(self.long_side)

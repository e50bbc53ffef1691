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
#: Smallest and largest size cap on the long side, px (a cap above the image's size does not
#: scale it; a larger one would only be a typo).
MIN_SIZE = 16
MAX_SIZE = 100_000
#: ``scale``: the subject's size relative to the result, percent (remove.bg's range).
MIN_SCALE_PERCENT = 10.0
MAX_SCALE_PERCENT = 100.0
#: Largest pixel coordinate of a ``roi`` corner (coordinates past the image are clipped).
MAX_ROI_PX = 100_000
#: Smallest side of a ``roi`` in the working image, px: a region the models can search.
MIN_ROI_PX = 16
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


class Position(NamedTuple):
    """Where the subject goes in its frame: percentages of the free space to the left and
    above it (0: against the left/top edge, 50: centred, 100: against the right/bottom)."""

    horizontal: float
    vertical: float


#: ``position=center``.
CENTER = Position(50.0, 50.0)


@dataclass(frozen=True)
class Roi:
    """A region of interest: its corners ``(x1, y1)`` and ``(x2, y2)``, each in px of the
    uploaded image or in % of its width (x) or height (y); remove.bg's ``roi``."""

    x1: Margin
    y1: Margin
    x2: Margin
    y2: Margin

    def box(self, image_size: tuple[int, int], working_size: tuple[int, int]) -> Box:
        """The region in the working image's pixels, clipped to it (an empty box when it lies
        outside). Pixel coordinates are the uploaded image's and scale with it.

        Args:
            image_size: ``(width, height)`` of the uploaded image.
            working_size: ``(width, height)`` of the image it was scaled to.
        """
        (iw, ih), (ww, wh) = image_size, working_size

        def at(coord: Margin, image_extent: int, working_extent: int) -> int:
            if coord.percent:
                return round(working_extent * coord.value / 100.0)
            return round(coord.value * working_extent / max(image_extent, 1))

        x1, x2 = (min(ww, at(c, iw, ww)) for c in (self.x1, self.x2))
        y1, y2 = (min(wh, at(c, ih, wh)) for c in (self.y1, self.y2))
        if x2 <= x1 or y2 <= y1:
            return Box(0, 0, 0, 0)
        return Box(x1, y1, x2 - x1, y2 - y1)

    @property
    def whole(self) -> bool:
        """Whether the region is the whole image (``0% 0% 100% 100%``, remove.bg's default)."""
        return (self.x1.value == 0 and self.y1.value == 0 and self.x2 == Margin(100.0, percent=True)
                and self.y2 == Margin(100.0, percent=True))

    def text(self) -> str:
        """The form value (``"10px 20px 50% 100%"``)."""
        return " ".join(c.text() for c in (self.x1, self.y1, self.x2, self.y2))


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

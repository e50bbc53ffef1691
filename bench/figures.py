"""What the figure-making benches share: labelled tiles for contact sheets."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw


def label(tile: np.ndarray, text: str) -> np.ndarray:
    """``tile`` (``H x W x 3`` uint8) with ``text`` written top left, white on black."""
    img = Image.fromarray(tile)
    draw = ImageDraw.Draw(img)
    draw.rectangle((0, 0, 6 * len(text) + 6, 13), fill=(0, 0, 0))
    draw.text((3, 1), text, fill=(255, 255, 255))
    return np.asarray(img)

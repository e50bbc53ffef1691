"""sRGB <-> linear light, and float <-> uint8. Pure numpy.

Blending is done in linear light (sRGB -> linear -> blend -> sRGB), in float; the lookup
tables make the uint8 conversions exact and fast.
"""

from __future__ import annotations

import numpy as np


def srgb_to_linear(x: np.ndarray) -> np.ndarray:
    """sRGB-encoded values in ``[0, 1]`` -> linear light in ``[0, 1]`` (float32)."""
    x = np.asarray(x, dtype=np.float32)
    return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4).astype(np.float32)


def linear_to_srgb(x: np.ndarray) -> np.ndarray:
    """Linear light in ``[0, 1]`` -> sRGB-encoded values in ``[0, 1]`` (float32)."""
    x = np.clip(np.asarray(x, dtype=np.float32), 0.0, 1.0)
    return np.where(
        x <= 0.0031308, x * 12.92, 1.055 * np.power(x, 1.0 / 2.4) - 0.055
    ).astype(np.float32)


#: uint8 sRGB -> float32 linear, 256 entries.
_U8_TO_LINEAR = srgb_to_linear(np.arange(256, dtype=np.float32) / 255.0)
#: linear quantised to 16 bits -> uint8 sRGB (fine enough near black, where sRGB is steep).
_LINEAR16_TO_U8 = np.round(
    linear_to_srgb(np.arange(65536, dtype=np.float32) / 65535.0) * 255.0
).astype(np.uint8)


def u8_to_linear(pixels: np.ndarray) -> np.ndarray:
    """``uint8`` sRGB (any shape) -> ``float32`` linear light in ``[0, 1]``, same shape."""
    return _U8_TO_LINEAR[pixels]


def linear_to_u8(linear: np.ndarray) -> np.ndarray:
    """``float`` linear light (any shape, clipped to ``[0, 1]``) -> ``uint8`` sRGB."""
    idx = (np.clip(linear, 0.0, 1.0) * 65535.0 + 0.5).astype(np.uint16)
    return _LINEAR16_TO_U8[idx]


def to_u8(x: np.ndarray) -> np.ndarray:
    """``float`` in ``[0, 1]`` (any shape) -> ``uint8`` by rounding, clipped."""
    return (np.clip(x, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)

"""Pure-numpy pre/post-processing of the official FBA demo (``pred``).

Images are ``H×W×C`` numpy arrays (channels last); network tensors are built from them in
:mod:`.predict`.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
from scipy.ndimage import distance_transform_edt

#: ImageNet statistics (RGB) used by the official normalisation, applied in float32.
IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)

#: Length scale of the trimap "click" Gaussians: σ = 0.02 L, 0.08 L, 0.16 L.
TRIMAP_L: float = 320.0
TRIMAP_SIGMA_FACTORS: tuple[float, float, float] = (0.02, 0.08, 0.16)

#: The network input size must be a multiple of this.
SIZE_MULTIPLE: int = 8


def normalise_image(image: np.ndarray) -> np.ndarray:
    """ImageNet-normalise an RGB image, in float32.

    Args:
        image: ``H×W×3`` float RGB in [0, 1] (any float dtype; cast to float32 first, as the
            official code normalises the float32 network tensor).

    Returns:
        ``H×W×3`` float32 ``(image - mean) / std`` with the float32 ImageNet constants.
    """
    img = np.asarray(image, dtype=np.float32)
    mean = np.asarray(IMAGENET_MEAN, dtype=np.float32)
    std = np.asarray(IMAGENET_STD, dtype=np.float32)
    return (img - mean) / std


def wrap_to_uint8(values: np.ndarray) -> np.ndarray:
    """Convert floats to uint8 like numpy's ``astype(np.uint8)`` does on x86-64.

    Truncate toward zero, then wrap modulo 256 (no clipping): -5.1 → 251, -0.3 → 0, 256.7 → 0,
    300 → 44. Numpy leaves out-of-range float→uint8 casts platform-defined, so this is the
    portable spelling of the official (x86-64) behaviour.
    """
    return (np.trunc(values).astype(np.int64) % 256).astype(np.uint8)


def _distance_to_zero(mask: np.ndarray) -> np.ndarray:
    """Exact Euclidean distance of every pixel to the nearest zero pixel of a uint8 ``mask``.

    The official code uses OpenCV's ``distanceTransform(DIST_L2, DIST_MASK_PRECISE)``. That
    accumulates float rounding noise (squared distances off by ~1e-4) and, with OpenCV 5.0,
    even changes by ~1 ulp from call to call on the same input, which made ``predict``
    non-deterministic (~2e-6 on the outputs). SciPy's EDT is exact and deterministic; after the
    Gaussians it agrees with the official tensors to < 2e-7 (tested on the reference cases).

    Returns ``H×W`` float32 (zero pixels get 0); ``inf`` everywhere if ``mask`` has no zero
    pixel (OpenCV returns ~1.8e19 there; both give an all-zero Gaussian channel).
    """
    nonzero = mask != 0
    if nonzero.all():
        return np.full(mask.shape, np.inf, dtype=np.float32)
    return distance_transform_edt(nonzero).astype(np.float32)


def trimap_transform(trimap: np.ndarray, length: float = TRIMAP_L) -> np.ndarray:
    """Encode a two-channel trimap as the 6 distance-transform Gaussian channels of FBA.

    For k = 0 (BG) then k = 1 (FG): ``m = uint8_wrap((1 - trimap[..., k]) * 255)``, ``d`` = exact
    Euclidean distance to the nearest zero of ``m`` (i.e. to the nearest pixel of class k) as
    float32, then ``exp(-d² / (2σ²))`` for σ = 0.02 L, 0.08 L, 0.16 L, in float32.

    Args:
        trimap: ``H×W×2`` float (channel 0 = definite BG, 1 = definite FG). Non-binary values
            (the official Lanczos resize produces values outside [0, 1]) go through the uint8
            wrap quirk, e.g. t = 1.02 → m = 251 ("not FG") and t = -0.004 → m = 0 ("is FG").
        length: L, in pixels of ``trimap``; a constant (320), not tied to the image size.

    Returns:
        ``6×H×W`` float32 in [0, 1], channels [BG σ6.4, BG σ25.6, BG σ51.2, FG σ6.4, FG σ25.6,
        FG σ51.2].
    """
    trimap = np.asarray(trimap, dtype=np.float64)
    if trimap.ndim != 3 or trimap.shape[2] != 2:
        raise ValueError(f"trimap must be H×W×2, got shape {trimap.shape}")
    channels = []
    for k in range(2):
        # Official quirk: float → uint8 with wrap-around (see wrap_to_uint8), not clipping.
        mask = wrap_to_uint8((1 - trimap[:, :, k]) * 255)
        dist = _distance_to_zero(mask)
        with np.errstate(over="ignore"):
            dist_sq = dist * dist  # float32
        for factor in TRIMAP_SIGMA_FACTORS:
            two_sigma_sq = 2 * (factor * length) ** 2  # Python float, used in float32 below
            channels.append(np.exp(-dist_sq / two_sigma_sq).astype(np.float32, copy=False))
    return np.stack(channels, axis=0)


def network_size(height: int, width: int) -> tuple[int, int]:
    """The official size rule (scale 1.0): round both sides *up* to a multiple of 8."""
    return (
        int(math.ceil(height / SIZE_MULTIPLE) * SIZE_MULTIPLE),
        int(math.ceil(width / SIZE_MULTIPLE) * SIZE_MULTIPLE),
    )


def scale_input(array: np.ndarray) -> np.ndarray:
    """Resize (stretch, not pad) to :func:`network_size` with Lanczos-4, in float64.

    Args:
        array: ``H×W×C`` array (image or two-channel trimap), cast to float64.

    Returns:
        ``H₁×W₁×C`` float64. An exact copy when H and W are already multiples of 8; otherwise
        Lanczos ringing can leave [0, 1] (a trimap becomes non-binary, e.g. -0.25…1.21), which
        the official demo feeds to the network as is.
    """
    arr = np.ascontiguousarray(array, dtype=np.float64)
    h, w = arr.shape[:2]
    h1, w1 = network_size(h, w)
    if (h1, w1) == (h, w):
        return arr.copy()
    out = cv2.resize(arr, (w1, h1), interpolation=cv2.INTER_LANCZOS4)
    return out.reshape(h1, w1, *arr.shape[2:])


def resize_back(output: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize the network output back to the input size, as the official demo does.

    Official quirk: the demo means Lanczos but passes the flag positionally into OpenCV's
    ``dst`` slot, so the resize actually runs with the default ``INTER_LINEAR`` (bilinear,
    half-pixel centres). We reproduce that (bit-identical to the demo). Bilinear keeps values
    in [0, 1]; there is no re-clamp.

    Args:
        output: ``H₁×W₁×C`` float32 (C = 7 for the network output).
        height, width: target size.

    Returns:
        ``height×width×C`` float32; an exact copy if the size is unchanged.
    """
    arr = np.ascontiguousarray(output, dtype=np.float32)
    if arr.shape[:2] == (height, width):
        return arr.copy()
    out = cv2.resize(arr, (width, height), interpolation=cv2.INTER_LINEAR)
    return out.reshape(height, width, *arr.shape[2:])

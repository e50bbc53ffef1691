"""End-to-end FBA prediction on numpy arrays, reproducing the official demo's ``pred``.

With default options :func:`predict` computes exactly what the official demo computes (spec
§6): Lanczos stretch to a multiple of 8, ImageNet normalisation, trimap Gaussians with the
uint8 wrap quirk, the network, bilinear resize back and the known-region handling. Two options
(off by default) trade accuracy for speed/memory: ``max_side`` (working-resolution cap) and
``crop_to_unknown`` (only process the bounding box of the unknown band plus a margin).
"""

from __future__ import annotations

import contextlib
import logging
import math
from typing import NamedTuple

import cv2
import numpy as np
import torch

from .model import FBAMatting
from .transforms import (
    SIZE_MULTIPLE,
    normalise_image,
    resize_back,
    scale_input,
    trimap_transform,
)

logger = logging.getLogger(__name__)

#: Default context margin (pixels of the input image) kept around the unknown band's bounding
#: box by ``crop_to_unknown``. FBA has global context: every GroupNorm normalises with statistics
#: of the whole feature map and the pyramid pooling averages all of layer4, so no finite margin
#: reproduces the full run exactly (only a crop that is the whole image does). Measured with
#: RANDOM weights (bench/fba_speed.py, blob scene, 1024 px): the mean change of the raw alpha
#: logit in the unknown band is ~88 % / 72 % / 45 % of that logit's spread for margins
#: 64 / 128 / 256 px (cap512: 83 %). How large it is with the trained FBA.pth is unmeasured;
#: treat cropping as an approximation.
DEFAULT_CROP_MARGIN: int = 128


class Box(NamedTuple):
    """A half-open pixel box ``[top:bottom, left:right]``."""

    top: int
    left: int
    bottom: int
    right: int

    @property
    def slices(self) -> tuple[slice, slice]:
        """``(rows, cols)`` slices for numpy indexing."""
        return slice(self.top, self.bottom), slice(self.left, self.right)


def _validate(image: np.ndarray, trimap: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    image = np.asarray(image)
    trimap = np.asarray(trimap)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image must be H×W×3 RGB, got shape {image.shape}")
    if image.dtype.kind != "f":
        raise ValueError(f"image must be float RGB in [0, 1], got dtype {image.dtype} (divide uint8 by 255)")
    if trimap.ndim != 3 or trimap.shape[2] != 2:
        raise ValueError(f"trimap must be H×W×2 (BG, FG), got shape {trimap.shape}")
    if trimap.shape[:2] != image.shape[:2]:
        raise ValueError(f"image {image.shape[:2]} and trimap {trimap.shape[:2]} sizes differ")
    if min(image.shape[:2]) < 1:
        raise ValueError(f"empty image {image.shape}")
    return image.astype(np.float64, copy=False), trimap.astype(np.float64, copy=False)


def known_masks(trimap: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(bg, fg)`` boolean H×W masks of the definite regions (exactly 1); FG wins over BG."""
    fg = trimap[:, :, 1] == 1
    bg = (trimap[:, :, 0] == 1) & ~fg
    return bg, fg


def _to_tensor(array: np.ndarray, device: torch.device) -> torch.Tensor:
    """``H×W×C`` array → ``(1, C, H, W)`` float32 tensor on ``device``."""
    chw = np.ascontiguousarray(array.transpose(2, 0, 1)[None], dtype=np.float32)
    return torch.from_numpy(chw).to(device)


def _network_pass(model: FBAMatting, image: np.ndarray, trimap: np.ndarray, fp16: bool) -> np.ndarray:
    """Spec §6.2–6.5.1: official pre-processing, forward and resize back.

    Returns ``H×W×7`` float32 in [0, 1] (α, F, B) at the size of ``image``.
    """
    h, w = trimap.shape[:2]
    image_s = scale_input(image)  # float64, Lanczos stretch to a multiple of 8
    trimap_s = scale_input(trimap)  # may overshoot [0, 1]; used as is (official)
    device = next(model.parameters()).device
    image_t = _to_tensor(image_s, device)
    trimap_t = _to_tensor(trimap_s, device)
    image_n_t = _to_tensor(normalise_image(image_s), device)
    transformed_t = torch.from_numpy(trimap_transform(trimap_s)[None]).to(device)
    if fp16:
        autocast: contextlib.AbstractContextManager[object] = torch.autocast("cuda", dtype=torch.float16)
    else:
        autocast = contextlib.nullcontext()
    with torch.inference_mode(), autocast:
        out = model(image_t, trimap_t, image_n_t, transformed_t)
    out_np = out[0].float().permute(1, 2, 0).cpu().numpy()
    return resize_back(out_np, h, w)


def _apply_known(
    out: np.ndarray, image: np.ndarray, trimap: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Spec §6.5.2–6.5.5: split the 7 channels and impose the known regions (float32)."""
    alpha = np.array(out[:, :, 0], dtype=np.float32)
    fg = np.array(out[:, :, 1:4], dtype=np.float32)
    bg = np.array(out[:, :, 4:7], dtype=np.float32)
    # Uses the *original* trimap; BG first, then FG, so FG wins where both are set.
    alpha[trimap[:, :, 0] == 1] = 0
    alpha[trimap[:, :, 1] == 1] = 1
    # Official: driven by the updated α, so this also covers unknown pixels whose fused α
    # clipped to exactly 0 or 1.
    is_fg = alpha == 1
    is_bg = alpha == 0
    fg[is_fg] = image[is_fg]
    bg[is_bg] = image[is_bg]
    return fg, bg, alpha


def capped_size(height: int, width: int, max_side: int) -> tuple[int, int]:
    """Working size for ``max_side``: aspect kept, sides multiples of 8, long side ≤ max_side."""
    limit = max(SIZE_MULTIPLE, max_side // SIZE_MULTIPLE * SIZE_MULTIPLE)
    scale = max_side / max(height, width)

    def side(n: int) -> int:
        return min(limit, max(SIZE_MULTIPLE, round(n * scale / SIZE_MULTIPLE) * SIZE_MULTIPLE))

    return side(height), side(width)


def _downscale_trimap(trimap: np.ndarray, height: int, width: int) -> np.ndarray:
    """Area-downscale a trimap conservatively: a pixel stays known only if all of it is."""
    bg, fg = known_masks(trimap)
    stacked = np.stack((bg, fg), axis=-1).astype(np.float64)
    small = cv2.resize(stacked, (width, height), interpolation=cv2.INTER_AREA)
    return (small >= 1 - 1e-6).astype(np.float64)


def _infer(
    model: FBAMatting,
    image: np.ndarray,
    trimap: np.ndarray,
    max_side: int | None,
    fp16: bool,
) -> np.ndarray:
    """``H×W×7`` network output at the size of ``image``, honouring ``max_side``."""
    h, w = trimap.shape[:2]
    if max_side is None or max(h, w) <= max_side:
        return _network_pass(model, image, trimap, fp16)
    h_lo, w_lo = capped_size(h, w, max_side)
    logger.debug("max_side=%d: working at %dx%d instead of %dx%d", max_side, h_lo, w_lo, h, w)
    image_lo = cv2.resize(np.ascontiguousarray(image), (w_lo, h_lo), interpolation=cv2.INTER_AREA)
    trimap_lo = _downscale_trimap(trimap, h_lo, w_lo)
    out_lo = _network_pass(model, image_lo, trimap_lo, fp16)
    out = cv2.resize(out_lo, (w, h), interpolation=cv2.INTER_LINEAR)
    return out.reshape(h, w, 7)


def unknown_box(trimap: np.ndarray, margin: int) -> Box | None:
    """Bounding box of the unknown pixels grown by ``margin``, aligned to the 8-pixel grid.

    The box is clipped to the image; its corners are rounded outwards to multiples of 8 so the
    crop shares the full image's stride-8 grid (and needs no Lanczos stretch unless it touches
    an image border that is not on the grid). Returns None if there is no unknown pixel.
    """
    bg, fg = known_masks(trimap)
    unknown = ~(bg | fg)
    rows = np.flatnonzero(unknown.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(unknown.any(axis=0))
    h, w = unknown.shape
    m = SIZE_MULTIPLE
    top = max(0, (rows[0] - margin) // m * m)
    left = max(0, (cols[0] - margin) // m * m)
    bottom = min(h, math.ceil((rows[-1] + 1 + margin) / m) * m)
    right = min(w, math.ceil((cols[-1] + 1 + margin) / m) * m)
    return Box(int(top), int(left), int(bottom), int(right))


def predict(
    model: FBAMatting,
    image: np.ndarray,
    trimap: np.ndarray,
    *,
    max_side: int | None = None,
    crop_to_unknown: bool = False,
    crop_margin: int = DEFAULT_CROP_MARGIN,
    fp16: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Estimate foreground, background and alpha, as the official demo's ``pred``.

    Args:
        model: an :class:`FBAMatting` (see :func:`.build.build_model`); it runs on
            its own device under ``torch.inference_mode``.
        image: ``H×W×3`` float RGB in [0, 1] (float64 in the official demo).
        trimap: ``H×W×2`` float; channel 0 = 1 where definite background, channel 1 = 1 where
            definite foreground, both 0 where unknown. Only values exactly 1 count as known.
        max_side: if set and the long side (of the processed region) exceeds it, run the
            network on an area-downscaled copy whose long side is at most ``max_side``
            (rounded to multiples of 8), upscale the result bilinearly and re-apply the known
            regions at full resolution. Off (None) by default.
        crop_to_unknown: only process the bounding box of the unknown pixels plus
            ``crop_margin`` (aligned to the 8-px grid); outside it every pixel is known, so α
            comes from the trimap and fg/bg are the image. If there is no unknown pixel the
            network does not run at all. Off by default.
        crop_margin: context margin in input pixels for ``crop_to_unknown``.
        fp16: CUDA only: run the network under float16 autocast. Its accuracy has not been
            measured (no GPU was available when this was written).

    Returns:
        ``(fg, bg, alpha)`` float32 arrays of the input size: ``H×W×3`` RGB in [0, 1],
        ``H×W×3`` RGB in [0, 1], ``H×W`` in [0, 1]. α is 0/1 on the definite regions; fg equals
        the image wherever α == 1 and bg wherever α == 0 (as the official demo). With the
        defaults the result is the official demo's.
    """
    image, trimap = _validate(image, trimap)
    if max_side is not None and max_side < SIZE_MULTIPLE:
        raise ValueError(f"max_side must be >= {SIZE_MULTIPLE}, got {max_side}")
    if crop_margin < 0:
        raise ValueError(f"crop_margin must be >= 0, got {crop_margin}")
    if fp16 and next(model.parameters()).device.type != "cuda":
        raise ValueError("fp16 inference is only supported on CUDA devices")
    h, w = trimap.shape[:2]
    if not crop_to_unknown:
        out = _infer(model, image, trimap, max_side, fp16)
        return _apply_known(out, image, trimap)

    box = unknown_box(trimap, crop_margin)
    # Outside the box every pixel is known: α from the trimap, fg = bg = image (fg/bg only
    # matter where α is 1 / 0 respectively; the official full run would put the network's
    # estimates in the irrelevant places).
    out = np.empty((h, w, 7), dtype=np.float32)
    out[:, :, 0] = known_masks(trimap)[1]
    out[:, :, 1:4] = image
    out[:, :, 4:7] = image
    if box is None:
        logger.debug("crop_to_unknown: no unknown pixel, network skipped")
    else:
        rows, cols = box.slices
        logger.debug("crop_to_unknown: processing %s of %dx%d", box, h, w)
        out[rows, cols] = _infer(model, image[rows, cols], trimap[rows, cols], max_side, fp16)
    return _apply_known(out, image, trimap)

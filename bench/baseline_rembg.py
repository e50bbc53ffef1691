"""The baseline users reach for: rembg's recipe, re-implemented from its documented facts.

* :func:`u2netp_mask`: the U^2-Net-p saliency mask as rembg computes it (input resized to
  320x320 with Lanczos, divided by its maximum, ImageNet-normalised; the first output
  min-max normalised, quantised to 8 bits, resized back with Lanczos).
* :func:`rembg_alpha_matting`: rembg's "alpha matting" option on that mask: trimap
  foreground where mask > 240, background where mask < 10, both eroded by a 10x10 square,
  then pymatting's closed-form alpha (default parameters) and ML foreground estimation;
  rembg stores ``clip(alpha * 255)`` truncated to uint8 in its RGBA cutout, so the alpha
  returned here has the same 8-bit steps; on pymatting's ``ValueError`` (e.g. no
  foreground) rembg falls back to the plain mask, so do we.
* :func:`closed_form_alpha`: pymatting's closed-form matting on a given trimap, the
  reference for the matting stage alone.

Sources of these facts: rembg's documented ``remove()`` defaults (``alpha_matting=False``,
thresholds 240 / 10, ``alpha_matting_erode_size=10``, ``post_process_mask=False``) and its
public U^2-Net-p session (320 x 320 input, ImageNet statistics). Not rembg's code.

Arrays: images ``H x W x 3`` uint8 RGB; masks and alphas ``H x W`` float64 in [0, 1].
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage

MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


@lru_cache(maxsize=2)
def _session(model_path: str):
    import onnxruntime as ort

    return ort.InferenceSession(model_path, providers=["CPUExecutionProvider"])


def u2netp_mask(rgb: np.ndarray, model_path: Path) -> np.ndarray:
    """rembg's U^2-Net-p mask of ``rgb`` (``H x W`` float in [0, 1], 8-bit steps)."""
    session = _session(str(model_path))
    small = np.asarray(Image.fromarray(rgb).resize((320, 320), Image.LANCZOS), dtype=np.float64)
    small = small / max(float(small.max()), 1e-8)
    x = (small - np.array(MEAN)) / np.array(STD)
    x = x.transpose(2, 0, 1)[None].astype(np.float32)
    out = session.run(None, {session.get_inputs()[0].name: x})[0][0, 0]
    out = (out - out.min()) / max(float(out.max() - out.min()), 1e-8)
    mask = Image.fromarray((out * 255).astype(np.uint8), mode="L")
    mask = mask.resize((rgb.shape[1], rgb.shape[0]), Image.LANCZOS)
    return np.asarray(mask, dtype=np.float64) / 255.0


def rembg_trimap(mask: np.ndarray, fg: int = 240, bg: int = 10, erode: int = 10) -> np.ndarray:
    """rembg's trimap from an 8-bit mask: ``H x W`` float, 1 fg, 0 bg, 0.5 unknown."""
    m = np.round(mask * 255)
    structure = np.ones((erode, erode), dtype=bool) if erode > 0 else None
    is_fg = m > fg
    is_bg = m < bg
    if structure is not None:
        is_fg = ndimage.binary_erosion(is_fg, structure=structure, border_value=0)
        # the background touches the frame: the frame does not erode it
        is_bg = ndimage.binary_erosion(is_bg, structure=structure, border_value=1)
    trimap = np.full(mask.shape, 0.5)
    trimap[is_fg] = 1.0
    trimap[is_bg] = 0.0
    return trimap


def closed_form_alpha(rgb: np.ndarray, trimap: np.ndarray) -> np.ndarray:
    """pymatting's closed-form alpha on ``trimap`` (float: 0 bg, 1 fg, else unknown)."""
    from pymatting import estimate_alpha_cf

    return np.clip(estimate_alpha_cf(rgb.astype(np.float64) / 255.0, trimap), 0.0, 1.0)


def to_8bit(alpha: np.ndarray, rounding: bool = True) -> np.ndarray:
    """``alpha`` (float, any range) stored in 8 bits and read back: ``H x W`` float64 in
    [0, 1] with steps of 1/255; ``rounding=False`` truncates (NumPy's ``astype(uint8)``)."""
    scaled = np.clip(alpha * 255.0, 0.0, 255.0)
    return (np.round(scaled) if rounding else np.floor(scaled)) / 255.0


def rembg_alpha_matting(rgb: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """rembg's alpha matting result (alpha only, 8-bit steps, truncated) for ``mask``."""
    try:
        return to_8bit(closed_form_alpha(rgb, rembg_trimap(mask)), rounding=False)
    except ValueError:
        return mask

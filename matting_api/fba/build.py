"""Model construction, device selection and CPU thread settings."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping

import torch

from .checkpoint import load_into
from .model import FBAMatting

logger = logging.getLogger(__name__)


def select_device(pref: str = "auto") -> torch.device:
    """Pick the inference device.

    Args:
        pref: ``"auto"`` (CUDA if available, else CPU), ``"cpu"``, ``"cuda"`` or any string
            ``torch.device`` accepts (``"cuda:1"``).

    Raises:
        ValueError: a CUDA device was asked for but CUDA is not available.
    """
    if pref == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(pref)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {pref!r} requested but CUDA is not available")
    return device


def set_num_threads(num_threads: int) -> None:
    """Set the number of CPU threads torch uses for intra-op parallelism (process-wide)."""
    if num_threads < 1:
        raise ValueError(f"num_threads must be >= 1, got {num_threads}")
    torch.set_num_threads(num_threads)


def build_model(
    weights: str | os.PathLike[str] | Mapping[str, torch.Tensor] | None = None,
    device: str | torch.device = "cpu",
    *,
    num_threads: int | None = None,
    cache_ws: bool = True,
) -> FBAMatting:
    """Build FBA Matting in eval mode on ``device``.

    Args:
        weights: path to a raw state dict (the official ``FBA.pth`` format), an already-loaded
            state dict, or None for a random initialisation (tests, benchmarks). Loaded with
            ``strict=True`` through :mod:`matting_api.fba.checkpoint`.
        device: a ``torch.device`` or a string for :func:`select_device` (``"auto"`` allowed).
        num_threads: if given, :func:`set_num_threads` (affects the whole process).
        cache_ws: cache the weight-standardised conv weights between inference calls; saves
            ~0.15 s per call on 2 CPU cores for ~136 MB more memory (see
            :meth:`FBAMatting.set_ws_cache`).

    Raises:
        CheckpointError: the weights cannot be loaded (the message says why and where the real
            checkpoint comes from).
    """
    if num_threads is not None:
        set_num_threads(num_threads)
    target = device if isinstance(device, torch.device) else select_device(device)
    model = FBAMatting()
    if weights is not None:
        load_into(model, weights)
    else:
        logger.warning("FBA model built with random weights (no checkpoint given)")
    model.set_ws_cache(cache_ws)
    return model.to(target).eval()

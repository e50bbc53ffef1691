"""Building FBA Matting: the network in eval mode with the official weights (no side effects:
CPU threads are set once at app start, :func:`service_common.torch_runtime.set_threads`)."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping

import torch

from service_common.torch_runtime import resolve_device

from .checkpoint import load_into
from .model import FBAMatting

logger = logging.getLogger(__name__)


def build_model(
    weights: str | os.PathLike[str] | Mapping[str, torch.Tensor] | None = None,
    device: str | torch.device = "cpu",
    *,
    cache_ws: bool = True,
) -> FBAMatting:
    """Build FBA Matting in eval mode on ``device``.

    Args:
        weights: path to a raw state dict (the official ``FBA.pth`` format), an already-loaded
            state dict, or None for a random initialisation (tests, benchmarks). Loaded with
            ``strict=True`` through :mod:`matting_api.backends.fba.checkpoint`.
        device: a ``torch.device``, or a string for
            :func:`~service_common.torch_runtime.resolve_device` (``"auto"`` allowed).
        cache_ws: cache the weight-standardised conv weights between inference calls; saves
            ~0.15 s per call on 2 CPU cores for ~136 MB more memory (see
            :meth:`FBAMatting.set_ws_cache`).

    Raises:
        ModelError: the weights cannot be loaded (the message says why and where the real
            checkpoint comes from), or the device cannot be used.
    """
    target = device if isinstance(device, torch.device) else resolve_device(device)
    model = FBAMatting()
    if weights is not None:
        load_into(model, weights)
    else:
        logger.warning("FBA model built with random weights (no checkpoint given)")
    model.set_ws_cache(cache_ws)
    return model.to(target).eval()

"""Matting backends and the rule that picks one per worker.

Each module of this package that holds a model registers it
(:func:`service_common.registry.register_model` on its loader: name, weights file, whether
it needs torch, its role in ``auto``); nothing here lists them. A backend turns an image and
its trimap into a matte and the subject's colours:

* ``name``: its registered name (the ``X-Matting-Backend`` header);
* ``device``: ``"cpu"``, ``"cuda"``, ...;
* ``matte(rgb, trimap, prior=None) -> (fg, alpha)`` with ``rgb`` ``H x W x 3`` uint8,
  ``trimap`` ``H x W`` uint8 in {0, 128, 255} and ``prior`` the segmentation's soft mask
  (``H x W`` float32 ``[0, 1]``) when the trimap was derived from it
  (:func:`trimap.from_prior.prior_trimap`), ``None`` for a user's trimap; ``fg``
  ``H x W x 3`` float32 ``[0, 1]`` (the predicted foreground colour), ``alpha`` ``H x W``
  float32 ``[0, 1]``. Known trimap regions come back exactly: alpha 0 where the trimap is
  0, alpha 1 and ``fg == rgb / 255`` where it is 255. Closed-form matting refines the prior
  in the unknown band; FBA uses the trimap only. ``foreground`` (``best`` or ``fast``, the
  request's) chooses closed-form matting's colour estimate; FBA predicts its own.
* ``info() -> dict``: what ``/readyz`` shows.

:func:`load_matting_backend` reads ``BACKDROP_MATTING_BACKEND``: ``auto`` takes the model
registered as ``preferred`` (FBA) when its weights file exists and torch is installed, and
otherwise the ``fallback`` (the offline closed-form backend), with a loud warning naming the
missing file; a name forces that model (one without its weights fails at start-up with a
message saying where to put them).
"""

from __future__ import annotations

import logging
import time
from typing import Any, Protocol

import numpy as np

from service_common import registry
from service_common.config import Settings
from service_common.extras import require_torch, torch_installed, torch_missing_message
from service_common.weights import ModelError, missing_message
from trimap.encoding import FOREGROUND, UNKNOWN

log = logging.getLogger(__name__)


class MattingBackend(Protocol):
    """What the pipeline needs from a matting backend (see the module docstring)."""

    name: str
    device: str

    def matte(
        self, rgb: np.ndarray, trimap: np.ndarray, prior: np.ndarray | None = None,
        foreground: str = "best",
    ) -> tuple[np.ndarray, np.ndarray]: ...

    def info(self) -> dict[str, Any]: ...


#: A warm-up longer than this (ms) was a first start compiling kernels: say so in the log.
SLOW_FIRST_START_MS = 5000.0


def load_matting_backend(settings: Settings) -> MattingBackend:
    """Build the backend ``settings.matting_backend`` asks for (once per worker), from the
    models the modules of this package register (:mod:`service_common.registry`)."""
    known = registry.models("matting")
    choice = settings.matting_backend
    if choice == "auto":
        choice = _auto(settings)
    chosen = known.get(choice)
    if chosen is None:
        raise ModelError(f"unknown matting backend {choice!r}; expected one of {', '.join(known)}")
    if chosen.weights is not None and not chosen.weights.path(settings.models_dir).exists():
        raise ModelError(missing_message(chosen.weights, settings.models_dir))
    if chosen.torch:
        require_torch(f"the matting backend {chosen.name} ({chosen.title})")
    return chosen.loader(settings, chosen.name)


def _auto(settings: Settings) -> str:
    """``auto``: the preferred model when its weights are present and torch is installed,
    else the fallback (with a loud warning saying why)."""
    preferred = registry.by_role("matting", "preferred")
    fallback = registry.by_role("matting", "fallback")
    if preferred is None or fallback is None:
        raise ModelError("the matting models register no preferred or no fallback model for auto")
    weights = preferred.weights
    present = weights is None or weights.path(settings.models_dir).exists()
    if present and preferred.torch and not torch_installed():
        log.warning("MATTING BACKEND FALLBACK: %s found, but %s. Using the offline %s instead.",
                    weights.path(settings.models_dir) if weights else preferred.title,
                    torch_missing_message(preferred.title), fallback.title)
        return fallback.name
    if present:
        return preferred.name
    log.warning("MATTING BACKEND FALLBACK: %s. Using the offline %s (slower, softer edges) instead.",
                missing_message(weights, settings.models_dir) if weights else preferred.title,
                fallback.title)
    return fallback.name


def known_regions(rgb: np.ndarray, trimap: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start values of every backend: ``fg = rgb / 255``, ``alpha = 1`` on sure foreground,
    0 elsewhere. Returns ``(fg H x W x 3 float32, alpha H x W float32)``."""
    fg = rgb.astype(np.float32) / 255.0
    alpha = (trimap == FOREGROUND).astype(np.float32)
    return fg, alpha


def warmup_scene(size: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """A tiny synthetic photo (black, its right half orange) and its trimap (a 4-px unknown
    band between background and foreground): ``(H x W x 3 uint8, H x W uint8)``."""
    rgb = np.zeros((size, size, 3), dtype=np.uint8)
    rgb[:, size // 2:] = (200, 120, 40)
    trimap = np.zeros((size, size), dtype=np.uint8)
    trimap[:, size // 2 - 2:size // 2 + 2] = UNKNOWN
    trimap[:, size // 2 + 2:] = FOREGROUND
    return rgb, trimap


class WarmedBackend:
    """What every matting backend shares: a warm-up at start-up, and what ``/readyz`` shows.

    Subclasses set ``name`` and ``device``, implement ``matte`` and may add to
    :meth:`details`.
    """

    name: str
    device: str
    warmup_ms: float | None = None

    def details(self) -> dict[str, Any]:
        """The backend's own settings for :meth:`info`."""
        return {}

    def info(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "device": self.device,
            **self.details(),
            "warmed_up": self.warmup_ms is not None,
            "warmup_ms": None if self.warmup_ms is None else round(self.warmup_ms),
        }

    def matte(self, rgb: np.ndarray, trimap: np.ndarray, prior: np.ndarray | None = None,
              foreground: str = "best") -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def warm_up(self) -> None:
        """Run once on :func:`warmup_scene`, with and without a prior, so that the first
        request does not pay for compilation (numba's JIT), allocators or cached weights."""
        started = time.perf_counter()
        rgb, trimap = warmup_scene()
        self.matte(rgb, trimap)
        self.matte(rgb, trimap, prior=(trimap / 255.0).astype(np.float32))
        self.warmup_ms = (time.perf_counter() - started) * 1000.0
        log.info("%s matting warmed up in %.0f ms", self.name, self.warmup_ms)
        if self.warmup_ms > SLOW_FIRST_START_MS:
            log.warning("first start: %s matting took %.0f s to warm up, most of it numba compiling "
                        "its kernels; they are cached now, and later starts take about a second. "
                        "Compile them at install time with `python -m matting_api.precompile` "
                        "(make install and the container images do)", self.name,
                        self.warmup_ms / 1000.0)

"""FBA Matting backend (Forte & Pitié 2020): its network (:mod:`.model`), served.

Loads ``models/FBA.pth`` once per worker (strict state-dict loading), on the device the
settings ask for (``auto`` = CUDA when available, else CPU), and runs
:func:`.predict.predict` with the working-size cap ``BACKDROP_MATTING_MAX_SIDE`` and
(off by default) the crop to the unknown band (``BACKDROP_FBA_CROP_MARGIN``). Both change
results against full-resolution inference: GroupNorm statistics and the pyramid pooling are
global, so no crop margin reproduces the full run; ``bench/fba_speed.py`` measures the cost.
The cap defaults on (1600 px) because full resolution needs >11 GB above 1080p.
A lock serialises inference: one model, one request at a time
per worker (gunicorn threads would otherwise multiply the activation memory).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import numpy as np

from service_common.config import Settings
from service_common.weights import ModelError, missing_message
from trimap.encoding import BACKGROUND, FOREGROUND

from .. import WarmedBackend
from . import FBA

log = logging.getLogger(__name__)


def trimap_to_two_channel(trimap: np.ndarray) -> np.ndarray:
    """0/128/255 trimap ``H x W`` uint8 -> FBA's ``H x W x 2`` float32 (channel 0 = 1 on sure
    background, channel 1 = 1 on sure foreground, both 0 on unknown)."""
    two = np.zeros((*trimap.shape, 2), dtype=np.float32)
    two[..., 0] = trimap == BACKGROUND
    two[..., 1] = trimap == FOREGROUND
    return two


class FBABackend(WarmedBackend):
    """FBA Matting on one device.

    Args:
        model: a built :class:`.model.FBAMatting` in eval mode.
        device: where it lives (``"cpu"``, ``"cuda"``, ``"cuda:1"``).
        max_side: working-size cap on the long side, px; ``None`` = full resolution.
        crop_margin: run on the unknown band's box plus this margin (px); 0 = whole image.
    """

    name = "fba"

    def __init__(self, model: Any, device: str, max_side: int | None, crop_margin: int = 0) -> None:
        self.model = model
        self.device = device
        self.max_side = max_side
        self.crop_margin = crop_margin
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> FBABackend:
        """Build FBA on ``settings.device`` with ``models/FBA.pth``, warmed up.

        Raises:
            ModelError: the file is missing or unusable, or the device cannot be used.
        """
        from service_common.torch_runtime import resolve_device

        from .build import build_model

        path = FBA.path(settings.models_dir)
        if not path.is_file():
            raise ModelError(missing_message(FBA, settings.models_dir))
        device = str(resolve_device(settings.device))
        started = time.perf_counter()
        model = build_model(path, device=device)
        log.info("FBA loaded from %s on %s in %.1f s", path, device, time.perf_counter() - started)
        backend = cls(model, device, settings.matting_max_side or None, settings.fba_crop_margin)
        backend.warm_up()
        return backend

    def details(self) -> dict[str, Any]:
        return {"max_side": self.max_side, "crop_margin": self.crop_margin}

    def matte(
        self, rgb: np.ndarray, trimap: np.ndarray, prior: np.ndarray | None = None,
        foreground: str = "best",
    ) -> tuple[np.ndarray, np.ndarray]:
        """FBA's alpha and foreground colour of ``rgb`` in the trimap's unknown band (the
        contract of :mod:`matting_api.backends`; known regions exact). ``prior`` and
        ``foreground`` are not used: FBA predicts both from the image and the trimap."""
        from .predict import predict

        image = rgb.astype(np.float32) / 255.0
        with self._lock:
            fg, _bg, alpha = predict(
                self.model, image, trimap_to_two_channel(trimap),
                max_side=self.max_side, crop_to_unknown=self.crop_margin > 0,
                crop_margin=self.crop_margin or 128,
            )
        fg = np.clip(fg, 0.0, 1.0).astype(np.float32, copy=False)
        alpha = np.clip(alpha, 0.0, 1.0).astype(np.float32, copy=False)
        sure_fg = trimap == FOREGROUND
        alpha[trimap == BACKGROUND] = 0.0
        alpha[sure_fg] = 1.0
        fg[sure_fg] = image[sure_fg]
        return fg, alpha

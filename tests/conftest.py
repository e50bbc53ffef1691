"""Fixtures shared by every test folder.

* ``sample_photo`` / ``sample_photo_bytes``: the shipped portrait (samples/astronaut.png).
* ``encode_png``: numpy array -> PNG bytes, to post real image files.
* ``offline_services``: both services under a real gunicorn on free ports, with the
  offline defaults as a user gets them (segmentation ``auto`` without Mask R-CNN weights:
  MODNet for people, U^2-Net-p for other classes; closed-form matting). Started once per
  test session, stopped at the end. It needs ``models/u2netp.onnx``,
  ``models/modnet.onnx`` and ``models/selfie_segmentation.tflite``: ``make test`` fetches
  them first (``make models-offline``);
  without them the fixture fails and says so.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from segmentation_api.backends.modnet import MODNET
from segmentation_api.backends.selfie import SELFIE
from segmentation_api.backends.u2netp import U2NETP
from service_common.config import REPO_ROOT
from service_common.serve import Service, free_port, running
from service_common.weights import missing_message

SAMPLE_PHOTO = REPO_ROOT / "samples" / "astronaut.png"


@pytest.fixture(scope="session")
def sample_photo() -> np.ndarray:
    """The shipped 512x512 portrait as H x W x 3 uint8 RGB."""
    return np.asarray(Image.open(SAMPLE_PHOTO).convert("RGB"))


@pytest.fixture(scope="session")
def sample_photo_bytes() -> bytes:
    return SAMPLE_PHOTO.read_bytes()


def _encode(arr: np.ndarray, fmt: str = "PNG", **kwargs) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format=fmt, **kwargs)
    return buf.getvalue()


@pytest.fixture(scope="session")
def encode_png() -> Callable[..., bytes]:
    """``encode_png(array, fmt="PNG", **pillow_save_kwargs) -> bytes``."""
    return _encode


@pytest.fixture(scope="session")
def models_dir() -> Path:
    """The repository's models folder, with the offline segmentation models in it."""
    path = REPO_ROOT / "models"
    for weights in (U2NETP, MODNET, SELFIE):
        if not weights.path(path).exists():
            pytest.fail(missing_message(weights, path) + " (`make test` fetches it for you)")
    return path


@pytest.fixture(scope="session")
def offline_services(models_dir: Path, tmp_path_factory) -> Iterator[tuple[Service, Service]]:
    """(segmentation, matting) gunicorn services with the offline default backends."""
    logs = tmp_path_factory.mktemp("service-logs")
    common = {
        # an empty hub cache: Mask R-CNN weights cached on this machine must not change `auto`
        "TORCH_HOME": str(tmp_path_factory.mktemp("torch-home")),
        "BACKDROP_MODELS_DIR": str(models_dir),
        "BACKDROP_LOG_LEVEL": "WARNING",
        "BACKDROP_TORCH_THREADS": "1",
    }
    seg = Service(
        "segmentation", free_port(), timeout=120, log_path=logs / "segmentation.log",
        env={**common, "BACKDROP_SEGMENTATION_BACKEND": "auto"},
    )
    mat = Service(
        "matting", free_port(), threads=4, timeout=120, log_path=logs / "matting.log",
        env={**common, "BACKDROP_MATTING_BACKEND": "closed_form",
             "BACKDROP_SEGMENTATION_URL": seg.url},
    )
    with running(seg, mat, ready_timeout=120):
        yield seg, mat

"""The path a user with the real weights walks: every torch model's file present, the
services started exactly as ``make serve`` starts them.

The weight files are the real architectures with generated values (torchvision's builders
without weights; FBA from the checkpoint manifest's deterministic recipe, the one
``tests/fba`` uses), saved under the file names the project expects, in a temporary models
folder beside the offline ONNX models. Then ``python -m service_common.serve`` starts both
services (real gunicorn, real fronts) on free ports, and the test checks what a user sees:

* ``/readyz`` of the segmentation service names every model (Mask R-CNN v1 and v2,
  DeepLabV3 ResNet-101 and MobileNetV3, MODNet, U^2-Net-p) and the matting service names FBA;
* a photo is matted by FBA (Mask R-CNN with random weights finds nothing, so the request
  names MODNet, preloaded beside it);
* every segmentation backend answers a request: 200, or 422 ``no_subject``.

And every model module imports alone in a fresh interpreter, so that no import order (a
test suite importing one package first) can hide an import cycle again.

Slow-ish (about a minute: five networks are built and saved, then loaded by the services),
but it is the only test of the customer's own configuration, so it runs by default and in CI.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from bench.generated_weights import save_generated_weights
from segmentation_api.backends.modnet import MODNET
from segmentation_api.backends.u2netp import U2NETP
from service_common.config import REPO_ROOT
from service_common.serve import free_port

torch = pytest.importorskip("torch")
torchvision = pytest.importorskip("torchvision")

#: Every segmentation backend a user with all the weights can ask for.
SEGMENTATION_BACKENDS = ("maskrcnn", "maskrcnn_v2", "deeplabv3", "deeplabv3_mobilenet", "modnet", "u2netp")


@pytest.fixture(scope="module")
def user_models(models_dir: Path, tmp_path_factory) -> Path:
    """A models folder as a user with every weights file has it."""
    models = tmp_path_factory.mktemp("user-models")
    for weights in (MODNET, U2NETP):
        shutil.copy(weights.path(models_dir), weights.path(models))
    save_generated_weights(models)
    return models


def _wait_ready(url: str, serve: subprocess.Popen, seconds: float) -> dict:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if serve.poll() is not None:
            pytest.fail(f"make serve exited with code {serve.returncode}:\n{serve.stdout.read()}")
        try:
            answer = requests.get(url + "/readyz", timeout=5)
            if answer.status_code == 200:
                return answer.json()
        except requests.RequestException:
            pass
        time.sleep(1.0)
    pytest.fail(f"{url} was not ready within {seconds:.0f} s")


@pytest.fixture(scope="module")
def user_stack(user_models: Path, tmp_path_factory) -> Iterator[tuple[str, str, dict, dict]]:
    """``make serve`` with the user's models: ``(segmentation url, matting url, their /readyz)``."""
    seg_port, mat_port = free_port(), free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "BACKDROP_MODELS_DIR": str(user_models),
           "TORCH_HOME": str(tmp_path_factory.mktemp("torch-home")),
           "BACKDROP_SEGMENTATION_PORT": str(seg_port), "BACKDROP_MATTING_PORT": str(mat_port),
           "BACKDROP_SEGMENTATION_PRELOAD": ",".join(SEGMENTATION_BACKENDS),
           "BACKDROP_LOG_LEVEL": "WARNING"}
    for name in ("BACKDROP_SEGMENTATION_BACKEND", "BACKDROP_MATTING_BACKEND"):
        env.pop(name, None)  # auto, as a user gets it
    serve = subprocess.Popen([sys.executable, "-m", "service_common.serve"], cwd=REPO_ROOT, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        seg_url, mat_url = f"http://127.0.0.1:{seg_port}", f"http://127.0.0.1:{mat_port}"
        seg_ready = _wait_ready(seg_url, serve, 400)
        mat_ready = _wait_ready(mat_url, serve, 200)
        yield seg_url, mat_url, seg_ready, mat_ready
    finally:
        serve.send_signal(signal.SIGINT)
        try:
            serve.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            serve.kill()
            serve.communicate()


def test_readyz_names_every_model(user_stack) -> None:
    _, _, seg_ready, mat_ready = user_stack
    assert set(seg_ready["backends"]) >= set(SEGMENTATION_BACKENDS), seg_ready
    assert seg_ready["backend"] == "maskrcnn"  # auto: Mask R-CNN's file is present
    assert mat_ready["matting"]["name"] == "fba", mat_ready


def test_a_photo_is_matted_by_fba(user_stack, sample_photo_bytes: bytes) -> None:
    _, mat_url, _, _ = user_stack
    answer = requests.post(mat_url + "/v1/matte", files={"image": ("astronaut.png", sample_photo_bytes)},
                           data={"backend": "modnet", "bg_mode": "color", "bg_color": "#00ff00"},
                           timeout=300)
    assert answer.status_code == 200, answer.text
    assert answer.headers["X-Matting-Backend"] == "fba"
    assert answer.headers["X-Segmentation-Backend"] == "modnet"
    assert answer.headers["Content-Type"] in ("image/jpeg", "image/png")


@pytest.mark.parametrize("backend", SEGMENTATION_BACKENDS)
def test_every_segmentation_backend_answers(user_stack, sample_photo_bytes: bytes, backend: str) -> None:
    seg_url, _, _, _ = user_stack
    answer = requests.post(seg_url + "/v1/mask", files={"image": ("astronaut.png", sample_photo_bytes)},
                           data={"backend": backend}, timeout=300)
    if answer.status_code == 422:
        assert answer.json()["error"]["code"] == "no_subject", answer.text
    else:
        assert answer.status_code == 200, answer.text
        assert answer.headers["X-Segmentation-Backend"] == backend


def _backend_modules() -> list[str]:
    """Every module under the two services' ``backends`` packages (FBA's network included)."""
    names = []
    for package in ("segmentation_api.backends", "matting_api.backends"):
        root = REPO_ROOT.joinpath(*package.split("."))
        for path in sorted(root.rglob("*.py")):
            parts = path.relative_to(REPO_ROOT).with_suffix("").parts
            names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


@pytest.mark.parametrize("module", _backend_modules())
def test_every_model_module_imports_alone(module: str) -> None:
    """A fresh interpreter per module: no other import can hide a cycle."""
    proc = subprocess.run([sys.executable, "-c", f"import {module}"], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr

"""The segmentation service admits requests by memory, as the matting service does
(:mod:`service_common.memory`, :func:`segmentation_api.pipeline.peak_bytes`).

Over real HTTP, against a MODNet segmentation gunicorn (2 threads) whose worker may use
:data:`BUDGET_MB`:

* a 40 MP picture in a 0.2 MB PNG, whose estimated peak could never fit beside the worker's
  models, is 413 ``image_too_large`` naming the memory, on ``/v1/mask`` and ``/v1/trimap``,
  in the common JSON error format;
* two pictures sent at once, each fitting alone but not together (sized from the worker's
  measured idle memory and the service's own estimate), give one 200 and one 503
  ``overloaded`` with ``Retry-After``; the worker is the same process afterwards and a lone
  request is served.

The estimate itself (no model, no HTTP): it counts decoding, the full-size answer and the
model's working size, both models of ``subject=auto``, and refuses a bad upload before
estimating anything.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import requests
from apierrors import assert_api_error
from PIL import Image

from bench.load import proc_memory_kb, worker_pids
from bench.memory_budget import flat_disk_png
from segmentation_api.pipeline import (
    FIXED_MODEL_BYTES,
    MODNET_BYTES_PER_INPUT_PIXEL,
    SEGMENT_BYTES_PER_PIXEL,
    SegmentOptions,
    peak_bytes,
)
from segmentation_api.subject import AutoSubject
from service_common.errors import ApiError
from service_common.images import DECODE_BYTES_PER_PIXEL
from service_common.memory import MB, MemoryBudget
from service_common.serve import Service, free_port, running

#: The worker's budget: MODNet's worker idles at about 300 MB, so a few MP fit, two of
#: them at once do not, and 40 MP (estimated 1,282 MB) never does.
BUDGET_MB = 900
#: Rounds of two simultaneous requests before giving up on seeing them overlap.
ROUNDS = 4

MODNET = SimpleNamespace(name="modnet", short_side=512)
U2NETP = SimpleNamespace(name="u2netp")


def _jpeg(rgb: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=85)
    return buf.getvalue()


def _portrait(sample_photo: np.ndarray, megapixels: float) -> bytes:
    """The sample portrait upscaled to ``megapixels`` MP (4:3), as a JPEG."""
    height = int((megapixels * 1e6 * 0.75) ** 0.5)
    width = int(megapixels * 1e6 / height)
    return _jpeg(np.asarray(Image.fromarray(sample_photo).resize((width, height), Image.Resampling.BILINEAR)))


# ------------------------------------------------------------------ the estimate


def test_the_estimate_counts_decoding_the_answer_and_the_models_working_size(sample_photo):
    photo = _portrait(sample_photo, 4.0)
    width, height = Image.open(io.BytesIO(photo)).size
    modnet_input = 512 * 672  # 512 px on the shorter side, sides multiples of 32
    opts = SegmentOptions()
    need = peak_bytes(MODNET, photo, opts, 40_000_000)
    assert need == (width * height * (DECODE_BYTES_PER_PIXEL + SEGMENT_BYTES_PER_PIXEL)
                    + modnet_input * MODNET_BYTES_PER_INPUT_PIXEL)
    larger_input = peak_bytes(MODNET, photo, SegmentOptions(model_size=1024), 40_000_000)
    assert larger_input - need == (1024 * 1344 - modnet_input) * MODNET_BYTES_PER_INPUT_PIXEL
    auto = peak_bytes(AutoSubject(MODNET, U2NETP), photo, opts, 40_000_000)
    assert auto == need + FIXED_MODEL_BYTES["u2netp"]


def test_a_bad_upload_is_refused_before_any_estimate():
    with pytest.raises(ApiError) as info:
        peak_bytes(MODNET, b"", SegmentOptions(), 40_000_000)
    assert info.value.code == "empty_body"
    image, _ = flat_disk_png(0.05)
    with pytest.raises(ApiError) as info:
        peak_bytes(MODNET, image, SegmentOptions(), 10_000)
    assert info.value.code == "image_too_large" and info.value.details["max_pixels"] == 10_000


def test_the_413_says_what_the_client_can_do_for_each_service():
    budget = MemoryBudget(1000 * MB, "a test", rss=lambda: 200 * MB)
    with pytest.raises(ApiError) as matting, budget.admit(900 * MB):
        pass
    assert matting.value.message.endswith("send a smaller picture, or ask for a smaller size")
    with pytest.raises(ApiError) as segmentation, budget.admit(900 * MB, "this picture", "fewer pixels"):
        pass
    error = segmentation.value
    assert error.code == "image_too_large" and error.message.endswith("; fewer pixels")


# ------------------------------------------------------------------ over HTTP


@pytest.fixture(scope="module")
def budgeted_segmentation(models_dir: Path, tmp_path_factory, sample_photo_bytes) -> Iterator[Service]:
    log = tmp_path_factory.mktemp("seg-budget-logs") / "segmentation.log"
    seg = Service("segmentation", free_port(), threads=2, timeout=120, log_path=log, env={
        "BACKDROP_MODELS_DIR": str(models_dir), "BACKDROP_TORCH_THREADS": "1",
        "BACKDROP_LOG_LEVEL": "WARNING", "BACKDROP_SEGMENTATION_BACKEND": "modnet",
        "BACKDROP_MAX_PIXELS": "40000000", "BACKDROP_MAX_UPLOAD_MB": "50",
        "BACKDROP_WORKER_MEMORY_MB": str(BUDGET_MB),
    })
    with running(seg, ready_timeout=120):
        # the first model run of a fresh worker grows its memory: before measuring it
        warm = requests.post(seg.url + "/v1/mask", timeout=60,
                             files={"image": ("p.png", sample_photo_bytes, "image/png")})
        assert warm.status_code == 200, warm.text[:300]
        yield seg


@pytest.mark.parametrize("endpoint", ["/v1/mask", "/v1/trimap"])
def test_a_picture_that_could_never_fit_is_a_413_naming_the_memory(budgeted_segmentation, endpoint):
    image, size = flat_disk_png(40.0)
    assert len(image) < 1_000_000 and size[0] * size[1] > 39_000_000
    answer = requests.post(budgeted_segmentation.url + endpoint, timeout=120,
                           files={"image": ("big.png", image, "image/png")})
    error = assert_api_error(answer, 413, "image_too_large")
    assert error["limit_mb"] == BUDGET_MB
    assert error["need_mb"] == peak_bytes(MODNET, image, SegmentOptions(), 40_000_000) // MB
    assert "memory" in error["message"] and "smaller picture" in error["message"]
    assert "size" not in error["message"].split(";")[-1]  # no size parameter to suggest here
    assert "Retry-After" not in answer.headers


def test_two_pictures_that_fit_alone_but_not_together_give_one_503_overloaded(
        budgeted_segmentation, sample_photo):
    seg = budgeted_segmentation
    (worker,) = worker_pids(seg.process.pid)
    room = BUDGET_MB * MB - proc_memory_kb(worker)["VmRSS"] * 1024
    assert room > 300 * MB, f"the idle worker leaves only {room // MB} MB of {BUDGET_MB} MB"
    # a picture whose estimate is about 55 % of the room: one fits, two do not
    per_pixel = DECODE_BYTES_PER_PIXEL + SEGMENT_BYTES_PER_PIXEL
    megapixels = (0.55 * room - 512 * 672 * MODNET_BYTES_PER_INPUT_PIXEL) / per_pixel / 1e6
    picture = _portrait(sample_photo, megapixels)
    need = peak_bytes(MODNET, picture, SegmentOptions(), 40_000_000)
    assert 0.5 * room < need < 0.6 * room, (need // MB, room // MB)

    def send(barrier: threading.Barrier) -> requests.Response:
        barrier.wait(timeout=30)
        return requests.post(seg.url + "/v1/mask", timeout=120,
                             files={"image": ("photo.jpg", picture, "image/jpeg")})

    rounds = []
    for _ in range(ROUNDS):
        barrier = threading.Barrier(2)
        with ThreadPoolExecutor(2) as pool:
            answers = list(pool.map(send, [barrier, barrier]))
        statuses = sorted(a.status_code for a in answers)
        rounds.append(statuses)
        for answer in answers:
            if answer.status_code == 200:
                assert answer.headers["Content-Type"] == "image/png"
                continue
            error = assert_api_error(answer, 503, "overloaded")
            assert int(answer.headers["Retry-After"]) >= 1
            assert error["limit_mb"] == BUDGET_MB and error["need_mb"] == need // MB
            assert "retry" in error["message"]
        assert statuses in ([200, 200], [200, 503]), rounds  # never both refused
        if statuses == [200, 503]:
            break
    assert rounds[-1] == [200, 503], f"the two requests never overlapped: {rounds}"
    assert worker_pids(seg.process.pid) == [worker]  # not killed, not replaced
    alone = requests.post(seg.url + "/v1/mask", timeout=120,
                          files={"image": ("photo.jpg", picture, "image/jpeg")})
    assert alone.status_code == 200, alone.text[:300]

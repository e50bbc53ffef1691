"""The matting service under a real gunicorn when its segmentation neighbour fails.

tests/matting/test_matting_segmentation_errors.py covers the mapping of every failure to
its code in-process; here the same failures hit a gunicorn worker (threads, the pooled
connection to the neighbour, the worker's own timeout), each answer must come within the
configured time plus a second, and the service must recover by itself, without a restart,
when the neighbour is back. The neighbour relays to the real segmentation service.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import requests
from apierrors import assert_api_error
from robust_inputs import SEG_CONNECT_TIMEOUT, SEG_TIMEOUT, encode, photo_png, trimap_png

from bench.load import worker_pids

PHOTO = photo_png(80, 64, seed=5)


def _matte(service, request_id: str) -> tuple[requests.Response, float]:
    started = time.monotonic()
    response = requests.post(service.url + "/v1/matte", files={"image": ("p.png", PHOTO)},
                             data={"format": "png"}, headers={"X-Request-Id": request_id},
                             timeout=SEG_CONNECT_TIMEOUT + SEG_TIMEOUT + 30)
    return response, time.monotonic() - started


def _works(service, request_id: str) -> None:
    response, _ = _matte(service, request_id)
    assert response.status_code == 200, response.text[:300]
    assert response.headers["X-Segmentation-Backend"] == "u2netp"
    assert (response.headers["X-Width"], response.headers["X-Height"]) == ("80", "64")


def test_neighbour_stopped_then_back(flaky_matting, flaky):
    workers = worker_pids(flaky_matting.process.pid)
    _works(flaky_matting, "before-crash")
    flaky.stop()  # crash: the pooled keep-alive connection dies with it
    response, seconds = _matte(flaky_matting, "neighbour-down")
    assert_api_error(response, 503, "segmentation_unavailable")
    assert seconds < min(2.0, SEG_TIMEOUT + 1.0)  # refused at once, retried once
    ready = requests.get(flaky_matting.url + "/readyz", timeout=10)
    assert_api_error(ready, 503, "not_ready")
    flaky.start()
    _works(flaky_matting, "after-restart")
    assert requests.get(flaky_matting.url + "/readyz", timeout=10).status_code == 200
    assert worker_pids(flaky_matting.process.pid) == workers


def test_neighbour_slower_than_the_timeout(flaky_matting, flaky):
    """Three requests wait for a sleeping neighbour and get 504 on time; meanwhile the same
    worker's fourth thread answers a request with a given trimap (no segmentation) at once."""
    flaky.mode, flaky.delay = "sleep", SEG_TIMEOUT + 3
    with ThreadPoolExecutor(3) as pool:
        waiting = [pool.submit(_matte, flaky_matting, f"waiting-{i}") for i in range(3)]
        time.sleep(0.3)
        started = time.monotonic()
        quick = requests.post(flaky_matting.url + "/v1/matte", timeout=30, files={
            "image": ("p.png", PHOTO), "trimap": ("t.png", trimap_png(80, 64))})
        quick_seconds = time.monotonic() - started
        results = [f.result() for f in waiting]
    assert quick.status_code == 200 and quick_seconds < SEG_TIMEOUT - 0.5
    for response, seconds in results:
        assert_api_error(response, 504, "segmentation_timeout")
        assert SEG_TIMEOUT - 0.1 < seconds < SEG_TIMEOUT + 1.0
    flaky.mode = "relay"
    _works(flaky_matting, "after-slow")


def test_neighbour_trickling_its_answer(flaky_matting, flaky):
    """Headers at once, then a byte every 2 s: each read is within the read timeout, the
    whole answer is not within the hop's budget (connect + read timeouts): 504, and no later
    than the budget (a read must not wait a whole read timeout past it)."""
    flaky.mode, flaky.delay = "trickle", SEG_TIMEOUT * 0.8
    response, seconds = _matte(flaky_matting, "neighbour-trickle")
    assert_api_error(response, 504, "segmentation_timeout")
    assert seconds < SEG_CONNECT_TIMEOUT + SEG_TIMEOUT + 0.5
    flaky.mode = "relay"
    _works(flaky_matting, "after-trickle")


@pytest.mark.parametrize("content", [
    b"<html><body>502 Bad Gateway</body></html>",
    encode(np.full((64, 80), 77, np.uint8)),  # a PNG whose values are not 0/128/255
    b"\x89PNG\r\n\x1a\n" + b"\x00" * 40,  # a PNG signature, then nothing usable
])
def test_neighbour_answering_garbage(flaky_matting, flaky, content):
    flaky.mode, flaky.content = "garbage", content
    response, seconds = _matte(flaky_matting, "neighbour-garbage")
    assert_api_error(response, 502, "segmentation_bad_response")
    assert seconds < SEG_TIMEOUT + 1.0
    flaky.mode = "relay"
    _works(flaky_matting, "after-garbage")

"""How the matting service answers when its segmentation neighbour fails, and that it
recovers by itself. The neighbour is a real local HTTP server misbehaving on purpose; the
successful trimaps come from the real segmentation service (``offline_services``)."""

from __future__ import annotations

import io
import time

import numpy as np
import pytest
from apierrors import assert_api_error
from PIL import Image

TIMEOUT = 1.0


@pytest.fixture
def matte_via(make_app, scene, png):
    """``matte_via(url, image=scene, timeout=TIMEOUT) -> (response, seconds)``: POST the
    image without a trimap, through an app whose segmentation service is at ``url``."""
    clients = {}

    def _post(url, image=None, timeout=TIMEOUT):
        if (url, timeout) not in clients:
            clients[url, timeout] = make_app(
                segmentation_url=url, segmentation_timeout=timeout,
                segmentation_connect_timeout=TIMEOUT,
            ).test_client()
        data = {"image": (io.BytesIO(png(scene.rgb if image is None else image)), "i.png"),
                "bg_color": "white"}
        started = time.monotonic()
        resp = clients[url, timeout].post("/v1/matte", data=data)
        return resp, time.monotonic() - started

    return _post


def _png(arr: np.ndarray, mode: str | None = None) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr, mode=mode).save(buf, format="PNG")
    return buf.getvalue()


def test_nothing_listening_is_503_quickly(matte_via, dead_url):
    resp, seconds = matte_via(dead_url)
    assert_api_error(resp, 503, "segmentation_unavailable")  # no traceback in it either
    assert seconds < 1.0


def test_too_slow_is_504_within_the_timeout(matte_via, neighbour):
    neighbour.mode, neighbour.delay = "sleep", 3 * TIMEOUT
    resp, seconds = matte_via(neighbour.url)
    assert_api_error(resp, 504, "segmentation_timeout")
    assert seconds < TIMEOUT + 1.0
    assert neighbour.count == 1  # timeouts are not retried


def test_connection_dropped_is_retried_once_then_503(matte_via, neighbour):
    neighbour.mode = "hangup"
    resp, _ = matte_via(neighbour.url)
    assert_api_error(resp, 503, "segmentation_unavailable")
    assert neighbour.count == 2


@pytest.mark.parametrize(
    ("content", "content_type", "why"),
    [
        (b"<html>hello</html>", "text/html", "not a PNG"),
        (_png(np.zeros((32, 32), np.uint8)), "image/png", "size 32x32"),
        (_png(np.full((64, 64), 77, np.uint8)), "image/png", "no pixel of the subject"),
        (_png(np.zeros((64, 64, 3), np.uint8)), "image/png", "mode RGB"),
        (_png(np.zeros((64, 64), np.uint8))[:60], "image/png", "cannot decode"),
    ],
)
def test_garbage_answers_are_502(matte_via, neighbour, content, content_type, why):
    neighbour.mode, neighbour.content, neighbour.content_type = "body", content, content_type
    resp, _ = matte_via(neighbour.url)
    assert why in assert_api_error(resp, 502, "segmentation_bad_response")["message"]


@pytest.mark.parametrize(
    ("status", "code", "expected_status", "expected_code"),
    [
        (500, "internal_error", 502, "segmentation_bad_response"),
        (404, "not_found", 502, "segmentation_bad_response"),  # our call, not the client's
        (503, "not_ready", 503, "segmentation_unavailable"),
        (422, "no_subject", 422, "no_subject"),
        (400, "invalid_parameter", 400, "invalid_parameter"),
        (413, "image_too_large", 413, "image_too_large"),
    ],
)
def test_error_statuses_are_mapped(matte_via, neighbour, status, code, expected_status,
                                   expected_code):
    neighbour.mode, neighbour.status, neighbour.code = "status", status, code
    neighbour.message = f"neighbour says {code}"
    resp, _ = matte_via(neighbour.url)
    error = assert_api_error(resp, expected_status, expected_code)
    if expected_code == code:  # passed through: the same message
        assert error["message"] == f"neighbour says {code}"


def test_a_busy_neighbour_is_503_overloaded_with_its_retry_after(matte_via, neighbour):
    """The segmentation service's memory budget or queue is taken: the client is told to wait
    as long as the neighbour says, not that the service is unreachable."""
    neighbour.mode, neighbour.status, neighbour.code = "status", 503, "overloaded"
    neighbour.headers = {"Retry-After": "7"}
    resp, _ = matte_via(neighbour.url)
    error = assert_api_error(resp, 503, "overloaded")
    assert resp.headers["Retry-After"] == "7" and "busy" in error["message"]


def test_recovers_by_itself_when_the_neighbour_is_back(
    matte_via, make_neighbour, offline_services, sample_photo
):
    seg, _ = offline_services
    photo = np.asarray(Image.fromarray(sample_photo).resize((128, 128)))
    relay = make_neighbour()
    relay.target, relay.mode = seg.url, "relay"
    timeout = 5.0  # the real model on 2 shared cores: generous, yet a sleeper exceeds it
    post = lambda: matte_via(relay.url, photo, timeout)[0]

    assert post().status_code == 503  # not started yet: nothing listens
    relay.start()
    resp = post()
    assert resp.status_code == 200, resp.get_json()
    assert resp.headers["X-Segmentation-Backend"] == "modnet"

    relay.mode, relay.delay = "sleep", timeout + 1.0
    assert post().status_code == 504
    relay.mode = "relay"
    resp = post()
    assert resp.status_code == 200, resp.get_json()

    relay.stop()  # crash: listening socket and kept-alive connections gone
    assert post().status_code == 503
    relay.start()
    resp = post()
    assert resp.status_code == 200, resp.get_json()

"""MattingClient: real answers from the running services, and the retry rule against a
scripted loopback HTTP server (it answers 503 first, then an image)."""

from __future__ import annotations

import io
from collections.abc import Iterator

import pytest
from httpfake import FakeServer, Reply
from PIL import Image

from client.api import MattingClient, MattingError, ServiceUnreachable
from service_common.serve import free_port


def test_matte_returns_image_and_headers(offline_services, sample_photo, encode_png):
    small = encode_png(sample_photo[::4, ::4].copy())  # 128 x 128
    with MattingClient(offline_services[1].url, timeout=60) as api:
        body, headers = api.matte(small, bg_color="skyblue", format="png")
    assert headers["Content-Type"] == "image/png"
    assert headers["X-Matting-Backend"] == "closed_form"
    img = Image.open(io.BytesIO(body))
    assert img.size == (128, 128) and img.mode == "RGB"


def test_api_errors_are_typed(offline_services, encode_png, sample_photo):
    small = encode_png(sample_photo[::8, ::8].copy())
    with MattingClient(offline_services[1].url, timeout=60) as api:
        with pytest.raises(MattingError) as err:
            api.matte(small, bg_color="not-a-colour")
        assert (err.value.code, err.value.status) == ("invalid_parameter", 400)
        assert err.value.request_id
        with pytest.raises(MattingError) as err:
            api.matte(b"this is text, not an image")
        assert err.value.code == "invalid_image"
        with pytest.raises(TypeError, match="bg_colour"):
            api.matte(small, bg_colour="red")


@pytest.fixture
def scripted() -> Iterator[tuple[FakeServer, list[Reply]]]:
    """A loopback server answering the replies the test queues in the list, in order."""
    script: list[Reply] = []
    with FakeServer(lambda request: script.pop(0)) as server:
        yield server, script


def _error(status: int, code: str) -> Reply:
    return Reply.json(status, {"error": {"code": code, "message": code, "request_id": "r1"}})


def test_503_is_retried_once(scripted):
    server, script = scripted
    script += [_error(503, "segmentation_unavailable"), Reply(200, b"PNGDATA", "image/png")]
    with MattingClient(server.url, timeout=5, backoff=0.01) as api:
        body, headers = api.matte(b"img")
    assert body == b"PNGDATA" and server.count == 2


def test_second_504_is_reported(scripted):
    server, script = scripted
    script += [_error(504, "segmentation_timeout")] * 2
    with MattingClient(server.url, timeout=5, backoff=0.01) as api, pytest.raises(MattingError) as err:
        api.matte(b"img")
    assert (err.value.code, err.value.status, server.count) == ("segmentation_timeout", 504, 2)


def test_other_errors_are_not_retried(scripted):
    server, script = scripted
    script += [_error(422, "no_subject"), Reply(502, b"<html>bad gateway</html>", "text/html")]
    with MattingClient(server.url, timeout=5, backoff=0.01) as api:
        with pytest.raises(MattingError) as err:
            api.matte(b"img")
        assert (err.value.code, server.count) == ("no_subject", 1)
        with pytest.raises(MattingError) as err:
            api.matte(b"img")
        assert err.value.code == "http_502" and "bad gateway" in err.value.message


def test_unreachable_service_says_how_to_start_it():
    with MattingClient(f"http://127.0.0.1:{free_port()}", timeout=5, backoff=0.01) as api, \
            pytest.raises(ServiceUnreachable) as err:
        api.matte(b"img")
    assert err.value.code == "service_unreachable"
    assert "make serve" in str(err.value)

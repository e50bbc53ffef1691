"""MattingClient: real answers from the running services, and the retry rule against a
scripted loopback HTTP server (it answers 503 first, then an image)."""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
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


class _Scripted(BaseHTTPRequestHandler):
    """Answers the queued (status, body) pairs in order, counting requests."""

    script: list[tuple[int, bytes, str]] = []
    seen = 0

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        type(self).seen += 1
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        status, body, ctype = self.script.pop(0)
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def scripted_server() -> Iterator[tuple[str, type[_Scripted]]]:
    handler = type("Handler", (_Scripted,), {"script": [], "seen": 0})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler
    finally:
        server.shutdown()
        server.server_close()


def _error(code: str) -> bytes:
    return json.dumps({"error": {"code": code, "message": code, "request_id": "r1"}}).encode()


def test_503_is_retried_once(scripted_server):
    url, handler = scripted_server
    handler.script = [(503, _error("segmentation_unavailable"), "application/json"),
                      (200, b"PNGDATA", "image/png")]
    with MattingClient(url, timeout=5, backoff=0.01) as api:
        body, headers = api.matte(b"img")
    assert body == b"PNGDATA" and handler.seen == 2


def test_second_504_is_reported(scripted_server):
    url, handler = scripted_server
    handler.script = [(504, _error("segmentation_timeout"), "application/json")] * 2
    with MattingClient(url, timeout=5, backoff=0.01) as api, pytest.raises(MattingError) as err:
        api.matte(b"img")
    assert (err.value.code, err.value.status, handler.seen) == ("segmentation_timeout", 504, 2)


def test_other_errors_are_not_retried(scripted_server):
    url, handler = scripted_server
    handler.script = [(422, _error("no_subject"), "application/json"),
                      (502, b"<html>bad gateway</html>", "text/html")]
    with MattingClient(url, timeout=5, backoff=0.01) as api:
        with pytest.raises(MattingError) as err:
            api.matte(b"img")
        assert (err.value.code, handler.seen) == ("no_subject", 1)
        with pytest.raises(MattingError) as err:
            api.matte(b"img")
        assert err.value.code == "http_502" and "bad gateway" in err.value.message


def test_unreachable_service_says_how_to_start_it():
    with MattingClient(f"http://127.0.0.1:{free_port()}", timeout=5, backoff=0.01) as api, \
            pytest.raises(ServiceUnreachable) as err:
        api.matte(b"img")
    assert err.value.code == "service_unreachable"
    assert "make serve" in str(err.value)

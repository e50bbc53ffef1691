"""MattingClient trusts no answer: server text made printable, one deadline across the retry,
pooled connections unharmed by deadlines, results typed and decoded (issue 24, item 14).
The CLI's side of the same cases is in test_hostile_server_cli.py."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator

import numpy as np
import pytest
from httpfake import FakeServer, Reply, Request
from PIL import Image

from client.api import MAX_TEXT_BYTES, MattingClient, MattingError, check_image, printable


@pytest.mark.parametrize(("text", "shown"), [
    ("plain words", "plain words"),
    ("\x1b[31mred\x1b[0m and \x1b[1;4mbold\x1b[m", "red and bold"),
    ("a\x1b]0;window title\x07b", "ab"),
    ("a\x1b]8;;http://evil.example\x1b\\link\x1b]8;;\x1b\\b", "alinkb"),
    ("x\x1bPdevice control\x1b\\y", "xy"),
    ("8-bit \x9b31mcsi\x9d0;osc\x9c done", "8-bit csi done"),
    ("bell\x07 back\x08space nul\x00 del\x7f c1\x85", "bell backspace nul del c1"),
    ("line one\nline two\r\n\ttabbed", "line one line two tabbed"),
    ("right-to-left \u202eevil\u202c override", "right-to-left evil override"),
    ("unicode stays: é, 漢字, 🙂", "unicode stays: é, 漢字, 🙂"),
    ("x" * 400, "x" * 297 + "..."),
])
def test_printable(text: str, shown: str):
    assert printable(text) == shown


def _png(size: tuple[int, int] = (8, 6), fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.zeros((size[1], size[0], 3), np.uint8)).save(buf, format=fmt)
    return buf.getvalue()


@pytest.mark.parametrize(("fmt", "mime", "requested"), [
    ("PNG", "image/png", "png"), ("JPEG", "image/jpeg", "jpg"), ("WEBP", "image/webp", "webp"),
    ("TIFF", "image/tiff", "tiff"),
    ("PNG", "image/png; charset=binary", None), ("JPEG", "IMAGE/JPEG", "auto"),
])
def test_check_image_accepts_whole_images(fmt: str, mime: str, requested: str | None):
    assert check_image(_png((9, 7), fmt), mime, requested) == (9, 7)


def test_check_image_refuses_what_is_not_one(monkeypatch):
    for body, mime, requested, words in [
        (_png(), "text/html", None, "text/html, not an image"),
        (_png(), None, None, "of no type, not an image"),
        (_png(fmt="WEBP"), "image/webp", "png", "png was asked for and the answer is image/webp"),
        (b"GIF89a" + b"\0" * 20, "image/png", None, "not a whole PNG image (26 bytes, not recognised)"),
    ]:
        with pytest.raises(MattingError) as err:
            check_image(body, mime, requested)
        assert err.value.code == "bad_response" and words in err.value.message, err.value.message
    monkeypatch.setattr("client.api.MAX_ANSWER_PIXELS", 40)
    with pytest.raises(MattingError, match="a 8x6 image, more than the 40 pixels"):
        check_image(_png(), "image/png")


def test_check_image_refuses_a_tiff_of_too_many_strips_before_opening_it(monkeypatch):
    """Pillow builds a step per strip when it opens a TIFF (a million one-row strips: 3.5 s,
    0.7 GB): the count is read from the header first."""
    tiff = _png((8, 6), "TIFF")
    assert check_image(tiff, "image/tiff", "tiff") == (8, 6)
    monkeypatch.setattr("client.api.MAX_ANSWER_TIFF_BLOCKS", 0)
    opened = []
    monkeypatch.setattr("client.api.Image.open", lambda *a, **k: opened.append(a))
    with pytest.raises(MattingError, match="a TIFF of 1 strips or tiles, more than the 0") as err:
        check_image(tiff, "image/tiff", None)
    assert err.value.code == "bad_response" and not opened


@pytest.fixture
def scripted() -> Iterator[tuple[FakeServer, list[Reply]]]:
    """A loopback server answering the replies the test queues, in order."""
    script: list[Reply] = []
    with FakeServer(lambda request: script.pop(0)) as server:
        yield server, script


def _drip(n: int) -> Iterator[bytes]:
    for _ in range(n):
        time.sleep(0.5)
        yield b"x"


def test_the_deadline_covers_the_retry(scripted):
    """A 503 (retried) and then a drip: one deadline for both, so the call ends with the
    timeout sentence instead of waiting out the 30 s drip."""
    server, script = scripted
    script += [Reply.json(503, {"error": {"code": "busy", "message": "busy"}}),
               Reply(200, _drip(60), "image/png", length=60)]
    with MattingClient(server.url, timeout=2, backoff=0.01) as api, pytest.raises(MattingError) as err:
        api.matte(b"img")
    assert err.value.code == "timeout" and server.count == 2
    assert "within 2 s" in err.value.message


def test_pooled_connections_outlive_their_deadlines(scripted):
    """Calls on pooled keep-alive connections keep working once earlier calls' deadlines have
    passed (a finished call's timer is cancelled; one that strikes late only cuts the
    connection it was given while that still carries its call)."""
    server, script = scripted
    png = _png()
    script += [Reply(200, png, "image/png") for _ in range(4)]
    with MattingClient(server.url, timeout=1.5, backoff=0.01) as api:
        for _ in range(2):
            assert api.matte(b"img")[0] == png
        time.sleep(1.7)  # past the first calls' deadlines
        for _ in range(2):
            assert api.matte(b"img")[0] == png
    assert server.count == 4  # no retry was needed


def test_matte_wants_an_image_type(scripted):
    server, script = scripted
    script += [Reply(200, _png(), "text/plain", {"X-Request-Id": "r\x1b[2J7"})]
    with MattingClient(server.url, timeout=5) as api, pytest.raises(MattingError) as err:
        api.matte(b"img")
    assert err.value.code == "bad_response" and "text/plain, not an image" in err.value.message
    assert err.value.request_id == "r7"


def test_ready_wants_a_json_object(scripted):
    server, script = scripted
    script += [Reply(200, b"<html>login</html>", "text/html"), Reply.json(200, ["ready"])]
    with MattingClient(server.url, timeout=5) as api:
        for _ in range(2):
            with pytest.raises(MattingError, match="did not answer a JSON object"):
                api.ready()


def test_a_long_error_page_is_cut(scripted):
    """An error answer is read up to MAX_TEXT_BYTES and its message is one short line."""
    server, script = scripted
    script += [Reply(500, b"<p>oops</p>\n" * (4 * MAX_TEXT_BYTES // 12), "text/html")]
    with MattingClient(server.url, timeout=5) as api, pytest.raises(MattingError) as err:
        api.matte(b"img")
    assert err.value.code == "http_500" and len(err.value.message) <= 200
    assert err.value.message.startswith("<p>oops</p> <p>oops</p>")


def test_a_request_sees_no_redirect_followed(scripted):
    server, script = scripted
    script += [Reply(308, b"", "text/plain", {"Location": "http://127.0.0.1:9/\x1b[31mv1/matte"})]
    with MattingClient(server.url, timeout=5) as api, pytest.raises(MattingError) as err:
        api.matte(b"img")
    assert err.value.code == "redirect" and err.value.status == 308
    assert "a redirect to http://127.0.0.1:9/v1/matte" in err.value.message


def test_the_photo_goes_whole_once_to_the_server_named(scripted):
    """The watched connections still send the request as before."""
    server, script = scripted
    script += [Reply(200, _png(), "image/png")]
    with MattingClient(server.url, timeout=5) as api:
        api.matte(b"PHOTO-BYTES", filename="me.jpg", bg_color="red")
    request: Request = server.received[0]
    assert request.path == "/v1/matte?bg_color=red" and request.body == b"PHOTO-BYTES"


def test_json_nested_past_the_stack_is_just_text(scripted):
    """An error answer (or /readyz) of 30,000 nested brackets: a sentence, not a RecursionError."""
    server, script = scripted
    nested = b"[" * 30_000 + b"]" * 30_000
    script += [Reply(500, nested, "application/json"), Reply(200, nested, "application/json")]
    with MattingClient(server.url, timeout=5) as api:
        with pytest.raises(MattingError) as err:
            api.matte(b"img")
        assert err.value.code == "http_500" and err.value.message.startswith("[[[")
        with pytest.raises(MattingError, match="did not answer a JSON object"):
            api.ready()

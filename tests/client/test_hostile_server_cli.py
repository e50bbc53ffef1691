"""The image CLI against a malicious server on 127.0.0.1 (issue 24, item 14).

Whatever answers, nothing but a whole image of the format asked for is written, and every
failure ends with a sentence and exit code 1, never a traceback: garbage, an HTML page, a
wrong Content-Type, a negative Content-Length, a body too large (declared, or a gzip bomb),
an answer that drips past ``--timeout``, a redirect (never followed with the photo), a body
cut short, a bad chunk, corrupt gzip, a reset; and the server's text reaches the terminal
without its escape sequences.
"""

from __future__ import annotations

import gzip
import io
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from hostile_server import HostileServer, Raw, head
from httpfake import HANG_UP, FakeServer, HangUp, Reply, Request
from PIL import Image

from client.cli import main
from service_common.config import REPO_ROOT


class Scripted(HostileServer):
    """Answers every request with :attr:`reply` (``/readyz`` as well)."""

    reply: Reply | Raw | HangUp = Reply(500)

    def answer(self, request: Request) -> Reply | Raw | HangUp:
        return self.reply


@pytest.fixture
def server() -> Iterator[Scripted]:
    with Scripted() as fake:
        yield fake


def _image(fmt: str = "PNG", size: tuple[int, int] = (8, 6)) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.full((size[1], size[0], 3), 200, np.uint8)).save(buf, format=fmt)
    return buf.getvalue()


@pytest.fixture
def photo(tmp_path: Path) -> Path:
    path = tmp_path / "photo.png"
    path.write_bytes(_image())
    return path


def _run(server: FakeServer, photo: Path, out: Path, *extra: str) -> int:
    return main([str(photo), str(out), "--server", server.url, "--color", "white",
                 "--timeout", "20", *extra])


def _failed(capsys, out: Path) -> str:
    """stderr of a run that must have failed cleanly: no file, a sentence, no traceback."""
    err = capsys.readouterr().err
    assert not out.exists()
    assert not [p for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.")]  # no temp left
    assert "Traceback" not in err and err.startswith("error: ")
    return err


def test_a_real_image_is_written(server: Scripted, photo: Path, tmp_path: Path, capsys):
    """The control case: a whole PNG, also gzip-encoded, is written with exit 0."""
    png = _image()
    for reply in (Reply(200, png, "image/png"),
                  Reply(200, gzip.compress(png), "image/png", {"Content-Encoding": "gzip"})):
        server.reply = reply
        out = tmp_path / "result.png"
        out.unlink(missing_ok=True)
        assert _run(server, photo, out) == 0, capsys.readouterr().err
        assert out.read_bytes() == png


@pytest.mark.parametrize(("reply", "words"), [
    (Reply(200, b"0123456789", "image/png"), "not a whole PNG image (10 bytes, not recognised)"),
    (Reply(200, b"<html><form>Log in</form></html>", "text/html; charset=utf-8"),
     "text/html, not an image"),
    (Reply(200, _image(), "application/octet-stream"), "application/octet-stream, not an image"),
    (Reply(200, _image(), ""), "not an image"),
    (Reply(200, _image("JPEG"), "image/png"), "not a whole PNG image"),
    (Reply(200, _image()[:-20], "image/png"), "not a whole PNG image"),
    (Reply(200, _image("JPEG"), "image/jpeg"), "png was asked for and the answer is image/jpeg"),
    (Raw(head(Content_Type="image/png", Content_Length="-5") + _image()), "invalid Content-Length (-5)"),
], ids=["garbage", "html-login-page", "octet-stream", "no-type", "jpeg-as-png", "truncated-png",
        "other-format", "negative-length"])
def test_what_is_not_the_image_asked_for_is_never_saved(server: Scripted, photo: Path, tmp_path: Path,
                                                        capsys, reply, words):
    server.reply = reply
    out = tmp_path / "result.png"
    assert _run(server, photo, out) == 1
    err = _failed(capsys, out)
    assert words in err and "bad_response" in err


def test_a_declared_600_mb_answer_is_refused_unread(server: Scripted, photo: Path, tmp_path: Path,
                                                    capsys):
    mib = b"\0" * 2**20
    server.reply = Reply(200, (mib for _ in range(600)), "image/png", length=600 * 2**20)
    out = tmp_path / "result.png"
    assert _run(server, photo, out) == 1
    err = _failed(capsys, out)
    assert "larger than 256 MiB" in err and "answer_too_large" in err


def _bomb(decoded_mib: int) -> bytes:
    """A gzip body of ``decoded_mib`` MiB of zeros: the same 16 MiB member repeated (gzip
    readers join members), about 1 KB per MiB."""
    member = gzip.compress(b"\0" * (16 * 2**20), compresslevel=9)
    return member * (decoded_mib // 16)


def test_a_gzip_bomb_stops_at_the_cap(server: Scripted, photo: Path, tmp_path: Path, capsys,
                                      monkeypatch):
    """0.5 MB of gzip that would be 512 MiB: reading stops after the cap (4 MiB here)."""
    monkeypatch.setattr("client.api.MAX_ANSWER_BYTES", 4 * 2**20)
    body = _bomb(512)
    assert len(body) < 600_000
    server.reply = Reply(200, body, "image/png", {"Content-Encoding": "gzip"})
    out = tmp_path / "result.png"
    assert _run(server, photo, out) == 1
    err = _failed(capsys, out)
    assert "larger than 4 MiB" in err and "answer_too_large" in err


def test_a_chunked_answer_without_length_stops_at_the_cap(server: Scripted, photo: Path,
                                                          tmp_path: Path, capsys, monkeypatch):
    monkeypatch.setattr("client.api.MAX_ANSWER_BYTES", 2**20)
    chunk = b"10000\r\n" + b"\0" * 0x10000 + b"\r\n"  # 64 KiB per chunk, 32 of them: 2 MiB
    server.reply = Raw([head(Content_Type="image/png", Transfer_Encoding="chunked")]
                       + [chunk] * 32 + [b"0\r\n\r\n"])
    out = tmp_path / "result.png"
    assert _run(server, photo, out) == 1
    assert "larger than 1 MiB" in _failed(capsys, out)


def _drip(seconds: int) -> Iterator[bytes]:
    for _ in range(seconds):
        yield b"\x89"
        time.sleep(1)


@pytest.mark.parametrize("where", ["body", "headers"])
def test_timeout_is_one_deadline_not_per_read(server: Scripted, photo: Path, tmp_path: Path, where):
    """A 1 byte/s drip (of the body, or of the headers) with --timeout 3: the CLI gives up
    with its timeout sentence; the drip would last 60 s (the subprocess guard is 30 s)."""
    if where == "body":
        server.reply = Reply(200, _drip(60), "image/png", length=60)
    else:
        server.reply = Raw([b"HTTP/1.1 200 OK\r\n"] + [b"X-Drip: 1\r\n"] * 60, pause=1.0)
    out = tmp_path / "result.png"
    proc = subprocess.run(
        [sys.executable, "-m", "client", str(photo), str(out), "--server", server.url,
         "--color", "white", "--timeout", "3"],
        capture_output=True, text=True, cwd=REPO_ROOT, timeout=30,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )
    assert proc.returncode == 1, proc.stderr
    assert "no complete answer from" in proc.stderr and "within 3 s" in proc.stderr
    assert "(timeout)" in proc.stderr and "Traceback" not in proc.stderr
    assert not out.exists()


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_no_redirect_is_followed_with_the_photo(server: Scripted, photo: Path, tmp_path: Path,
                                                capsys, status):
    with FakeServer(lambda request: Reply(200, _image(), "image/png")) as elsewhere:
        server.reply = Reply(status, b"", "text/plain", {"Location": f"{elsewhere.url}/v1/matte"})
        out = tmp_path / "result.png"
        assert _run(server, photo, out) == 1
        err = _failed(capsys, out)
        assert elsewhere.count == 0  # the photo never went there
    assert server.count == 1 and f"answered {status}, a redirect to {elsewhere.url}/v1/matte" in err
    assert "--server" in err


def test_a_redirect_loop_ends_at_once(server: Scripted, photo: Path, tmp_path: Path, capsys):
    server.reply = Reply(302, b"", "text/plain", {"Location": "/v1/matte"})
    out = tmp_path / "result.png"
    assert _run(server, photo, out) == 1
    assert "redirect" in _failed(capsys, out) and server.count == 1


@pytest.mark.parametrize(("reply", "words"), [
    (Raw(head(Content_Type="image/png", Content_Length="5000") + _image()[:40]),
     "broke off before its end"),
    (Raw(head(Content_Type="image/png", Transfer_Encoding="chunked") + b"zz\r\nhello\r\n0\r\n\r\n"),
     "badly chunked"),
    (Raw(head(Content_Type="image/png", Content_Encoding="gzip", Content_Length="64") + b"\x1f\x8b"
         + b"not gzip at all" * 4 + b"xx"), "corrupt Content-Encoding"),
    (Raw([head(Content_Type="image/png", Content_Length="5000"), _image()[:40]], pause=0.2,
         reset=True), "was cut by a connection reset"),
], ids=["truncated-body", "bad-chunk", "bad-gzip", "reset-mid-body"])
def test_broken_answers_are_a_sentence(server: Scripted, photo: Path, tmp_path: Path, capsys,
                                       reply, words):
    server.reply = reply
    out = tmp_path / "result.png"
    assert _run(server, photo, out) == 1
    err = _failed(capsys, out)
    assert "bad_response" in err and words in err


@pytest.mark.parametrize("reply", [HANG_UP, Raw(b"", reset=True), Raw(b"HTTP/1.1 2")],
                         ids=["hang-up", "reset", "half-a-status-line"])
def test_no_answer_at_all_is_unreachable(server: Scripted, photo: Path, tmp_path: Path, capsys, reply):
    server.reply = reply
    out = tmp_path / "result.png"
    assert _run(server, photo, out) == 1
    err = _failed(capsys, out)
    assert "service_unreachable" in err and "make serve" in err and server.count == 2  # one retry
    assert "(closed without an answer)" in err or "(connection reset)" in err or "(no valid answer)" in err


ESCAPES = ("\x1b]0;owned\x07\x1b]8;;http://evil.example\x1b\\click\x1b]8;;\x1b\\ "
           "\x1b[31mred\x1b[0m \x9b2J\x9d0;t\x9c\x07\x08\x00\u202eevil")


@pytest.mark.parametrize("reply", [
    Reply.json(400, {"error": {"code": "bad\x1b[2Jcode", "message": ESCAPES, "request_id": "r\x1b[1m1"}}),
    Reply(502, ESCAPES.encode(), "text/html", {"X-Request-Id": "r\x1b]0;x\x07"}),
], ids=["json-error", "html-error"])
def test_server_text_is_printed_without_control_characters(server: Scripted, photo: Path,
                                                           tmp_path: Path, capsys, reply):
    server.reply = reply
    out = tmp_path / "result.png"
    assert _run(server, photo, out) == 1
    err = _failed(capsys, out)
    assert "red" in err and "click" in err and "evil" in err
    assert not [ch for ch in err if ord(ch) < 0x20 and ch != "\n" or 0x7F <= ord(ch) <= 0x9F
                or ch == "\u202e"], repr(err)
    assert "owned" not in err and "evil.example" not in err  # titles and link targets are dropped

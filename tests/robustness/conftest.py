"""Fixtures of the robustness tests: both services under a real gunicorn, with small limits.

* ``stack``: the segmentation service (U^2-Net-p) and the matting service (closed-form
  matting) under gunicorn on free loopback ports, started once per session, with small
  limits so that the limit errors are cheap to trigger (:data:`MAX_UPLOAD_MB`,
  :data:`MAX_PIXELS`), INFO logs to files (request ids are checked there) and
  ``FLASK_DEBUG=1`` / ``FLASK_ENV=development`` in their environment, which must change
  nothing.
* ``flaky`` + ``flaky_matting``: a real local HTTP server standing between a second matting
  gunicorn and the real segmentation service. It relays by default; a test makes it stop
  (crash), sleep past the timeout, trickle its answer, or answer garbage, and resets it
  afterwards. It is a misbehaving neighbour, never a model stand-in: every trimap the
  matting service uses comes from the real segmentation service.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests
from robust_inputs import MAX_PIXELS, MAX_UPLOAD_MB, SEG_CONNECT_TIMEOUT, SEG_TIMEOUT, photo_png

from service_common.serve import Service, free_port, running

COMMON_ENV = {
    "BACKDROP_LOG_LEVEL": "INFO",
    "BACKDROP_TORCH_THREADS": "1",
    "BACKDROP_MAX_UPLOAD_MB": str(MAX_UPLOAD_MB),
    "BACKDROP_MAX_PIXELS": str(MAX_PIXELS),
    # must be ignored: the services never run in debug mode
    "FLASK_DEBUG": "1",
    "FLASK_ENV": "development",
}

@dataclass(frozen=True)
class Stack:
    """The two services under test and their log files."""

    seg: Service
    mat: Service
    seg_log: Path
    mat_log: Path


@pytest.fixture(scope="session")
def stack(models_dir: Path, tmp_path_factory) -> Iterator[Stack]:
    logs = tmp_path_factory.mktemp("robustness-logs")
    env = {**COMMON_ENV, "BACKDROP_MODELS_DIR": str(models_dir)}
    seg = Service("segmentation", free_port(), timeout=60, log_path=logs / "segmentation.log",
                  env={**env, "BACKDROP_SEGMENTATION_BACKEND": "u2netp"})
    mat = Service("matting", free_port(), threads=4, timeout=60, log_path=logs / "matting.log",
                  env={**env, "BACKDROP_MATTING_BACKEND": "closed_form",
                       "BACKDROP_SEGMENTATION_URL": seg.url})
    with running(seg, mat, ready_timeout=120):
        yield Stack(seg, mat, logs / "segmentation.log", logs / "matting.log")


# ------------------------------------------------------------------ the flaky neighbour


class FlakySegmentation:
    """A local HTTP server in front of the real segmentation service.

    ``mode``: ``relay`` (forward every request to ``target`` and its answer back),
    ``sleep`` (answer nothing for ``delay`` s), ``trickle`` (send the headers at once, then
    one byte of the body every ``delay`` s), ``garbage`` (200 with ``content``).
    :meth:`stop` closes the listening socket and every open connection, as a crash would;
    :meth:`start` listens again on the same port.
    """

    def __init__(self, target: str) -> None:
        self.port = free_port()
        self.target = target
        self.mode = "relay"
        self.delay = 0.0
        self.content = b""
        self._server: ThreadingHTTPServer | None = None
        self._conns: set[socket.socket] = set()
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def reset(self) -> None:
        self.mode, self.delay, self.content = "relay", 0.0, b""
        if self._server is None:
            self.start()

    def start(self) -> FlakySegmentation:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as gunicorn: pooled connections

            def setup(self) -> None:
                super().setup()
                with owner._lock:
                    owner._conns.add(self.connection)

            def finish(self) -> None:
                with owner._lock:
                    owner._conns.discard(self.connection)
                with contextlib.suppress(OSError):
                    super().finish()

            def log_message(self, *args) -> None:  # quiet
                pass

            def _head(self, status: int, ctype: str, length: int, extra: dict | None = None) -> None:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(length))
                for key, value in (extra or {}).items():
                    self.send_header(key, value)
                self.end_headers()

            def _handle(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                try:
                    if owner.mode == "sleep":
                        time.sleep(owner.delay)
                        self._head(200, "text/plain", 4)
                        self.wfile.write(b"late")
                    elif owner.mode == "trickle":
                        self._head(200, "image/png", 10_000, {"X-Segmentation-Backend": "flaky"})
                        for _ in range(10_000):
                            self.wfile.write(b"\x89")
                            self.wfile.flush()
                            time.sleep(owner.delay)
                    elif owner.mode == "garbage":
                        self._head(200, "image/png", len(owner.content),
                                   {"X-Segmentation-Backend": "flaky"})
                        self.wfile.write(owner.content)
                    else:
                        headers = {k: v for k, v in self.headers.items()
                                   if k.lower() in ("content-type", "accept", "x-request-id")}
                        resp = requests.request(method, owner.target + self.path, data=body,
                                                headers=headers, timeout=60)
                        keep = {k: v for k, v in resp.headers.items() if k.startswith("X-")}
                        self._head(resp.status_code,
                                   resp.headers.get("Content-Type", "application/json"),
                                   len(resp.content), keep)
                        self.wfile.write(resp.content)
                except OSError:
                    self.close_connection = True

            def do_POST(self) -> None:  # noqa: N802
                self._handle("POST")

            def do_GET(self) -> None:  # noqa: N802
                self._handle("GET")

        server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        server.daemon_threads = True
        server.block_on_close = False
        self._server = server
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        with self._lock:
            conns, self._conns = list(self._conns), set()
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                conn.close()
        self._server = None


@pytest.fixture(scope="session")
def _flaky_server(stack: Stack) -> Iterator[FlakySegmentation]:
    server = FlakySegmentation(stack.seg.url).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def flaky_matting(_flaky_server: FlakySegmentation, models_dir: Path,
                  tmp_path_factory) -> Iterator[Service]:
    """A matting gunicorn whose segmentation service is the flaky neighbour."""
    log = tmp_path_factory.mktemp("flaky-logs") / "matting.log"
    mat = Service("matting", free_port(), threads=4, timeout=60, log_path=log, env={
        **COMMON_ENV, "BACKDROP_MODELS_DIR": str(models_dir),
        "BACKDROP_MATTING_BACKEND": "closed_form",
        "BACKDROP_SEGMENTATION_URL": _flaky_server.url,
        "BACKDROP_SEGMENTATION_TIMEOUT": str(SEG_TIMEOUT),
        "BACKDROP_SEGMENTATION_CONNECT_TIMEOUT": str(SEG_CONNECT_TIMEOUT),
    })
    with running(mat, ready_timeout=120):
        # the first model run of a fresh segmentation worker is slow (~5 s): not in the tests
        warm = requests.post(_flaky_server.target + "/v1/trimap", timeout=60,
                             files={"image": ("p.png", photo_png(64, 48))})
        assert warm.status_code == 200, warm.text[:300]
        yield mat


@pytest.fixture
def flaky(_flaky_server: FlakySegmentation) -> Iterator[FlakySegmentation]:
    """The neighbour, relaying; put back to relaying (and listening) after the test."""
    _flaky_server.reset()
    try:
        yield _flaky_server
    finally:
        _flaky_server.reset()

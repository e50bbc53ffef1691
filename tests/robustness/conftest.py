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

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from httpfake import FakeServer, Reply, Request, relay
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


class FlakySegmentation(FakeServer):
    """A local HTTP server (:class:`httpfake.FakeServer`) in front of the real segmentation
    service.

    ``mode``: ``relay`` (forward every request to ``target`` and its answer back),
    ``sleep`` (answer nothing for ``delay`` s), ``trickle`` (send the headers at once, then
    one byte of the body every ``delay`` s), ``garbage`` (200 with ``content``).
    :meth:`stop` closes the listening socket and every open connection, as a crash would;
    :meth:`start` listens again on the same port.
    """

    def __init__(self, target: str) -> None:
        super().__init__()
        self.target = target
        self.mode = "relay"
        self.delay = 0.0
        self.content = b""

    def reset(self) -> None:
        self.mode, self.delay, self.content = "relay", 0.0, b""
        self.start()

    def answer(self, request: Request) -> Reply:
        if self.mode == "sleep":
            time.sleep(self.delay)
            return Reply(200, b"late", "text/plain")
        if self.mode == "trickle":
            return Reply(200, self._trickle(10_000), "image/png", {"X-Segmentation-Backend": "flaky"},
                         length=10_000)
        if self.mode == "garbage":
            return Reply(200, self.content, "image/png", {"X-Segmentation-Backend": "flaky"})
        return relay(request, self.target, forward=("content-type", "accept", "x-request-id"))

    def _trickle(self, n: int) -> Iterator[bytes]:
        for _ in range(n):
            yield b"\x89"
            time.sleep(self.delay)


@pytest.fixture(scope="session")
def _flaky_server(stack: Stack) -> Iterator[FlakySegmentation]:
    with FlakySegmentation(stack.seg.url) as server:
        yield server


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

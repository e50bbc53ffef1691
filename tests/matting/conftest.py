"""Fixtures of the matting tests.

* ``closed_form``: the real offline matting backend, built and warmed up once.
* ``make_app(**settings)``: the matting app in-process with that backend; by default its
  segmentation URL points at a port where nothing listens.
* ``scene``: a small synthetic photo (a white disc with a soft edge on a green/blue
  gradient) with its trimap and true alpha.
* ``neighbour``: a tiny local HTTP server standing in for a *failing* segmentation service
  (too slow, garbage, error statuses) - or relaying to the real one started by
  ``offline_services``. It is a misbehaving neighbour, not a model stand-in: every
  successful trimap in these tests comes from the real segmentation service.
* ``png(array)``: array -> PNG bytes; ``decode(bytes)``: bytes -> array.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest
from httpfake import HANG_UP, FakeServer, HangUp, Reply, Request, relay
from PIL import Image

from matting_api import create_app
from matting_api.backends.closed_form import ClosedFormBackend
from service_common.config import Settings
from service_common.serve import free_port


@pytest.fixture(scope="session")
def closed_form() -> ClosedFormBackend:
    backend = ClosedFormBackend()
    backend.warm_up()
    return backend


@pytest.fixture(scope="session")
def dead_url() -> str:
    """A URL where nothing listens."""
    return f"http://127.0.0.1:{free_port()}"


@pytest.fixture
def make_app(closed_form, dead_url) -> Callable[..., Any]:
    """``make_app(**settings_overrides) -> Flask app`` with the warmed closed-form backend."""

    def _make(backend=None, **overrides):
        base = {
            "matting_backend": "closed_form",
            "segmentation_url": dead_url,
            "segmentation_connect_timeout": 1.0,
            "segmentation_timeout": 5.0,
            "log_level": "WARNING",
            "max_pixels": 4_000_000,
        }
        base.update(overrides)
        return create_app(Settings(**base), matting_backend=backend or closed_form)

    return _make


@pytest.fixture
def client(make_app):
    return make_app().test_client()


def _png(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def _decode(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)))


@pytest.fixture(scope="session")
def png() -> Callable[[np.ndarray], bytes]:
    return _png


@pytest.fixture(scope="session")
def decode() -> Callable[[bytes], np.ndarray]:
    return _decode


class Scene:
    """A 64 x 64 synthetic photo: white disc (radius 18, soft 4-px edge) on a gradient.

    Attributes:
        rgb: ``64 x 64 x 3`` uint8.
        alpha: ``64 x 64`` float32, the true matte.
        trimap: ``64 x 64`` uint8 0/128/255 (unknown band 3 px wider than the soft edge).
    """

    size = 64
    centre = (32, 32)

    def __init__(self) -> None:
        n = self.size
        yy, xx = np.mgrid[:n, :n].astype(np.float32)
        dist = np.hypot(xx - self.centre[0], yy - self.centre[1])
        self.alpha = np.clip((20.0 - dist) / 4.0, 0.0, 1.0).astype(np.float32)
        bg = np.zeros((n, n, 3), dtype=np.float32)
        bg[..., 1] = 0.8  # green
        bg[..., 2] = xx / (n - 1)  # blue ramp
        fg = np.ones((n, n, 3), dtype=np.float32)
        a = self.alpha[..., None]
        # mixed in sRGB values, as matting data sets (Composition-1k, alphamatting.com) are
        self.rgb = np.round((a * fg + (1 - a) * bg) * 255).astype(np.uint8)
        self.trimap = np.full((n, n), 128, dtype=np.uint8)
        self.trimap[dist <= 13] = 255
        self.trimap[dist >= 23] = 0


@pytest.fixture(scope="session")
def scene() -> Scene:
    return Scene()


# ------------------------------------------------------------------ the failing neighbour


class Neighbour(FakeServer):
    """A local HTTP server (:class:`httpfake.FakeServer`) whose behaviour the test sets.

    ``mode``: ``relay`` (forward to ``target``), ``sleep`` (answer after ``delay`` s),
    ``status`` (answer ``status`` with JSON ``{"error": {"code", "message"}}`` and ``headers``),
    ``body`` (answer 200 with ``content`` and ``content_type``), ``hangup`` (close the
    connection without answering). ``stop()`` closes the listening socket *and* every open
    connection, as a crashed process would; ``start()`` listens again on the same port;
    ``count`` is the number of requests it got.
    """

    def __init__(self, port: int | None = None) -> None:
        super().__init__(port=port)
        self.mode = "status"
        self.target = ""
        self.delay = 0.0
        self.status = 500
        self.code = "internal_error"
        self.message = "boom"
        self.headers: dict[str, str] = {}
        self.content = b""
        self.content_type = "image/png"

    def answer(self, request: Request) -> Reply | HangUp:
        if self.mode == "relay":
            return relay(request, self.target)
        if self.mode == "sleep":
            time.sleep(self.delay)
            return Reply(200, b"late", "text/plain")
        if self.mode == "body":
            return Reply(200, self.content, self.content_type, {"X-Segmentation-Backend": "neighbour"})
        if self.mode == "hangup":
            return HANG_UP
        return Reply.json(self.status, {"error": {"code": self.code, "message": self.message}},
                          self.headers)


@pytest.fixture
def neighbour() -> Iterator[Neighbour]:
    """A started :class:`Neighbour` (answering 500 until told otherwise), stopped after."""
    with Neighbour() as n:
        yield n


@pytest.fixture
def make_neighbour() -> Iterator[Callable[..., Neighbour]]:
    """``make_neighbour(port=None)``: an unstarted :class:`Neighbour`; stopped after."""
    made: list[Neighbour] = []

    def _make(port: int | None = None) -> Neighbour:
        n = Neighbour(port)
        made.append(n)
        return n

    yield _make
    for n in made:
        n.stop()

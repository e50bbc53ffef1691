"""One fake HTTP server for the tests: the plumbing once, the behaviour per test.

:class:`FakeServer` is a real threaded HTTP/1.1 server on ``127.0.0.1`` (keep-alive, as
gunicorn: clients pool their connections), on a port chosen free when it is made, quiet.
What it answers is a function of the request, ``answer(request) -> Reply | HANG_UP``: pass
one to the constructor, or override :meth:`FakeServer.answer` in a subclass whose
attributes the test sets (a *mode*). Every request is recorded in
:attr:`FakeServer.received` before it is answered.

:meth:`FakeServer.stop` closes the listening socket *and* every open connection, as a
crashed process would; :meth:`FakeServer.start` listens again on the same port. It is a
context manager too (``with FakeServer(answer) as server: ...``).

Imported by its bare name (``from httpfake import FakeServer``), like the folders' own
helper modules: ``tests/`` is on ``sys.path`` because ``tests/conftest.py`` lives there.
"""

from __future__ import annotations

import contextlib
import json
import socket
import sys
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import requests

from service_common.serve import free_port


@dataclass(frozen=True)
class Request:
    """One request the server got: ``headers`` reads case-insensitively (``.get("Range")``)."""

    method: str
    path: str
    headers: Message
    body: bytes


@dataclass(frozen=True)
class Reply:
    """What to answer. ``body`` is bytes, or an iterable of chunks (each written and flushed
    when the iterable yields it: a slow answer); then ``length`` is the Content-Length."""

    status: int = 200
    body: bytes | Iterable[bytes] = b""
    content_type: str = "application/octet-stream"
    headers: Mapping[str, str] = field(default_factory=dict)
    length: int | None = None

    @classmethod
    def json(cls, status: int, payload: Any, headers: Mapping[str, str] | None = None) -> Reply:
        return cls(status, json.dumps(payload).encode(), "application/json", headers or {})


class HangUp:
    """Close the connection without answering, as a process dying mid-request would."""

    def __repr__(self) -> str:
        return "HANG_UP"


HANG_UP = HangUp()

Answer = Callable[[Request], Reply | HangUp]


def relay(request: Request, target: str, forward: Iterable[str] = ("content-type",),
          timeout: float = 60) -> Reply:
    """Send ``request`` on to ``target`` (a base URL) with its ``forward`` headers; the answer
    comes back with its status, body, Content-Type and ``X-*`` headers."""
    wanted = {name.lower() for name in forward}
    headers = {k: v for k, v in request.headers.items() if k.lower() in wanted}
    resp = requests.request(request.method, target + request.path, data=request.body,
                            headers=headers, timeout=timeout)
    keep = {k: v for k, v in resp.headers.items() if k.startswith("X-")}
    return Reply(resp.status_code, resp.content, resp.headers.get("Content-Type", "application/json"),
                 keep)


class FakeServer:
    """A local HTTP server whose answers a function (or a subclass's :meth:`answer`) gives.

    Args:
        answer: ``answer(request) -> Reply | HANG_UP``; without it, override :meth:`answer`.
        port: the port to listen on (kept across :meth:`stop` / :meth:`start`); default a
            free one.
    """

    def __init__(self, answer: Answer | None = None, port: int | None = None) -> None:
        self.port = port or free_port()
        if answer is not None:
            self.answer = answer  # type: ignore[method-assign]
        #: every request received, in order (across restarts)
        self.received: list[Request] = []
        self._server: _Server | None = None
        self._conns: set[socket.socket] = set()
        self._lock = threading.Lock()

    def answer(self, request: Request) -> Reply | HangUp:
        raise NotImplementedError("pass answer= or override FakeServer.answer")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def count(self) -> int:
        """How many requests it got."""
        return len(self.received)

    @property
    def running(self) -> bool:
        return self._server is not None

    def start(self) -> FakeServer:
        """Listen on :attr:`port` (again); nothing happens if it listens already."""
        if self._server is None:
            self._server = _Server(("127.0.0.1", self.port), self)
            threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                             daemon=True).start()
        return self

    def stop(self) -> None:
        """Close the listening socket and every open connection, as a crash would."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        with self._lock:
            conns, self._conns = list(self._conns), set()
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                conn.close()

    def __enter__(self) -> FakeServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _opened(self, conn: socket.socket) -> None:
        with self._lock:
            self._conns.add(conn)

    def _closed(self, conn: socket.socket) -> None:
        with self._lock:
            self._conns.discard(conn)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, address: tuple[str, int], fake: FakeServer) -> None:
        self.fake = fake
        super().__init__(address, _Handler)

    def handle_error(self, request, client_address) -> None:
        """Connections cut by :meth:`FakeServer.stop` or by the client are no news."""
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as gunicorn: pooled connections
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.server.fake._opened(self.connection)

    def finish(self) -> None:
        self.server.fake._closed(self.connection)
        with contextlib.suppress(OSError):
            super().finish()

    def log_message(self, *args: object) -> None:  # quiet
        pass

    def _handle(self) -> None:
        fake = self.server.fake
        try:
            length = int(self.headers.get("Content-Length") or 0)
            request = Request(self.command, self.path, self.headers,
                              self.rfile.read(length) if length else b"")
            fake.received.append(request)
            reply = fake.answer(request)
            if isinstance(reply, HangUp):
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
            else:
                self._send(reply)
        except OSError:
            self.close_connection = True

    def _send(self, reply: Reply) -> None:
        chunks = [reply.body] if isinstance(reply.body, bytes) else reply.body
        length = len(reply.body) if isinstance(reply.body, bytes) else reply.length
        assert length is not None, "a Reply with a chunked body needs its length"
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(length))
        for key, value in reply.headers.items():
            self.send_header(key, value)
        self.end_headers()
        for chunk in chunks:
            self.wfile.write(chunk)
            self.wfile.flush()

    do_GET = do_POST = do_PUT = do_DELETE = _handle

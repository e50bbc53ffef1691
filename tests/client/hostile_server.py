"""The project's fake HTTP server (``tests/httpfake.py``) taught to send raw bytes.

:class:`HostileServer` is :class:`httpfake.FakeServer` (same threads, same recording of
requests, same ``answer(request)`` per test) whose answer may also be a :class:`Raw`: bytes
written to the socket exactly as given (status line, headers and body, however malformed),
chunk by chunk with a pause between chunks if asked, after which the connection is closed,
with a FIN or, with ``reset``, an RST. That is what a malicious or broken server does and
what :class:`httpfake.Reply` cannot express: a negative Content-Length, a body shorter than
its length, a bad chunk, a connection reset in the middle of an answer.

Imported by its bare name (``from hostile_server import HostileServer, Raw``), as the other
helper modules of ``tests/client``.
"""

from __future__ import annotations

import socket
import struct
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from http.server import ThreadingHTTPServer

from httpfake import FakeServer, Reply, _Handler, _Server


@dataclass(frozen=True)
class Raw:
    """Bytes to write as they are, then close the connection.

    Attributes:
        data: the bytes, or chunks of them (each written and flushed on its own).
        pause: seconds to wait before each chunk after the first (a drip).
        reset: close with an RST (``SO_LINGER`` 0) instead of a FIN.
    """

    data: bytes | Iterable[bytes]
    pause: float = 0.0
    reset: bool = False


def head(status: str = "200 OK", **headers: str) -> bytes:
    """A status line and headers, ending with the blank line: ``head(Content_Type="x")``
    writes ``Content-Type: x`` (underscores become dashes)."""
    lines = [f"HTTP/1.1 {status}"] + [f"{k.replace('_', '-')}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


class _HostileHandler(_Handler):
    def _send(self, reply: Reply | Raw) -> None:  # type: ignore[override]
        if not isinstance(reply, Raw):
            super()._send(reply)
            return
        self.close_connection = True
        chunks = [reply.data] if isinstance(reply.data, bytes) else reply.data
        for number, chunk in enumerate(chunks):
            if number and reply.pause:
                time.sleep(reply.pause)
            self.wfile.write(chunk)
            self.wfile.flush()
        if reply.reset:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()


class _HostileServer(_Server):
    def __init__(self, address: tuple[str, int], fake: FakeServer) -> None:
        self.fake = fake
        ThreadingHTTPServer.__init__(self, address, _HostileHandler)


class HostileServer(FakeServer):
    """A :class:`httpfake.FakeServer` whose ``answer`` may return :class:`Raw` bytes."""

    def start(self) -> HostileServer:
        """Listen on :attr:`port` (again); nothing happens if it listens already."""
        if self._server is None:
            self._server = _HostileServer(("127.0.0.1", self.port), self)
            threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                             daemon=True).start()
        return self

"""The buffering front of each service: an asyncio HTTP/1.1 server in front of gunicorn.

Why it exists: gunicorn's threaded workers read a request in the thread that will run it, so
a client that sends its headers or its body slowly holds that thread; four such connections
stopped the matting service (4 threads), one the segmentation service. gunicorn has no
header or body deadline. The front reads every request *completely*, under deadlines, with
thousands of idle connections costing a few kilobytes each, and only then hands it to
gunicorn over a Unix socket, where gunicorn reads it at memory speed. gunicorn stays the
application server; the front is what listens on the service's port.

What it does on the way:

* **deadlines**: the head of a request (request line and headers) within
  ``BACKDROP_CLIENT_TIMEOUT`` seconds of its first byte (and of the previous request on a
  kept-alive connection); the body at no less than ``BACKDROP_CLIENT_MIN_KBPS`` KB/s after
  that grace, measured on what has arrived so far (after ``t`` seconds at least
  ``(t - grace) x rate`` bytes; the length the client declared does not lengthen the
  deadline), and no pause in the body longer than the grace. A client past either gets 408
  ``client_timeout`` and is disconnected. An answer must be read at that rate too, or the
  connection is dropped.
* **memory**: a body is held only while it is read and until gunicorn has it; the bodies of
  all connections together may hold at most ``(slots + BACKDROP_MAX_QUEUE) x
  BACKDROP_MAX_UPLOAD_MB`` (beyond: 503 ``overloaded`` with ``Retry-After``, as the queue
  would answer), and after large ones are let go the heap is given back to the system
  (:func:`service_common.memory.after_request`).
* **protocol errors as JSON**: a malformed request line (a method that is not upper-case
  letters, a target with a byte outside printable ASCII) or header (bare CR, LF or NUL,
  another control character in a value, folded lines, a second ``Host`` or
  ``Content-Type``), a bad ``Content-Length`` (ASCII digits only) or chunk size,
  ``Content-Length`` with ``Transfer-Encoding``, a line too long (414), too many or too long
  headers (431), a body over ``BACKDROP_MAX_UPLOAD_MB`` (413, answered before reading it)
  are answered in the common JSON envelope with a request id, never gunicorn's HTML.
* **a bounded queue**: at most ``workers x threads`` requests are inside gunicorn at once,
  at most ``BACKDROP_MAX_QUEUE`` more wait in the front; beyond that a request is answered
  at once with 503 ``overloaded`` and ``Retry-After``. A waiting request whose client
  disconnects is dropped before it costs anything. One already inside gunicorn cannot be
  stopped there: it keeps its slot until gunicorn has answered it (its answer goes
  nowhere), so the queue counts the work gunicorn really does.
* **half-closed clients**: a client that shuts its sending side within
  :data:`HALF_CLOSE_S` of its request (``nc -N``, ``shutdown(SHUT_WR)``) still waits for
  the answer and gets it; TCP cannot tell that from a client that closed, so a close that
  comes later, while the request waits in the queue, counts as leaving.
* **request timeout**: gunicorn's answer must start within ``BACKDROP_REQUEST_TIMEOUT``
  seconds, else 504 ``request_timeout`` (the slot stays taken until gunicorn is done, at
  most another ``BACKDROP_REQUEST_TIMEOUT``); while gunicorn is down or restarting: 503
  ``not_ready`` with ``Retry-After``.
* **probes that tell the truth**: ``GET /healthz`` is answered by the front itself, 200 when
  gunicorn's socket accepts connections, without waiting for a worker thread (a service
  whose threads all wait on a stalled neighbour is alive). ``GET /readyz`` runs one
  readiness check in gunicorn at a time, shared by the probes that arrive meanwhile; a
  probe waits at most :data:`READY_WAIT_S` for it, else it is told 503 ``not_ready`` (no
  worker thread is free to say). Probes skip the queue.
* **answers**: gunicorn's ``Server`` header is dropped, a redirect's absolute ``Location``
  becomes a path (never the client's ``Host`` or a scheme it claimed with
  ``X-Forwarded-Proto``, which is not forwarded), and a 503 without ``Retry-After`` gets one.

Run by :class:`service_common.serve.Service` (``make serve``, the containers, the tests)::

    python -m service_common.front --listen 127.0.0.1:5000 --upstream /run/x/matting.sock \\
        --service matting --slots 4
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import re
import signal
import sys
import time
import urllib.parse
import uuid
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

from . import memory
from .config import Settings
from .errors import ERROR_CODES

log = logging.getLogger("backdrop.front")

#: Longest request line (414 beyond), most header fields and longest head (431 beyond).
MAX_REQUEST_LINE = 8190
MAX_HEADER_FIELDS = 100
MAX_HEAD_BYTES = 32 * 1024
#: asyncio's read buffer of a connection while it sends its head (a few KB per idle
#: connection), and while it sends its body: large enough that a megabyte streams in a few
#: reads (with the small one the transport pauses and resumes every few KB).
HEAD_LIMIT = MAX_HEAD_BYTES + 1024
STREAM_LIMIT = 4 * 1024 * 1024
#: Largest piece of a body taken from the connection at once.
BODY_PIECE = 1024 * 1024
#: How long a kept-alive connection may stay idle between requests, seconds.
KEEP_ALIVE_S = 5.0
#: Retry-After of 503 answers, seconds.
RETRY_AFTER_S = 1
#: A client whose sending side closes within this many seconds of its request's last byte
#: half-closed its connection and waits for the answer (see the module docstring).
HALF_CLOSE_S = 0.25
#: Longest a ``/readyz`` probe waits for gunicorn's readiness check, seconds.
READY_WAIT_S = 1.0
#: Pause before the heap is trimmed after large bodies were let go (coalesces many at once).
TRIM_DELAY_S = 0.2
#: Hop-by-hop headers: never forwarded (RFC 9110 section 7.6.1), plus what the front decides.
HOP_BY_HOP = frozenset({
    "connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer",
    "upgrade", "expect", "content-length", "proxy-authorization", "proxy-authenticate",
})
#: Headers a client may not set for gunicorn: the front sets the first two itself; gunicorn
#: trusts the scheme headers on its Unix socket (werkzeug then builds redirects with them).
NOT_FORWARDED = frozenset({
    "x-forwarded-for", "x-request-id", "x-forwarded-proto", "x-forwarded-protocol",
    "x-forwarded-ssl", "x-forwarded-host", "x-forwarded-port", "x-forwarded-prefix",
    "forwarded", "x-real-ip",
})
#: Headers that may appear once (RFC 9110 section 5.3; gunicorn refuses a second one in HTML).
SINGLETONS = frozenset({"host", "content-type"})
#: Headers of gunicorn's answers that never reach a client.
NOT_RELAYED = frozenset({"connection", "keep-alive", "transfer-encoding", "server"})
PROBES = frozenset({"/healthz", "/readyz"})
_TOKEN = re.compile(rb"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
_METHOD = re.compile(rb"^[A-Z]{3,20}$")
_TARGET = re.compile(rb"^/[\x21-\x7e]*$")
_BAD_VALUE = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
_DIGITS = re.compile(r"^[0-9]{1,18}$")
_REQUEST_ID_OK = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
_STATUS_TEXT = {200: "OK", 400: "Bad Request", 408: "Request Timeout", 413: "Payload Too Large",
                414: "URI Too Long", 431: "Request Header Fields Too Large",
                503: "Service Unavailable", 504: "Gateway Timeout", 500: "Internal Server Error"}
_HEALTHY = b'{"status":"ok"}\n'


class Refusal(Exception):
    """A request answered by the front itself (an :data:`ERROR_CODES` code and a message)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class Request:
    """A request read completely from the client."""

    method: str
    target: str
    version: str
    headers: list[tuple[str, str]]
    body: bytes | bytearray = b""
    request_id: str = ""
    #: When its last byte arrived (``time.monotonic()``).
    received_at: float = 0.0

    def header(self, name: str) -> str | None:
        """Every value of header ``name`` joined by commas, or ``None`` without one."""
        name = name.lower()
        values = [v for k, v in self.headers if k.lower() == name]
        return ", ".join(values) if values else None

    @property
    def keep_alive(self) -> bool:
        """Whether the client asked to keep the connection (HTTP/1.1's default)."""
        connection = (self.header("connection") or "").lower()
        if self.version == "HTTP/1.0":
            return "keep-alive" in connection
        return "close" not in connection

    @property
    def path(self) -> str:
        """The target without its query."""
        return self.target.split("?", 1)[0]


@dataclass
class Limits:
    """The front's settings (see the module docstring)."""

    client_timeout: float = 10.0
    min_rate: float = 32 * 1024.0  # bytes per second
    max_body: int = 64 * 1024 * 1024
    request_timeout: float = 300.0
    slots: int = 4
    max_queue: int = 8
    #: Most body bytes held across connections; 0: ``(slots + max_queue) x max_body``.
    max_buffered: int = 0

    @classmethod
    def from_settings(cls, settings: Settings, slots: int) -> Limits:
        """The limits of a front whose gunicorn has ``slots`` threads in all."""
        return cls(client_timeout=settings.client_timeout, min_rate=settings.client_min_kbps * 1024.0,
                   max_body=settings.max_upload_bytes, request_timeout=float(settings.request_timeout),
                   slots=slots, max_queue=settings.max_queue)

    @property
    def buffered_cap(self) -> int:
        """Most body bytes the front holds at once, all connections together."""
        return self.max_buffered or max(1, self.slots + self.max_queue) * self.max_body


#: Paths answered in remove.bg's error envelope (``matting_api.removebg``), not ours.
REMOVEBG_PREFIX = "/v1.0/removebg"


def error_response(code: str, message: str, request_id: str, close: bool,
                   extra: dict[str, str] | None = None, path: str = "") -> bytes:
    """The common JSON error envelope (remove.bg's for its endpoint: ``{"errors": [{"title",
    "code"}]}``, 4xx other than 413 as 400, as that endpoint answers) as a complete
    HTTP/1.1 response."""
    status = ERROR_CODES[code][0]
    if path.startswith(REMOVEBG_PREFIX):
        status = status if status == 413 or status >= 500 else 400
        payload: dict = {"errors": [{"title": message, "code": code}]}
    else:
        payload = {"error": {"code": code, "message": message, "request_id": request_id}}
    body = json.dumps(payload, separators=(",", ":")).encode()
    lines = [f"HTTP/1.1 {status} {_STATUS_TEXT.get(status, 'Error')}",
             "Content-Type: application/json", f"Content-Length: {len(body)}",
             f"X-Request-Id: {request_id}", f"Connection: {'close' if close else 'keep-alive'}"]
    lines += [f"{k}: {v}" for k, v in (extra or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


async def _answer_error(writer: asyncio.StreamWriter, code: str, message: str, request_id: str,
                        *, close: bool, path: str, retry: bool = False, head: bool = False) -> None:
    """Send :func:`error_response` (with ``Retry-After`` when ``retry``; without its body
    when it answers a HEAD request) and flush it."""
    extra = {"Retry-After": str(RETRY_AFTER_S)} if retry else None
    answer = error_response(code, message, request_id, close, extra, path)
    writer.write(answer.partition(b"\r\n\r\n")[0] + b"\r\n\r\n" if head else answer)
    await writer.drain()


async def _read_line(reader: asyncio.StreamReader, limit: int, too_long: Refusal) -> bytes:
    """One CRLF-terminated line (without it); refuse lines over ``limit`` bytes."""
    try:
        line = await reader.readuntil(b"\n")
    except asyncio.LimitOverrunError as exc:
        raise too_long from exc
    except asyncio.IncompleteReadError as exc:
        if not exc.partial:
            raise ConnectionResetError("client closed the connection") from exc
        raise Refusal("bad_request", "the connection closed in the middle of the request's "
                      "head") from exc
    if len(line) > limit + 2:
        raise too_long
    if not line.endswith(b"\r\n"):
        raise Refusal("bad_request", "a line of the request ends with a bare LF; HTTP lines end "
                      "with CRLF")
    line = line[:-2]
    if b"\r" in line or b"\n" in line or b"\0" in line:
        raise Refusal("bad_request", "the request's head holds a bare CR, LF or NUL character")
    return line


def _request_line(line: bytes) -> tuple[str, str, str]:
    """``(method, target, version)`` of a request line, or a :class:`Refusal` saying what is
    wrong with it."""
    parts = line.split(b" ")
    if len(parts) != 3 or not parts[2].startswith(b"HTTP/1."):
        raise Refusal("bad_request", "the request line is not 'METHOD /path HTTP/1.1'")
    method, target, version = parts
    if not _METHOD.match(method):
        shown = method[:20].decode("ascii", "replace")
        raise Refusal("bad_request", f"the method {shown!r} is not an HTTP method: methods are "
                      "3 to 20 upper-case letters, such as GET or POST")
    if version not in (b"HTTP/1.0", b"HTTP/1.1"):
        raise Refusal("bad_request", f"unsupported request line (version "
                      f"{version[:16].decode('ascii', 'replace')!r}); send HTTP/1.1")
    if not _TARGET.match(target):
        if not target.startswith(b"/"):
            raise Refusal("bad_request", "the request target must be a path starting with '/'")
        raise Refusal("bad_request", "the request target holds a byte that is not printable "
                      "ASCII (a control character, DEL or a byte above 0x7F); percent-encode it")
    return method.decode("ascii"), target.decode("ascii"), version.decode("ascii")


async def read_head(reader: asyncio.StreamReader) -> Request:
    """The request line and headers (no body)."""
    line = await _read_line(reader, MAX_REQUEST_LINE, Refusal(
        "uri_too_long", f"the request line is longer than {MAX_REQUEST_LINE} bytes"))
    method, target, version = _request_line(line)
    headers: list[tuple[str, str]] = []
    seen: set[str] = set()
    size = len(line)
    while True:
        too_long = Refusal("header_too_large", f"a header line is longer than {MAX_HEAD_BYTES} bytes")
        raw = await _read_line(reader, MAX_HEAD_BYTES, too_long)
        if not raw:
            break
        size += len(raw)
        if size > MAX_HEAD_BYTES:
            raise Refusal("header_too_large", f"the request's headers are larger than {MAX_HEAD_BYTES} bytes")
        if len(headers) >= MAX_HEADER_FIELDS:
            raise Refusal("header_too_large", f"the request has more than {MAX_HEADER_FIELDS} headers")
        if raw[:1] in (b" ", b"\t"):
            raise Refusal("bad_request", "folded header lines (obs-fold) are not accepted")
        name, sep, value = raw.partition(b":")
        if not sep or not _TOKEN.match(name):
            raise Refusal("bad_request", "a header line is not 'Name: value'")
        text = name.decode("latin-1")
        if _BAD_VALUE.search(value):
            raise Refusal("bad_request", f"the value of the {text} header holds a control character")
        if text.lower() in SINGLETONS:
            if text.lower() in seen:
                raise Refusal("bad_request", f"the request has more than one {text} header; send one")
            seen.add(text.lower())
        headers.append((text, value.strip(b" \t").decode("latin-1")))
    return Request(method, target, version, headers)


def _content_length(req: Request) -> int | None:
    """The declared body length (the same number however often it is repeated), ``None``
    without one; ASCII digits only."""
    values = [v for k, v in req.headers if k.lower() == "content-length"]
    if not values:
        return None
    pieces = {p.strip() for v in values for p in v.split(",")}
    if len(pieces) != 1 or not _DIGITS.match(next(iter(pieces))):
        raise Refusal("bad_request", "Content-Length is not one whole number of bytes written in "
                      "ASCII digits")
    return int(next(iter(pieces)))


class _Clock:
    """The deadlines of a body: after the grace, at least ``min_rate`` bytes per second on
    average since the body began (what arrived so far, not what was declared), and never a
    pause longer than the grace."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.started = self.last = time.monotonic()
        self.received = 0

    def left(self) -> float:
        """Seconds until the next byte must have arrived."""
        grace = self.limits.client_timeout
        deadline = min(self.started + grace + self.received / self.limits.min_rate, self.last + grace)
        return max(0.0, deadline - time.monotonic())

    def count(self, size: int) -> None:
        """``size`` more bytes arrived."""
        self.received += size
        self.last = time.monotonic()

    async def within(self, read: Coroutine[Any, Any, bytes]) -> bytes:
        """Await ``read`` (a read of the connection) before the deadline, or refuse."""
        try:
            data = await asyncio.wait_for(read, self.left())
        except TimeoutError as exc:
            raise _slow_body(self.limits) from exc
        self.count(len(data))
        return data


def _slow_body(limits: Limits) -> Refusal:
    return Refusal("client_timeout", f"the request's body arrived slower than "
                   f"{limits.min_rate / 1024:g} KB/s (after a {limits.client_timeout:g} s grace), "
                   f"or paused for longer than {limits.client_timeout:g} s; the connection is closed")


class BodyPool:
    """The body bytes the front holds, all connections together: bounded by
    :attr:`Limits.buffered_cap`, and the heap trimmed after large bodies are let go."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.held = 0
        self._freed = 0
        self._trim: asyncio.Task | None = None

    def take(self, size: int) -> None:
        """Count ``size`` more bytes held, or refuse when the pool is full."""
        if self.held + size > self.cap:
            raise Refusal("overloaded", f"the service holds {self.cap // (1024 * 1024)} MB of request "
                          f"bodies already; try again in {RETRY_AFTER_S} s")
        self.held += size

    def give_back(self, size: int) -> None:
        """``size`` bytes are no longer held."""
        self.held -= size
        self.let_go(size)

    def let_go(self, size: int) -> None:
        """``size`` bytes were freed (a body, or a large answer); trim the heap soon after
        large amounts."""
        self._freed += size
        if self._freed >= memory.TRIM_AFTER_BYTES and self._trim is None:
            self._trim = asyncio.ensure_future(self._trim_heap())

    async def _trim_heap(self) -> None:
        """Return the freed heap to the system (in a thread: it takes milliseconds)."""
        try:
            while self._freed >= memory.TRIM_AFTER_BYTES:
                await asyncio.sleep(TRIM_DELAY_S)
                freed, self._freed = self._freed, 0
                await asyncio.get_running_loop().run_in_executor(None, memory.after_request, freed)
        finally:
            self._trim = None

    def release(self, req: Request) -> None:
        """Let go of ``req``'s body (handed to gunicorn, refused, or its client gone)."""
        body, req.body = req.body, b""
        if body:
            self.give_back(len(body))
        if isinstance(body, bytearray):
            with contextlib.suppress(BufferError):  # still exported: freed when that ends
                body.clear()


async def read_body(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, req: Request,
                    limits: Limits, pool: BodyPool | None = None) -> bytearray:
    """The body, by ``Content-Length`` or chunked, under the body's deadlines; its bytes are
    counted in ``pool`` (given back here when it fails, else by the caller)."""
    encoding = (req.header("transfer-encoding") or "").lower().strip()
    length = _content_length(req)
    if encoding and length is not None:
        raise Refusal("bad_request", "the request has both Content-Length and Transfer-Encoding")
    if encoding and encoding != "chunked":
        raise Refusal("bad_request", f"Transfer-Encoding {encoding[:20]!r} is not supported; send "
                      "chunked or a Content-Length")
    if length is not None and length > limits.max_body:
        raise Refusal("payload_too_large", f"the body is {length} bytes, more than this server "
                      f"accepts ({limits.max_body} bytes, BACKDROP_MAX_UPLOAD_MB)")
    body = bytearray()
    if not encoding and not length:
        return body
    pool = pool or BodyPool(limits.buffered_cap)
    reader._limit = STREAM_LIMIT  # noqa: SLF001 - asyncio has no public setter; reset per request
    if (req.header("expect") or "").lower() == "100-continue":
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        await writer.drain()
    clock = _Clock(limits)
    try:
        if not encoding:
            await _read_into(body, reader, length or 0, clock, pool)
        else:
            await _read_chunked(body, reader, limits, clock, pool)
    except BaseException:
        pool.give_back(len(body))
        body.clear()
        raise
    return body


async def _read_into(body: bytearray, reader: asyncio.StreamReader, size: int, clock: _Clock,
                     pool: BodyPool) -> None:
    """Append exactly ``size`` bytes of the connection to ``body``, piece by piece."""
    while size > 0:
        data = await clock.within(reader.read(min(size, BODY_PIECE)))
        if not data:
            raise ConnectionResetError("client closed the connection during the body")
        pool.take(len(data))
        body += data
        size -= len(data)


async def _read_chunked(body: bytearray, reader: asyncio.StreamReader, limits: Limits, clock: _Clock,
                        pool: BodyPool) -> None:
    bad = Refusal("bad_request", "a chunk size of the chunked body is malformed")
    while True:
        line = await clock.within(_read_line(reader, 1024, bad))
        size_text = line.split(b";", 1)[0].strip()
        if not size_text or len(size_text) > 16 or not re.fullmatch(rb"[0-9A-Fa-f]+", size_text):
            raise bad
        size = int(size_text, 16)
        if size == 0:
            for _ in range(MAX_HEADER_FIELDS + 1):  # trailers: read and dropped
                if not await clock.within(_read_line(reader, MAX_HEAD_BYTES, bad)):
                    return
            raise Refusal("header_too_large", f"the chunked body has more than {MAX_HEADER_FIELDS} "
                          "trailer fields")
        if len(body) + size > limits.max_body:
            raise Refusal("payload_too_large", f"the chunked body is larger than this server "
                          f"accepts ({limits.max_body} bytes, BACKDROP_MAX_UPLOAD_MB)")
        await _read_into(body, reader, size, clock, pool)
        try:
            end = await clock.within(reader.readexactly(2))
        except asyncio.IncompleteReadError as exc:
            raise ConnectionResetError("client closed the connection during the body") from exc
        if end != b"\r\n":
            raise bad


def upstream_head(req: Request, client: str) -> bytes:
    """The request as gunicorn gets it: hop-by-hop headers and the ones only the front may
    set dropped, the body's length, one request per connection, the client's address and
    the request id."""
    lines = [f"{req.method} {req.target} HTTP/1.1"]
    for name, value in req.headers:
        lowered = name.lower()
        if lowered in HOP_BY_HOP or lowered in NOT_FORWARDED:
            continue
        lines.append(f"{name}: {value}")
    lines += [f"Content-Length: {len(req.body)}", "Connection: close",
              f"X-Forwarded-For: {client}", f"X-Request-Id: {req.request_id}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _relative(location: str) -> str:
    """A redirect's target without scheme and host (the services only redirect to
    themselves, and werkzeug builds the absolute form from the client's ``Host``)."""
    parts = urllib.parse.urlsplit(location)
    if not (parts.scheme or parts.netloc):
        return location
    path = "/" + parts.path.lstrip("/")
    return path + (f"?{parts.query}" if parts.query else "")


def answer_head(status_line: str, headers: list[tuple[str, str]], method: str, length: int,
                keep: bool) -> bytes:
    """The head of gunicorn's answer as the client gets it (see the module docstring)."""
    status = int(status_line.split()[1])
    out = [status_line]
    for name, value in headers:
        lowered = name.lower()
        if lowered in NOT_RELAYED or (lowered == "content-length" and method != "HEAD"):
            continue  # a HEAD answer keeps the length of the body it would have
        if lowered == "location" and 300 <= status < 400:
            value = _relative(value)
        out.append(f"{name}: {value}")
    if status == 503 and not any(k.lower() == "retry-after" for k, _ in headers):
        out.append(f"Retry-After: {RETRY_AFTER_S}")
    if method != "HEAD":
        out.append(f"Content-Length: {length}")
    out.append(f"Connection: {'keep-alive' if keep else 'close'}")
    return ("\r\n".join(out) + "\r\n\r\n").encode("latin-1")


Answer = tuple[str, list[tuple[str, str]], bytes]


@dataclass
class Front:
    """One service's front: ``upstream`` is gunicorn's Unix socket."""

    upstream: str
    limits: Limits
    service: str = "service"
    waiting: int = 0
    slots: asyncio.Semaphore = field(init=False)
    bodies: BodyPool = field(init=False)
    _ready_check: asyncio.Task | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.slots = asyncio.Semaphore(self.limits.slots)
        self.bodies = BodyPool(self.limits.buffered_cap)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Serve one connection: its requests one after the other."""
        peer = writer.get_extra_info("peername")
        client = peer[0] if isinstance(peer, tuple) else "local"
        try:
            first = True
            while True:
                req = await self._read_request(reader, writer, first)
                if req is None:
                    return
                try:
                    keep = await self._forward(req, client, reader, writer, req.keep_alive)
                finally:
                    self.bodies.release(req)
                if not keep:
                    return
                first = False
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        finally:
            with contextlib.suppress(Exception):
                writer.close()
                await writer.wait_closed()

    async def _read_request(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                            first: bool) -> Request | None:
        """The next complete request, or ``None`` when the connection is done (a refusal
        answered, or nothing more from the client)."""
        request_id = uuid.uuid4().hex[:16]
        req = None
        reader._limit = HEAD_LIMIT  # noqa: SLF001 - see read_body
        try:
            req = await self._head(reader, self.limits.client_timeout if first else KEEP_ALIVE_S, first)
            if req is None:
                return None
            given = req.header("x-request-id") or ""
            req.request_id = given if _REQUEST_ID_OK.match(given) else request_id
            request_id = req.request_id
            req.body = await read_body(reader, writer, req, self.limits, self.bodies)
        except Refusal as refusal:
            await _answer_error(writer, refusal.code, refusal.message, request_id, close=True,
                                path=req.path if req else "", retry=refusal.code == "overloaded")
            return None
        except (ConnectionError, asyncio.IncompleteReadError):
            raise
        except Exception as exc:  # a bug must not cost the client its answer
            log.warning("%s front: reading a request failed (%r)", self.service, exc)
            await _answer_error(writer, "internal_error", "the service's front could not read "
                                "this request; the request id locates it in the logs", request_id,
                                close=True, path=req.path if req else "")
            return None
        req.received_at = time.monotonic()
        return req

    async def _head(self, reader: asyncio.StreamReader, idle: float, first: bool) -> Request | None:
        """The next request's head: ``idle`` seconds for its first byte (a kept-alive
        connection that stays silent is closed quietly), then the head deadline."""
        try:
            await asyncio.wait_for(_wait_readable(reader), idle)
        except TimeoutError as exc:
            if first:
                raise Refusal("client_timeout", f"no request arrived within {idle:g} s of "
                              "connecting; the connection is closed") from exc
            return None
        if reader.at_eof():
            return None
        try:
            return await asyncio.wait_for(read_head(reader), self.limits.client_timeout)
        except TimeoutError as exc:
            raise Refusal("client_timeout", f"the request's headers did not arrive within "
                          f"{self.limits.client_timeout:g} s; the connection is closed") from exc
        except ConnectionResetError:
            return None

    async def _forward(self, req: Request, client: str, reader: asyncio.StreamReader,
                       writer: asyncio.StreamWriter, keep: bool) -> bool:
        """Answer a probe, or queue, hand the request to gunicorn and relay the answer;
        whether to keep the connection open."""
        if req.method in ("GET", "HEAD") and req.path == "/healthz":
            return await self._healthz(req, reader, writer, keep)
        if req.method in ("GET", "HEAD") and req.path == "/readyz":
            return await self._readyz(req, client, reader, writer, keep)
        probe = req.path in PROBES  # other methods: gunicorn answers 405, outside the queue
        if not probe and self.slots.locked() and self.waiting >= self.limits.max_queue:
            await _answer_error(
                writer, "overloaded", f"the {self.service} service is busy: {self.limits.slots} "
                f"requests are being served and {self.waiting} wait; try again in {RETRY_AFTER_S} s",
                req.request_id, close=not keep, path=req.path, retry=True, head=req.method == "HEAD")
            return keep
        gone = asyncio.ensure_future(_client_left(reader, req.received_at))
        try:
            if probe:
                return await self._relay(req, client, reader, writer, keep, gone)
            self.waiting += 1
            try:
                acquire = asyncio.ensure_future(self.slots.acquire())
                done, _ = await asyncio.wait({acquire, gone}, return_when=asyncio.FIRST_COMPLETED)
                if acquire not in done:
                    acquire.cancel()
                    log.info("%s %s %s dropped: the client left while it waited", self.service,
                             req.method, req.path)
                    return False
            finally:
                self.waiting -= 1
            try:
                return await self._relay(req, client, reader, writer, keep, gone)
            finally:
                self.slots.release()  # only once gunicorn is done with the request
        finally:
            gone.cancel()

    async def _relay(self, req: Request, client: str, reader: asyncio.StreamReader,
                     writer: asyncio.StreamWriter, keep: bool, gone: asyncio.Future) -> bool:
        """Hand ``req`` to gunicorn and its answer to the client. Returns only when gunicorn
        is done with it (or has had twice ``BACKDROP_REQUEST_TIMEOUT``), so that the caller's
        slot counts what gunicorn's threads really do."""
        try:
            up_reader, up_writer = await asyncio.open_unix_connection(self.upstream, limit=STREAM_LIMIT)
        except OSError:
            await _answer_error(
                writer, "not_ready", f"the {self.service} service is starting or restarting; try "
                f"again in {RETRY_AFTER_S} s", req.request_id, close=not keep, path=req.path, retry=True,
                head=req.method == "HEAD")
            return keep
        answer: asyncio.Future | None = None
        try:
            up_writer.write(upstream_head(req, client))
            up_writer.write(req.body)
            await up_writer.drain()
            self.bodies.release(req)  # gunicorn has it
            answer = asyncio.ensure_future(_read_response(up_reader, req.method))
            done, _ = await asyncio.wait({answer, gone}, timeout=self.limits.request_timeout,
                                         return_when=asyncio.FIRST_COMPLETED)
            if answer not in done:
                await self._abandon(req, writer, gone in done)
                await self._outlast(answer, req)
                return False
            status_line, headers, body = answer.result()
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as exc:
            log.warning("%s: the application closed %s %s without a complete answer (%s)",
                        self.service, req.method, req.path, exc)
            with contextlib.suppress(ConnectionError):
                await _answer_error(
                    writer, "not_ready", f"the {self.service} service stopped while answering (a "
                    f"worker restarted); try again in {RETRY_AFTER_S} s", req.request_id, close=True,
                    path=req.path, retry=True)
            return False
        finally:
            up_writer.close()
        keep = keep and not reader.at_eof()  # a half-closed client sends nothing more
        sent = await self._send(writer, answer_head(status_line, headers, req.method, len(body), keep), body)
        self.bodies.let_go(len(body))
        return keep and sent

    async def _abandon(self, req: Request, writer: asyncio.StreamWriter, left: bool) -> None:
        """The client stops waiting for gunicorn: it left, or 504 after the request timeout."""
        if left:
            log.info("%s %s %s: the client left; gunicorn still works on it and it keeps its "
                     "slot until gunicorn answers", self.service, req.method, req.path)
        else:
            with contextlib.suppress(ConnectionError):
                await _answer_error(
                    writer, "request_timeout", f"the request took longer than "
                    f"{self.limits.request_timeout:g} s (BACKDROP_REQUEST_TIMEOUT) and was given up",
                    req.request_id, close=True, path=req.path)
        writer.close()

    async def _outlast(self, answer: asyncio.Future, req: Request) -> None:
        """Wait until gunicorn has answered a request nobody waits for any more (its answer
        is dropped), at most another ``BACKDROP_REQUEST_TIMEOUT``."""
        try:
            await asyncio.wait_for(answer, self.limits.request_timeout)
        except TimeoutError:
            log.warning("%s %s %s: gunicorn has not answered after twice the request timeout; its "
                        "slot is given back", self.service, req.method, req.path)
        except Exception:  # noqa: BLE001 - whatever gunicorn did, it is done
            return

    async def _send(self, writer: asyncio.StreamWriter, head: bytes, body: bytes) -> bool:
        """Write an answer; a client that does not read it at the body rate (after the
        grace) is disconnected. Whether it was sent."""
        writer.write(head + body if len(body) < 65536 else head)
        if len(body) >= 65536:
            writer.write(body)
        try:
            await asyncio.wait_for(writer.drain(), self.limits.client_timeout
                                   + len(body) / self.limits.min_rate)
        except TimeoutError:
            log.info("%s: a client did not read its answer in time; disconnected", self.service)
            writer.transport.abort()
            return False
        return True

    async def _healthz(self, req: Request, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                       keep: bool) -> bool:
        """``/healthz`` from the front: 200 while gunicorn's socket accepts connections (no
        worker thread is needed for that)."""
        try:
            _, probe = await asyncio.wait_for(asyncio.open_unix_connection(self.upstream), READY_WAIT_S)
            probe.close()
        except (OSError, TimeoutError):
            await _answer_error(
                writer, "not_ready", f"the {self.service} service's workers do not accept "
                f"connections (starting or restarting); try again in {RETRY_AFTER_S} s",
                req.request_id, close=not keep, path=req.path, retry=True, head=req.method == "HEAD")
            return keep
        keep = keep and not reader.at_eof()
        headers = [("Content-Type", "application/json"), ("X-Request-Id", req.request_id),
                   ("Cache-Control", "no-store")]
        head = answer_head("HTTP/1.1 200 OK", headers, "GET", len(_HEALTHY), keep)
        return await self._send(writer, head, b"" if req.method == "HEAD" else _HEALTHY) and keep

    async def _readyz(self, req: Request, client: str, reader: asyncio.StreamReader,
                      writer: asyncio.StreamWriter, keep: bool) -> bool:
        """``/readyz``: gunicorn's own answer when a worker thread gives it within
        :data:`READY_WAIT_S`, else 503 ``not_ready`` at once. One check runs at a time."""
        if self._ready_check is None or self._ready_check.done():
            self._ready_check = asyncio.ensure_future(self._check_ready(req, client))
        check = self._ready_check
        done, _ = await asyncio.wait({check}, timeout=READY_WAIT_S)
        result = check.result() if done else Refusal(
            "not_ready", f"the {self.service} service did not answer its readiness check within "
            f"{READY_WAIT_S:g} s: its worker threads are all busy or it is still starting; try "
            f"again in {RETRY_AFTER_S} s")
        if isinstance(result, Refusal):
            await _answer_error(writer, result.code, result.message, req.request_id,
                                close=not keep, path=req.path, retry=True, head=req.method == "HEAD")
            return keep
        keep = keep and not reader.at_eof()
        status_line, headers, body = result
        head = answer_head(status_line, headers, "GET", len(body), keep)
        return await self._send(writer, head, b"" if req.method == "HEAD" else body) and keep

    async def _check_ready(self, req: Request, client: str) -> Answer | Refusal:
        """``GET /readyz`` in gunicorn, waiting as long as it takes (up to the request
        timeout): gunicorn's answer, or the :class:`Refusal` to send instead."""
        check = Request("GET", "/readyz", "HTTP/1.1", [("Host", "localhost")],
                        request_id=req.request_id)
        try:
            up_reader, up_writer = await asyncio.open_unix_connection(self.upstream, limit=STREAM_LIMIT)
        except OSError:
            return Refusal("not_ready", f"the {self.service} service is starting or restarting; try "
                           f"again in {RETRY_AFTER_S} s")
        try:
            up_writer.write(upstream_head(check, client))
            await up_writer.drain()
            return await asyncio.wait_for(_read_response(up_reader), self.limits.request_timeout)
        except (OSError, TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                ValueError, IndexError) as exc:
            log.warning("%s: the readiness check got no complete answer (%r)", self.service, exc)
            return Refusal("not_ready", f"the {self.service} service gave no complete answer to "
                           f"its readiness check; try again in {RETRY_AFTER_S} s")
        finally:
            up_writer.close()


async def _wait_readable(reader: asyncio.StreamReader) -> None:
    """Until the client sent a byte (or closed): without consuming it."""
    if reader._buffer or reader.at_eof():  # noqa: SLF001
        return
    await reader._wait_for_data("front")  # noqa: SLF001 - asyncio offers no public peek


async def _wait_closed(reader: asyncio.StreamReader) -> None:
    """Until the client closes its side (EOF), without consuming what it sends; raises
    the connection's error when it was reset."""
    while not reader.at_eof():
        if reader.exception() is not None:
            raise reader.exception()
        if reader._buffer:  # noqa: SLF001 - pipelined data: the client is still there
            await asyncio.sleep(0.05)
            continue
        try:
            await reader._wait_for_data("front")  # noqa: SLF001
        except RuntimeError:
            await asyncio.sleep(0.05)


async def _client_left(reader: asyncio.StreamReader, since: float) -> None:
    """Until the client has left: its connection reset, or closed later than
    :data:`HALF_CLOSE_S` after ``since`` (its request's end). A client that closed its side
    sooner half-closed the connection and waits for the answer: this never returns then."""
    try:
        await _wait_closed(reader)
    except OSError:
        return
    if time.monotonic() - since <= HALF_CLOSE_S:
        await asyncio.Event().wait()


async def _read_response(reader: asyncio.StreamReader, method: str = "GET") -> Answer:
    """gunicorn's answer: status line, headers, body (by Content-Length, else to EOF; none
    for HEAD, 1xx, 204 and 304)."""
    status_line = (await reader.readuntil(b"\r\n"))[:-2].decode("latin-1")
    headers: list[tuple[str, str]] = []
    while True:
        raw = (await reader.readuntil(b"\r\n"))[:-2]
        if not raw:
            break
        name, _, value = raw.partition(b":")
        headers.append((name.decode("latin-1"), value.strip().decode("latin-1")))
    status = int(status_line.split()[1])
    if method == "HEAD" or status < 200 or status in (204, 304):
        return status_line, headers, b""
    length = next((int(v) for k, v in headers if k.lower() == "content-length"), None)
    chunked = any(k.lower() == "transfer-encoding" and "chunked" in v.lower() for k, v in headers)
    if chunked:
        parts = []
        while True:
            size = int((await reader.readuntil(b"\r\n"))[:-2].split(b";")[0], 16)
            if size == 0:
                while (await reader.readuntil(b"\r\n")) != b"\r\n":
                    pass
                break
            parts.append((await reader.readexactly(size + 2))[:-2])
        return status_line, headers, b"".join(parts)
    body = await reader.readexactly(length) if length is not None else await reader.read()
    return status_line, headers, body


async def serve(host: str, port: int, front: Front) -> None:
    """Listen on ``host:port`` until SIGTERM or SIGINT."""
    server = await asyncio.start_server(front.handle, host, port, limit=HEAD_LIMIT,
                                        backlog=1024, reuse_address=True)
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(_log_one_line)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    log.info("%s front listening on %s:%s, gunicorn at %s", front.service, host, port, front.upstream)
    async with server:
        await stop.wait()
        server.close()
        pending = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)


def _log_one_line(loop: asyncio.AbstractEventLoop, context: dict) -> None:  # noqa: ARG001
    """Whatever escapes a connection's handler: one log line, never a traceback."""
    exc = context.get("exception")
    if isinstance(exc, asyncio.CancelledError):
        return  # connections cut at shutdown
    log.warning("front: %s%s", context.get("message", "error"), f" ({exc!r})" if exc else "")


def main(argv: list[str] | None = None) -> int:
    """The command line (see the module docstring)."""
    parser = argparse.ArgumentParser(prog="python -m service_common.front",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--listen", required=True, help="HOST:PORT")
    parser.add_argument("--upstream", required=True, help="gunicorn's Unix socket")
    parser.add_argument("--service", default="service")
    parser.add_argument("--slots", type=int, required=True, help="workers x threads of gunicorn")
    args = parser.parse_args(argv)
    settings = Settings.from_env()
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    memory.enable(settings.malloc_tuning)
    host, _, port = args.listen.rpartition(":")
    front = Front(args.upstream, Limits.from_settings(settings, args.slots), args.service)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # before the loop takes it over
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(host, int(port), front))
    return 0


if __name__ == "__main__":
    sys.exit(main())

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
  that grace. A client past either gets 408 ``client_timeout`` and is disconnected.
* **protocol errors as JSON**: a malformed request line or header (bare CR, LF or NUL,
  folded lines), a bad ``Content-Length`` or chunk size, ``Content-Length`` with
  ``Transfer-Encoding``, a line too long (414), too many or too long headers (431), a body
  over ``BACKDROP_MAX_UPLOAD_MB`` (413, answered before reading it) are answered in the
  common JSON envelope with a request id, never gunicorn's HTML.
* **a bounded queue**: at most ``workers x threads`` requests are inside gunicorn at once,
  at most ``BACKDROP_MAX_QUEUE`` more wait in the front; beyond that a request is answered
  at once with 503 ``overloaded`` and ``Retry-After``. A waiting request whose client
  disconnects is dropped before it costs anything (and one already inside gunicorn is cut
  off; its worker thread finishes, its answer goes nowhere).
* **request timeout**: gunicorn's answer must start within ``BACKDROP_REQUEST_TIMEOUT``
  seconds, else 504 ``request_timeout``; while gunicorn is down or restarting: 503
  ``not_ready`` with ``Retry-After``.
* health probes (``/healthz``, ``/readyz``) skip the queue, so a busy service still answers
  its probes.

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
import uuid
from dataclasses import dataclass, field

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
#: How long a kept-alive connection may stay idle between requests, seconds.
KEEP_ALIVE_S = 5.0
#: Retry-After of 503 answers, seconds.
RETRY_AFTER_S = 1
#: Hop-by-hop headers: never forwarded (RFC 9110 section 7.6.1), plus what the front decides.
HOP_BY_HOP = frozenset({
    "connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer",
    "upgrade", "expect", "content-length", "proxy-authorization", "proxy-authenticate",
})
PROBES = frozenset({"/healthz", "/readyz"})
_TOKEN = re.compile(rb"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
_REQUEST_ID_OK = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
_STATUS_TEXT = {400: "Bad Request", 408: "Request Timeout", 413: "Payload Too Large",
                414: "URI Too Long", 431: "Request Header Fields Too Large",
                503: "Service Unavailable", 504: "Gateway Timeout", 500: "Internal Server Error"}


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
    body: bytes = b""
    request_id: str = ""

    def header(self, name: str) -> str | None:
        name = name.lower()
        values = [v for k, v in self.headers if k.lower() == name]
        return ", ".join(values) if values else None

    @property
    def keep_alive(self) -> bool:
        connection = (self.header("connection") or "").lower()
        if self.version == "HTTP/1.0":
            return "keep-alive" in connection
        return "close" not in connection

    @property
    def path(self) -> str:
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

    @classmethod
    def from_settings(cls, settings: Settings, slots: int) -> Limits:
        return cls(client_timeout=settings.client_timeout, min_rate=settings.client_min_kbps * 1024.0,
                   max_body=settings.max_upload_bytes, request_timeout=float(settings.request_timeout),
                   slots=slots, max_queue=settings.max_queue)


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
                        *, close: bool, path: str, retry: bool = False) -> None:
    """Send :func:`error_response` (with ``Retry-After`` when ``retry``) and flush it."""
    extra = {"Retry-After": str(RETRY_AFTER_S)} if retry else None
    writer.write(error_response(code, message, request_id, close, extra, path))
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


async def read_head(reader: asyncio.StreamReader) -> Request:
    """The request line and headers (no body)."""
    line = await _read_line(reader, MAX_REQUEST_LINE, Refusal(
        "uri_too_long", f"the request line is longer than {MAX_REQUEST_LINE} bytes"))
    parts = line.split(b" ")
    if len(parts) != 3 or not _TOKEN.match(parts[0]) or not parts[2].startswith(b"HTTP/1."):
        raise Refusal("bad_request", "the request line is not 'METHOD /path HTTP/1.1'")
    method, target, version = (p.decode("latin-1") for p in parts)
    if version not in ("HTTP/1.0", "HTTP/1.1") or not target.startswith("/"):
        raise Refusal("bad_request", f"unsupported request line (version {version[:16]!r})")
    headers: list[tuple[str, str]] = []
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
        headers.append((name.decode("latin-1"), value.strip(b" \t").decode("latin-1")))
    return Request(method, target, version, headers)


def _content_length(req: Request) -> int | None:
    values = [v for k, v in req.headers if k.lower() == "content-length"]
    if not values:
        return None
    pieces = {p.strip() for v in values for p in v.split(",")}
    if len(pieces) != 1 or not next(iter(pieces)).isdigit() or len(next(iter(pieces))) > 18:
        raise Refusal("bad_request", "Content-Length is not one whole number of bytes")
    return int(next(iter(pieces)))


class _Budget:
    """The deadline of a body: ``grace`` seconds, plus one second per ``min_rate`` bytes."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.started = time.monotonic()

    def remaining(self, received: int, want: int) -> float:
        deadline = self.started + self.limits.client_timeout + (received + want) / self.limits.min_rate
        return max(0.0, deadline - time.monotonic())


def _slow_body(limits: Limits) -> Refusal:
    return Refusal("client_timeout", f"the request's body arrived slower than "
                   f"{limits.min_rate / 1024:g} KB/s (after a {limits.client_timeout:g} s grace); "
                   "the connection is closed")


async def read_body(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, req: Request,
                    limits: Limits) -> bytes:
    """The body, by ``Content-Length`` or chunked, under the body budget."""
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
    if not encoding and not length:
        return b""
    reader._limit = STREAM_LIMIT  # noqa: SLF001 - asyncio has no public setter; reset per request
    if (req.header("expect") or "").lower() == "100-continue":
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        await writer.drain()
    budget = _Budget(limits)
    try:
        if not encoding:
            return await asyncio.wait_for(reader.readexactly(length), budget.remaining(0, length))
        return await _read_chunked(reader, limits, budget)
    except TimeoutError as exc:
        raise _slow_body(limits) from exc
    except asyncio.IncompleteReadError as exc:
        raise ConnectionResetError("client closed the connection during the body") from exc


async def _read_chunked(reader: asyncio.StreamReader, limits: Limits, budget: _Budget) -> bytes:
    chunks: list[bytes] = []
    received = 0
    bad = Refusal("bad_request", "a chunk size of the chunked body is malformed")
    while True:
        line = await asyncio.wait_for(_read_line(reader, 1024, bad), budget.remaining(received, 0))
        size_text = line.split(b";", 1)[0].strip()
        if not size_text or len(size_text) > 16 or not re.fullmatch(rb"[0-9A-Fa-f]+", size_text):
            raise bad
        size = int(size_text, 16)
        if size == 0:
            while await asyncio.wait_for(_read_line(reader, MAX_HEAD_BYTES, bad),
                                         budget.remaining(received, 0)):
                pass  # trailers: read and dropped
            return b"".join(chunks)
        if received + size > limits.max_body:
            raise Refusal("payload_too_large", f"the chunked body is larger than this server "
                          f"accepts ({limits.max_body} bytes, BACKDROP_MAX_UPLOAD_MB)")
        data = await asyncio.wait_for(reader.readexactly(size + 2), budget.remaining(received, size))
        if data[-2:] != b"\r\n":
            raise bad
        chunks.append(data[:-2])
        received += size


def upstream_head(req: Request, client: str) -> bytes:
    """The request as gunicorn gets it: hop-by-hop headers dropped, the body's length, one
    request per connection, the client's address and the request id."""
    lines = [f"{req.method} {req.target} HTTP/1.1"]
    for name, value in req.headers:
        lowered = name.lower()
        if lowered in HOP_BY_HOP or lowered in ("x-forwarded-for", "x-request-id"):
            continue
        lines.append(f"{name}: {value}")
    lines += [f"Content-Length: {len(req.body)}", "Connection: close",
              f"X-Forwarded-For: {client}", f"X-Request-Id: {req.request_id}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


@dataclass
class Front:
    """One service's front: ``upstream`` is gunicorn's Unix socket."""

    upstream: str
    limits: Limits
    service: str = "service"
    waiting: int = 0
    slots: asyncio.Semaphore = field(init=False)

    def __post_init__(self) -> None:
        self.slots = asyncio.Semaphore(self.limits.slots)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        client = peer[0] if isinstance(peer, tuple) else "local"
        try:
            first = True
            while True:
                request_id = uuid.uuid4().hex[:16]
                req = None
                reader._limit = HEAD_LIMIT  # noqa: SLF001 - see read_body
                try:
                    wait = self.limits.client_timeout if first else KEEP_ALIVE_S
                    req = await self._head(reader, wait, first)
                    if req is None:
                        return
                    given = req.header("x-request-id") or ""
                    req.request_id = given if _REQUEST_ID_OK.match(given) else request_id
                    request_id = req.request_id
                    req.body = await read_body(reader, writer, req, self.limits)
                except Refusal as refusal:
                    await _answer_error(writer, refusal.code, refusal.message, request_id,
                                        close=True, path=req.path if req else "")
                    return
                keep = req.keep_alive
                keep = await self._forward(req, client, reader, writer, keep)
                if not keep:
                    return
                first = False
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        finally:
            with contextlib.suppress(Exception):
                writer.close()
                await writer.wait_closed()

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
        """Queue, hand the request to gunicorn, relay the answer; whether to keep the
        connection open."""
        probe = req.path in PROBES
        if not probe and self.slots.locked() and self.waiting >= self.limits.max_queue:
            await _answer_error(
                writer, "overloaded", f"the {self.service} service is busy: {self.limits.slots} "
                f"requests are being served and {self.waiting} wait; try again in {RETRY_AFTER_S} s",
                req.request_id, close=not keep, path=req.path, retry=True)
            return keep
        gone = asyncio.ensure_future(_wait_closed(reader))
        try:
            if probe:
                return await self._relay(req, client, writer, keep, gone)
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
                return await self._relay(req, client, writer, keep, gone)
            finally:
                self.slots.release()
        finally:
            gone.cancel()

    async def _relay(self, req: Request, client: str, writer: asyncio.StreamWriter, keep: bool,
                     gone: asyncio.Future) -> bool:
        try:
            up_reader, up_writer = await asyncio.open_unix_connection(self.upstream, limit=STREAM_LIMIT)
        except OSError:
            await _answer_error(
                writer, "not_ready", f"the {self.service} service is starting or restarting; try "
                f"again in {RETRY_AFTER_S} s", req.request_id, close=not keep, path=req.path, retry=True)
            return keep
        try:
            up_writer.write(upstream_head(req, client))
            up_writer.write(req.body)
            await up_writer.drain()
            answer = asyncio.ensure_future(_read_response(up_reader, req.method))
            done, _ = await asyncio.wait({answer, gone}, timeout=self.limits.request_timeout,
                                         return_when=asyncio.FIRST_COMPLETED)
            if answer not in done:
                answer.cancel()
                if gone in done:
                    log.info("%s %s %s cut off: the client left", self.service, req.method, req.path)
                    return False
                await _answer_error(
                    writer, "request_timeout", f"the request took longer than "
                    f"{self.limits.request_timeout:g} s (BACKDROP_REQUEST_TIMEOUT) and was given up",
                    req.request_id, close=True, path=req.path)
                return False
            status_line, headers, body = answer.result()
        except (ConnectionError, asyncio.IncompleteReadError, ValueError) as exc:
            log.warning("%s: the application closed %s %s without a complete answer (%s)",
                        self.service, req.method, req.path, exc)
            await _answer_error(
                writer, "not_ready", f"the {self.service} service stopped while answering (a "
                f"worker restarted); try again in {RETRY_AFTER_S} s", req.request_id, close=True,
                path=req.path, retry=True)
            return False
        finally:
            up_writer.close()
        out = [status_line]
        dropped = ("connection", "keep-alive", "transfer-encoding")
        if req.method != "HEAD":  # a HEAD answer keeps the length of the body it would have
            dropped += ("content-length",)
        out += [f"{k}: {v}" for k, v in headers if k.lower() not in dropped]
        if req.method != "HEAD":
            out.append(f"Content-Length: {len(body)}")
        out.append(f"Connection: {'keep-alive' if keep else 'close'}")
        writer.write(("\r\n".join(out) + "\r\n\r\n").encode("latin-1") + body)
        await writer.drain()
        return keep


async def _wait_readable(reader: asyncio.StreamReader) -> None:
    """Until the client sent a byte (or closed): without consuming it."""
    if reader._buffer or reader.at_eof():  # noqa: SLF001
        return
    await reader._wait_for_data("front")  # noqa: SLF001 - asyncio offers no public peek


async def _wait_closed(reader: asyncio.StreamReader) -> None:
    """Until the client closes its side (EOF), without consuming what it sends."""
    while not reader.at_eof():
        if reader._buffer:  # noqa: SLF001 - pipelined data: the client is still there
            await asyncio.sleep(0.05)
            continue
        try:
            await reader._wait_for_data("front")  # noqa: SLF001
        except RuntimeError:
            await asyncio.sleep(0.05)


async def _read_response(reader: asyncio.StreamReader, method: str = "GET"
                         ) -> tuple[str, list[tuple[str, str]], bytes]:
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
    parser = argparse.ArgumentParser(prog="python -m service_common.front",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--listen", required=True, help="HOST:PORT")
    parser.add_argument("--upstream", required=True, help="gunicorn's Unix socket")
    parser.add_argument("--service", default="service")
    parser.add_argument("--slots", type=int, required=True, help="workers x threads of gunicorn")
    args = parser.parse_args(argv)
    settings = Settings.from_env()
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    host, _, port = args.listen.rpartition(":")
    front = Front(args.upstream, Limits.from_settings(settings, args.slots), args.service)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # before the loop takes it over
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(host, int(port), front))
    return 0


if __name__ == "__main__":
    sys.exit(main())

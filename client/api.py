"""HTTP calls to the matting service (``POST /v1/matte``, ``GET /readyz``).

:class:`MattingClient` keeps one pooled :class:`requests.Session` (safe to share between
the threads of a batch or a video pipeline) and turns every failure into a
:class:`MattingError` that carries the API's ``code``, ``message``, HTTP ``status`` and
``request_id``. Connection errors and 503/504 answers are retried once after a short
back-off; nothing else is retried.

Whatever answers is not trusted: ``timeout`` is one deadline for the whole call (connecting,
sending, every byte of the answer, the retry), not a limit per read, so a server that drips
its answer byte by byte is cut off in time; no redirect is followed (the photo is never sent
on to another address); an answer is read up to :data:`MAX_ANSWER_BYTES` decoded bytes (a
gzip bomb stops there); a result must say it is an image; every transport failure (a body
cut short, a bad chunk, corrupt gzip, a reset) is a :class:`MattingError` with a sentence;
and the server's own text is passed on without control characters (:func:`printable`), so an
error message cannot drive the terminal. :func:`check_image` decodes a result before a
caller writes it.

Example::

    client = MattingClient("http://127.0.0.1:5000", timeout=60)
    png, headers = client.matte(open("me.jpg", "rb").read(), bg_color="skyblue", format="png")
"""

from __future__ import annotations

import contextlib
import http.client
import io
import json
import logging
import os
import re
import socket
import threading
import time
from collections.abc import Mapping
from typing import Any

import requests
import urllib3
from PIL import Image, UnidentifiedImageError
from requests.adapters import HTTPAdapter
from requests.structures import CaseInsensitiveDict
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from contract.formats import OUTPUT_FORMATS, RESULT_FORMATS, tiff_blocks
from contract.vocab import MATTE_FIELDS

from .closing import Closing

log = logging.getLogger(__name__)

#: Where the CLI looks when neither ``--server`` nor ``BACKDROP_SERVER`` says otherwise.
DEFAULT_SERVER = "http://127.0.0.1:5000"

#: Form fields of ``POST /v1/matte`` (:data:`contract.vocab.MATTE_FIELDS`). Values are sent as
#: text; ``True``/``False`` become ``"true"``/``"false"``; ``None`` means "not sent".
FORM_FIELDS = frozenset(MATTE_FIELDS)

#: Answers worth one more try: the service (or the one behind it) is momentarily away.
RETRY_STATUSES = frozenset({503, 504})

UNREACHABLE_HINT = "is the service running? start it with `make serve`"

#: The most bytes of a result read (after any Content-Encoding is undone): a 40 MP RGBA PNG,
#: the service's default pixel cap, is at most about 160 MB.
MAX_ANSWER_BYTES = 256 * 2**20
#: The most bytes of an error answer or of ``/readyz`` read (an error's text is cut there).
MAX_TEXT_BYTES = 64 * 1024
#: The most pixels a result may have to be decoded by :func:`check_image`.
MAX_ANSWER_PIXELS = 100_000_000
#: The most strips or tiles a TIFF result may declare to be decoded (the service writes one;
#: Pillow takes about 3.5 s and 0.7 GB to open a 9 MB TIFF of a million one-row strips).
MAX_ANSWER_TIFF_BLOCKS = 65_536
#: Content-Type of a result -> the Pillow format its bytes must be (PNG, JPEG, WebP, TIFF:
#: :data:`contract.formats.RESULT_FORMATS`).
IMAGE_TYPES: dict[str, str] = {OUTPUT_FORMATS[n].mime: OUTPUT_FORMATS[n].pillow for n in RESULT_FORMATS}
#: The API's ``format`` values -> the Pillow format of the answer.
PILLOW_FORMATS: dict[str, str] = {n: OUTPUT_FORMATS[n].pillow for n in RESULT_FORMATS}

_CHUNK = 64 * 1024
_DIGITS = re.compile(r"[0-9]{1,18}")
#: Terminal escape sequences: CSI (``ESC [``), OSC (``ESC ]``, to BEL or ST), DCS/SOS/PM/APC
#: (to ST), other two-byte escapes, and the 8-bit C1 forms of the same.
_ESCAPES = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"
    r"|\x1b[\]PX^_][^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"
    r"|\x1b[ -/]*[0-~]"
    r"|\x9b[0-?]*[ -/]*[@-~]"
    r"|[\x90\x98\x9d\x9e\x9f][^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"
)
#: What is left to remove: C0 and C1 controls, DEL, and the invisible bidirectional marks
#: that reorder what a terminal shows.
_CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
#: Transport failures while a request is sent or its answer read (requests wraps most).
_TRANSPORT_ERRORS = (requests.RequestException, urllib3.exceptions.HTTPError, http.client.HTTPException,
                     OSError)


def default_server() -> str:
    """``$BACKDROP_SERVER`` if set, else :data:`DEFAULT_SERVER`."""
    return (os.environ.get("BACKDROP_SERVER") or DEFAULT_SERVER).rstrip("/")


def printable(text: object, limit: int = 300) -> str:
    """``text`` (a server's words) fit to print: terminal escape sequences removed (ANSI
    colours, OSC titles and links), other control characters removed (line breaks and tabs
    become spaces), runs of spaces joined, cut to ``limit`` characters."""
    clean = _ESCAPES.sub("", str(text))
    clean = _CONTROLS.sub(lambda m: " " if m.group() in "\t\n\r\x0b\x0c" else "", clean)
    clean = " ".join(clean.split())
    return clean if len(clean) <= limit else clean[: limit - 3] + "..."


class MattingError(Exception):
    """The matting call failed.

    Attributes:
        code: the API's error code (``no_subject``, ``invalid_image``, ...) or one of the
            client's own: ``service_unreachable``, ``timeout``, ``bad_response`` (an answer
            that is cut short, malformed or not what was asked), ``answer_too_large``,
            ``redirect``.
        message: a sentence for people.
        status: the HTTP status, ``None`` when no answer came.
        request_id: the service's request id, to find the request in its logs.
    """

    def __init__(
        self, code: str, message: str, status: int | None = None, request_id: str | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.request_id = request_id

    def __str__(self) -> str:
        where = f"HTTP {self.status}, " if self.status is not None else ""
        rid = f", request {self.request_id}" if self.request_id else ""
        return f"{self.message} ({where}{self.code}{rid})"


class ServiceUnreachable(MattingError):
    """No connection could be made to the service (refused, DNS, reset)."""


def _form_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    return str(value)


def error_from_answer(status: int, headers: Mapping[str, str], body: bytes,
                      reason: str | None = None) -> MattingError:
    """A :class:`MattingError` from a non-200 answer in the common error format.

    Answers that are not in that format (a proxy's HTML page, say) become code
    ``http_<status>`` with the start of the body as the message. Every text that comes
    from the server goes through :func:`printable`.
    """
    request_id = printable(headers.get("X-Request-Id") or "", 80) or None
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError):  # not JSON, or nested past Python's stack
        payload = None
    if isinstance(payload, dict) and isinstance(payload.get("error"), dict):
        err = payload["error"]
        return MattingError(
            printable(err.get("code") or f"http_{status}", 80),
            printable(err.get("message") or reason or "no message"),
            status,
            printable(err.get("request_id") or "", 80) or request_id,
        )
    text = printable(body.decode("utf-8", "replace"), 200) or printable(reason or "") or "no message"
    return MattingError(f"http_{status}", text, status, request_id)


def check_image(body: bytes, content_type: str | None, requested: str | None = None) -> tuple[int, int]:
    """Decode a result whole before it is written; returns its ``(width, height)``.

    Args:
        body: the answer's bytes.
        content_type: its ``Content-Type``: one of :data:`IMAGE_TYPES`, and the bytes must be
            an image of that type.
        requested: the ``format`` asked for (``png``, ``jpg``, ``webp``, ``tiff``), if any:
            the answer must be that format.

    Raises:
        MattingError: ``bad_response``, with a sentence, when the bytes are not a whole
            image of the type named (garbage, an HTML page, a truncated file) or not the
            format asked for.
    """
    mime = (content_type or "").split(";")[0].strip().lower()
    expected = IMAGE_TYPES.get(mime)
    if expected is None:
        raise MattingError("bad_response", f"the answer is {printable(mime, 60) or 'of no type'}, "
                           "not an image: is --server the matting service?", 200)
    wanted = PILLOW_FORMATS.get(requested or "")
    if wanted is not None and wanted != expected:
        raise MattingError("bad_response", f"{requested} was asked for and the answer is {mime}: "
                           "is --server the matting service?", 200)
    check_tiff_blocks(body, expected)
    try:
        with Image.open(io.BytesIO(body), formats=[expected]) as img:
            width, height = img.size
            if width * height > MAX_ANSWER_PIXELS:
                raise MattingError("bad_response", f"the answer is a {width}x{height} image, more "
                                   f"than the {MAX_ANSWER_PIXELS} pixels this client decodes", 200)
            img.verify()  # PNG: every chunk's checksum, up to the end chunk
        with Image.open(io.BytesIO(body), formats=[expected]) as img:
            img.load()  # the pixels: a truncated JPEG or WebP fails here
    except MattingError:
        raise
    except Image.DecompressionBombError as exc:
        raise MattingError("bad_response", f"the answer claims a larger picture than this client "
                           f"decodes ({MAX_ANSWER_PIXELS} pixels at most)", 200) from exc
    except Exception as exc:  # hostile bytes make Pillow raise many kinds of error
        detail = "not recognised" if isinstance(exc, UnidentifiedImageError) else (
            printable(exc, 120) or type(exc).__name__)
        raise MattingError("bad_response", f"the answer says {mime} but is not a whole {expected} "
                           f"image ({len(body)} bytes, {detail}): is --server the matting service?",
                           200) from exc
    return width, height


def check_tiff_blocks(body: bytes, pillow_format: str) -> None:
    """Refuse a TIFF result of more than :data:`MAX_ANSWER_TIFF_BLOCKS` strips or tiles before
    Pillow opens it (opening one builds a step per strip: a CPU and memory bomb).

    Raises:
        MattingError: ``bad_response``.
    """
    if pillow_format == "TIFF" and (blocks := tiff_blocks(body)) > MAX_ANSWER_TIFF_BLOCKS:
        raise MattingError("bad_response", f"the answer is a TIFF of {blocks:,} strips or tiles, more "
                           f"than the {MAX_ANSWER_TIFF_BLOCKS:,} this client decodes", 200)


# --- one deadline per call ----------------------------------------------------------------

_active = threading.local()


class _Deadline:
    """The end of one call: a timer that, when it strikes, shuts the call's socket down, so
    that whatever read or write is waiting on it (headers, a dripping body, an upload the
    server does not take) ends at once. The connection in use attaches itself through
    :class:`_Watched` when it connects or sends a request."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.end = time.monotonic() + seconds
        self.expired = False
        self._lock = threading.Lock()
        self._conn: HTTPConnection | None = None
        self._done = False
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True
        self._timer.start()

    def left(self) -> float:
        """Seconds left (at least a millisecond: requests refuses a zero timeout)."""
        return max(0.001, self.end - time.monotonic())

    def attach(self, conn: HTTPConnection) -> None:
        """``conn`` now carries this call; cut at once if the deadline has passed."""
        with self._lock:
            self._conn = conn
            conn._backdrop_deadline = self  # type: ignore[attr-defined]
            if self.expired:
                _cut(conn)

    def _expire(self) -> None:
        with self._lock:
            if self._done:
                return
            self.expired = True
            conn = self._conn
            if conn is not None and getattr(conn, "_backdrop_deadline", None) is self:
                _cut(conn)

    def close(self) -> None:
        """The call is over: the timer will not strike."""
        with self._lock:
            self._done = True
            self._timer.cancel()


def _cut(conn: HTTPConnection) -> None:
    sock = conn.sock
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


class _Watched:
    """Mixed into urllib3's connections: attach to the thread's current :class:`_Deadline`."""

    def connect(self) -> None:
        super().connect()  # type: ignore[misc]
        self._attach()

    def request(self, *args: Any, **kwargs: Any) -> None:
        self._attach()
        super().request(*args, **kwargs)  # type: ignore[misc]

    def _attach(self) -> None:
        deadline = getattr(_active, "deadline", None)
        if deadline is not None:
            deadline.attach(self)  # type: ignore[arg-type]


class _WatchedHTTPConnection(_Watched, HTTPConnection):
    pass


class _WatchedHTTPSConnection(_Watched, HTTPSConnection):
    pass


class _WatchedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _WatchedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


class _Adapter(HTTPAdapter):
    """requests' adapter with connections that a :class:`_Deadline` can cut."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _WatchedHTTPPool, "https": _WatchedHTTPSPool}


def _causes(exc: BaseException) -> list[BaseException]:
    """``exc`` and the exceptions it wraps (in its arguments, its cause, its context)."""
    seen: list[BaseException] = []
    todo = [exc]
    while todo and len(seen) < 20:
        item = todo.pop()
        if any(item is other for other in seen):
            continue
        seen.append(item)
        todo += [arg for arg in item.args if isinstance(arg, BaseException)]
        todo += [e for e in (item.__cause__, item.__context__) if e is not None]
    return seen


def _what_broke(exc: BaseException) -> str:
    """A few words on a transport failure while an answer was read."""
    causes = _causes(exc)
    if any(isinstance(e, (requests.exceptions.ContentDecodingError, urllib3.exceptions.DecodeError))
           for e in causes):
        return "has a corrupt Content-Encoding (bad gzip or deflate)"
    if any(isinstance(e, urllib3.exceptions.InvalidChunkLength) for e in causes):
        return "is badly chunked (a bad Transfer-Encoding chunk)"
    if any(isinstance(e, ConnectionResetError) for e in causes):
        return "was cut by a connection reset"
    if any(isinstance(e, http.client.IncompleteRead) for e in causes):
        return "broke off before its end (fewer bytes than it announced)"
    return "could not be read to its end"


def _unreachable_reason(exc: BaseException) -> str:
    """A few words on why a request got no answer."""
    causes = _causes(exc)
    for kind, words in ((urllib3.exceptions.NameResolutionError, "the name does not resolve"),
                        (ConnectionRefusedError, "connection refused"),
                        (urllib3.exceptions.ConnectTimeoutError, "no connection in time"),
                        (ConnectionResetError, "connection reset"),
                        (http.client.RemoteDisconnected, "closed without an answer"),
                        (urllib3.exceptions.ProtocolError, "no valid answer")):
        if any(isinstance(e, kind) for e in causes):
            return words
    return "no connection"


class MattingClient(Closing):
    """A client of one matting service.

    Args:
        server: base URL, e.g. ``http://127.0.0.1:5000`` (``None``: :func:`default_server`).
        timeout: seconds for a whole call, answer included (the retry too); the
            connection itself gets at most 5 s of it.
        pool_size: connections kept open; make it at least the number of threads that
            call :meth:`matte` at once.
        backoff: seconds to wait before the one retry.
        max_bytes: the most bytes of a result read (decoded); a larger answer is
            ``answer_too_large``.
    """

    def __init__(
        self,
        server: str | None = None,
        timeout: float = 120.0,
        pool_size: int = 8,
        backoff: float = 0.5,
        max_bytes: int | None = None,
    ) -> None:
        self.server = (server or default_server()).rstrip("/")
        self.timeout = timeout
        self.backoff = backoff
        self.max_bytes = MAX_ANSWER_BYTES if max_bytes is None else max_bytes
        self.session = requests.Session()
        adapter = _Adapter(pool_connections=1, pool_maxsize=max(1, pool_size))
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)

    def close(self) -> None:
        """Close the pooled connections."""
        self.session.close()

    def _timeout_error(self) -> MattingError:
        return MattingError("timeout", f"no complete answer from {self.server} within "
                            f"{self.timeout:g} s (raise --timeout for large images)")

    def _call(self, method: str, path: str, limit: int, *, cut: bool = False,
              **kwargs: Any) -> tuple[int, CaseInsensitiveDict, bytes, str]:
        """One request under one deadline, with the retry rule; the answer read whole.

        Returns:
            ``(status, headers, body, reason)``; an error answer's body is read up to
            :data:`MAX_TEXT_BYTES` (cut there), other answers up to ``limit`` (``cut``:
            cut there too, else ``answer_too_large``).
        """
        url = self.server + path
        deadline = _Deadline(self.timeout)
        outer = getattr(_active, "deadline", None)
        _active.deadline = deadline
        try:
            for attempt in (1, 2):
                try:
                    resp = self.session.request(method, url, allow_redirects=False, stream=True,
                                                timeout=(min(5.0, deadline.left()), deadline.left()),
                                                **kwargs)
                except _TRANSPORT_ERRORS as exc:
                    if deadline.expired or isinstance(exc, requests.ReadTimeout):
                        raise self._timeout_error() from exc
                    if not isinstance(exc, requests.ConnectionError):
                        raise MattingError("service_unreachable", f"cannot send the request to "
                                           f"{self.server}: {printable(exc, 200)}") from exc
                    if attempt == 1 and deadline.left() > self.backoff:
                        log.info("connection to %s failed (%s); retrying once", url, exc)
                        time.sleep(self.backoff)
                        continue
                    raise ServiceUnreachable(
                        "service_unreachable",
                        f"cannot get an answer from the matting service at {self.server} "
                        f"({_unreachable_reason(exc)}): {UNREACHABLE_HINT}",
                    ) from exc
                with resp:
                    status = resp.status_code
                    if status in RETRY_STATUSES and attempt == 1 and deadline.left() > self.backoff:
                        log.info("%s answered %s; retrying once", url, status)
                        resp.close()
                        time.sleep(self.backoff)
                        continue
                    if 300 <= status < 400:
                        where = printable(resp.headers.get("Location") or "nowhere", 200)
                        raise MattingError(
                            "redirect", f"{self.server} answered {status}, a redirect to {where}; it "
                            "is not followed (nothing is sent to another address): if that is the "
                            "matting service, give its address with --server", status)
                    error = status != 200
                    body = self._read(resp, deadline, MAX_TEXT_BYTES if error else limit,
                                      cut=cut or error)
                    return status, resp.headers, body, printable(resp.reason or "", 80)
            raise AssertionError("unreachable")  # pragma: no cover
        finally:
            deadline.close()
            _active.deadline = outer

    def _read(self, resp: requests.Response, deadline: _Deadline, limit: int, *, cut: bool) -> bytes:
        """The answer's body, decoded, at most ``limit`` bytes, before the deadline."""
        declared = resp.headers.get("Content-Length")
        if declared is not None:
            if not all(_DIGITS.fullmatch(part.strip()) for part in declared.split(",")):
                raise MattingError("bad_response", f"{self.server} answered with an invalid "
                                   f"Content-Length ({printable(declared, 40)}): is --server the "
                                   "matting service?", resp.status_code)
            if not cut and min(int(part) for part in declared.split(",")) > limit:
                raise self._too_large(limit, resp.status_code)
        buf = bytearray()
        try:
            for chunk in resp.iter_content(_CHUNK):
                buf += chunk
                if len(buf) > limit:
                    if cut:
                        return bytes(buf[:limit])
                    raise self._too_large(limit, resp.status_code)
        except MattingError:
            raise
        except _TRANSPORT_ERRORS as exc:
            if deadline.expired:
                raise self._timeout_error() from exc
            raise MattingError("bad_response", f"the answer from {self.server} {_what_broke(exc)}; "
                               "try again, and if it persists check what answers at --server",
                               resp.status_code) from exc
        if deadline.expired:
            raise self._timeout_error()
        return bytes(buf)

    def _too_large(self, limit: int, status: int) -> MattingError:
        return MattingError("answer_too_large", f"the answer from {self.server} is larger than "
                            f"{limit / 2**20:g} MiB, the most this client reads: is --server the "
                            "matting service?", status)

    def matte(
        self,
        image: bytes,
        *,
        filename: str = "image",
        bg_image: bytes | None = None,
        trimap: bytes | None = None,
        prior: bytes | None = None,
        **options: Any,
    ) -> tuple[bytes, CaseInsensitiveDict]:
        """Send one image to ``POST /v1/matte``.

        Args:
            image: the encoded image file (PNG, JPEG, WebP, ...).
            filename: the file name sent with it when other files go too (a multipart form;
                only for the service's logs); the image alone is the whole body.
            bg_image: an encoded background image (implies ``bg_mode=image``).
            trimap: an encoded trimap (0/128/255, same size as ``image``).
            prior: an encoded grey soft mask of the subject (same size as ``image``): skips
                segmentation, refined in its band (the video client's carried matte).
            options: form fields of the contract (:data:`FORM_FIELDS`); ``None`` values are
                left out.

        Returns:
            ``(body, headers)``: the encoded result and the answer's headers
            (``Content-Type``, ``X-Width``, ``X-Height``, ``X-Matting-Backend``, ...). The
            Content-Type is an image type (:data:`IMAGE_TYPES`); :func:`check_image` decodes
            the body.

        Raises:
            MattingError: the service answered an error, or did not answer in time, or the
                answer is not an image, too large, or broken.
            ServiceUnreachable: no connection (after one retry).
            TypeError: an option that the API does not have.
        """
        unknown = set(options) - FORM_FIELDS
        if unknown:
            raise TypeError(f"unknown matting option(s): {', '.join(sorted(unknown))}")
        files: dict[str, tuple[str, bytes]] = {}
        if bg_image is not None:
            files["bg_image"] = ("background", bg_image)
        if trimap is not None:
            files["trimap"] = ("trimap.png", trimap)
        if prior is not None:
            files["prior"] = ("prior", prior)
        data = {k: _form_value(v) for k, v in options.items() if v is not None}
        if files:
            files = {"image": (filename, image), **files}
            sent: dict[str, Any] = {"files": files, "data": data}
        else:  # the image alone: the whole body, the options in the query string (no
            # multipart form to build and parse: a few ms a video frame on each side)
            sent = {"data": image, "params": data,
                    "headers": {"Content-Type": "application/octet-stream"}}
        status, headers, body, reason = self._call("POST", "/v1/matte", self.max_bytes, **sent)
        if status != 200:
            raise error_from_answer(status, headers, body, reason)
        mime = (headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if mime not in IMAGE_TYPES:
            raise MattingError(
                "bad_response", f"{self.server} answered 200 with {printable(mime, 60) or 'no type'}, "
                "not an image: is --server the matting service (not a proxy or a login page)?",
                200, printable(headers.get("X-Request-Id") or "", 80) or None)
        return body, headers

    def ready(self) -> Mapping[str, Any]:
        """``GET /readyz`` as a dict; raises :class:`MattingError` when not ready."""
        status, headers, body, reason = self._call("GET", "/readyz", MAX_TEXT_BYTES, cut=True)
        if status != 200:
            raise error_from_answer(status, headers, body, reason)
        try:
            payload = json.loads(body)
        except (ValueError, RecursionError):
            payload = None
        if not isinstance(payload, dict):
            raise MattingError("bad_response", f"{self.server}/readyz did not answer a JSON object: "
                               "is --server the matting service?", 200)
        return payload

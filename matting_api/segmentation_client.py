"""HTTP client of the segmentation service (``POST /v1/mask``, ``GET /readyz``).

The matting service asks for the subjects' *soft mask* (``/v1/mask``: a 16-bit greyscale PNG
of the image's size, or an uncompressed TIFF from a service on this machine:
:func:`contract.transport.mask_format`), not for a trimap: the mask is the prior the matting
stage refines, and the trimap it needs is derived from it in this service (:mod:`trimap`), so
one model run and one decode give both.

The image travels as the request's whole body (``Content-Type: image/bmp`` or ``image/png``)
and the segmentation parameters in the query string, not as a multipart form: parsing a
900 kB multipart frame cost the segmentation worker about 7 ms of CPU, a fifth of its work
on a video frame with the selfie model (py-spy, 2026-12-06).

One :class:`SegmentationClient` per worker process, holding one pooled
:class:`requests.Session`. Every call is bounded in time: connect and read timeouts come from
the settings, and the body is read against a deadline, so a neighbour that trickles bytes
cannot hold a worker forever. Failures become :class:`~service_common.errors.ApiError`:

=====================================================  ====================================
what happened                                          answer
=====================================================  ====================================
cannot connect (after ONE retry), connection reset,    503 ``segmentation_unavailable``
segmentation answers 503 (it is still loading)
segmentation answers 503 ``overloaded`` (its memory     503 ``overloaded``, its ``Retry-After``
budget or queue is taken)
no (whole) answer within the timeouts                  504 ``segmentation_timeout``
422 ``no_subject``                                     422 ``no_subject`` (same message)
4xx that is the client's fault (``invalid_parameter``,  the same code and message (and
``invalid_image``, ``image_too_large``, ...)           ``field``, if a forwarded parameter)
anything else: not a PNG or TIFF, wrong size, more     502 ``segmentation_bad_response``
than one channel, an 8-bit TIFF, a TIFF of more
strips than rows, no pixel >= 0.5, 5xx, an
unexpected 4xx
=====================================================  ====================================

Only connection errors are retried (the request never reached the service, or a pooled
keep-alive connection had gone stale); a timeout is not retried.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import requests
import urllib3
from requests.adapters import HTTPAdapter

from contract.transport import mask_format, upload_format
from contract.vocab import MASK_KINDS, SEGMENTATION_FIELDS, SUBJECTS
from service_common.cpu import IN_FLIGHT_HEADER, requests_in_flight
from service_common.errors import ERROR_CODES, ApiError
from service_common.images import decode_mask16, encode_image, mime_type

log = logging.getLogger(__name__)

#: Longest side sent to the segmentation service, px. Every model works below it (Mask R-CNN
#: at most 1333 px, MODNet 128-1024, DeepLabV3 520, U^2-Net-p 320), so a larger photo loses
#: nothing by being sent scaled down, and its hop stays well inside the segmentation
#: service's upload limit (a 40 MP photo would be 120 MB of BMP; at 3072 px it is 28 MB).
SEND_MAX_SIDE = 3072

#: Error codes of the segmentation service that are the caller's fault: passed through.
PASS_THROUGH_CODES = frozenset({
    "no_subject", "invalid_parameter", "invalid_image", "unsupported_format",
    "image_too_large", "image_too_small", "payload_too_large",
})

#: Parameters the matting service forwards: a ``field`` naming one of them is passed through.
FORWARDED_FIELDS = frozenset(SEGMENTATION_FIELDS)

@dataclass(frozen=True)
class MaskResult:
    """The subjects' soft mask from the segmentation service.

    Attributes:
        mask: ``H x W`` float32 in ``[0, 1]`` (16-bit precision), at least one pixel >= 0.5.
        kind: the ``X-Mask-Kind`` header: ``"matte"`` (a matting model's alpha, refined in
            its own narrow band) or ``"segmentation"`` (a segmentation mask; also when the
            header is missing or unknown).
        backend: the ``X-Segmentation-Backend`` header (``modnet``, ``u2netp``, ``maskrcnn``, ...).
        reason: the ``X-Segmentation-Reason`` header (why that backend), or ``""``.
        subjects: the ``X-Subjects`` header (number of instances kept), or ``None``.
        elapsed_ms: wall time of the call, including the retry.
        subject: the ``X-Segmentation-Subject`` header (``subject=auto``: ``person`` or
            ``object``, what its rules saw), or ``""``.
    """

    mask: np.ndarray
    kind: str
    backend: str
    reason: str
    subjects: int | None
    elapsed_ms: float
    subject: str = ""


class SegmentationClient:
    """Calls one segmentation service.

    Args:
        base_url: e.g. ``http://127.0.0.1:3000`` (no trailing slash).
        connect_timeout: seconds to establish the TCP connection.
        read_timeout: seconds to wait for the answer (also the budget for reading the body).
        pool_size: connections kept alive (the worker's thread count is enough).
        transport: the image's format on the hop: ``png``, ``bmp`` or ``auto``
            (:func:`contract.transport.upload_format`); the mask comes back as PNG, or as
            uncompressed TIFF with BMP (:func:`contract.transport.mask_format`).
    """

    def __init__(
        self, base_url: str, connect_timeout: float, read_timeout: float, pool_size: int = 4,
        transport: str = "auto",
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.transport = upload_format(self.base_url, transport)
        self.mask_format = mask_format(self.base_url, transport)
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.session = requests.Session()
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=pool_size, max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)

    def close(self) -> None:
        self.session.close()

    # -------------------------------------------------------------- /v1/mask

    def mask(
        self,
        rgb: np.ndarray,
        params: dict[str, str] | None = None,
        request_id: str | None = None,
    ) -> MaskResult:
        """Ask for the soft mask of ``rgb`` (``H x W x 3`` uint8, sent lossless: PNG, or BMP
        on this machine, where coding costs more than the bytes; the mask comes back as 16-bit
        PNG, or as uncompressed TIFF on this machine).

        Args:
            rgb: the image exactly as the matting step will see it (after EXIF, resizing).
            params: form fields passed through (``classes``, ``score_threshold``, ...).
            request_id: forwarded as ``X-Request-Id`` so both services' logs line up.

        Raises:
            ApiError: see the module docstring for which code when.

        A photo with a side above :data:`SEND_MAX_SIDE` is sent scaled down to it and its
        mask scaled back up (bilinear).
        """
        full_height, full_width = rgb.shape[:2]
        scale = SEND_MAX_SIDE / max(full_height, full_width)
        if scale < 1.0:
            size = (max(1, round(full_width * scale)), max(1, round(full_height * scale)))
            rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
        height, width = rgb.shape[:2]
        body = encode_image(rgb, self.transport, compress_level=1)  # lossless either way
        headers = {"Accept": mime_type(self.mask_format), IN_FLIGHT_HEADER: str(requests_in_flight())}
        if request_id:
            headers["X-Request-Id"] = request_id
        fields = dict(params or {})
        if self.mask_format != "png":  # PNG is the default: its request stays as it was
            fields["format"] = self.mask_format
        started = time.perf_counter()
        # a 16-bit PNG never needs more; a TIFF is 2 bytes a pixel and its header
        max_bytes = 3 * width * height + (1 << 20)
        resp, content = self._post(body, fields, headers, max_bytes)
        elapsed_ms = (time.perf_counter() - started) * 1000.0
        if resp.status_code != 200:
            raise self._error_from(resp, content)
        mask = self._parse_mask(resp, content, width, height)
        if (height, width) != (full_height, full_width):
            mask = np.clip(cv2.resize(mask, (full_width, full_height), interpolation=cv2.INTER_LINEAR),
                           0.0, 1.0)
        kind = resp.headers.get("X-Mask-Kind", "segmentation")
        return MaskResult(
            mask=mask,
            kind=kind if kind in MASK_KINDS else "segmentation",
            backend=resp.headers.get("X-Segmentation-Backend", "unknown")[:64],
            reason=resp.headers.get("X-Segmentation-Reason", "")[:300],
            subjects=_int_or_none(resp.headers.get("X-Subjects")),
            elapsed_ms=elapsed_ms,
            subject=_seen_subject(resp.headers.get("X-Segmentation-Subject")),
        )

    def _post(
        self, body: bytes, params: dict[str, str], headers: dict[str, str], max_bytes: int
    ) -> tuple[requests.Response, bytes]:
        url = self.base_url + "/v1/mask"
        headers = {**headers, "Content-Type": mime_type(self.transport)}
        for attempt in (1, 2):
            try:
                return self._send(url, body, params, headers, max_bytes)
            except requests.exceptions.Timeout as exc:
                if isinstance(exc, requests.exceptions.ConnectTimeout):
                    if attempt == 1:
                        log.warning("segmentation connect timeout at %s; retrying once", url)
                        continue
                    raise self._unavailable(exc) from exc
                raise ApiError(
                    "segmentation_timeout",
                    f"the segmentation service did not answer within {self.read_timeout:g} s",
                ) from exc
            except requests.exceptions.ConnectionError as exc:
                if attempt == 1:
                    log.warning("segmentation connection error at %s (%s); retrying once",
                                url, type(exc).__name__)
                    continue
                raise self._unavailable(exc) from exc
            except requests.exceptions.RequestException as exc:
                raise ApiError(
                    "segmentation_bad_response",
                    f"the segmentation service's answer could not be read ({type(exc).__name__})",
                ) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    def _send(
        self, url: str, body: bytes, params: dict[str, str], headers: dict[str, str],
        max_bytes: int,
    ) -> tuple[requests.Response, bytes]:
        """POST ``body`` with ``params`` in the query string, then read the answer with one
        socket read at a time against a deadline (``connect + read`` timeout in all), so even
        a trickling answer cannot hang us: each read waits at most until the deadline, never a
        whole read timeout past it.
        Raises requests' exceptions (timeouts, connection errors)."""
        deadline = time.monotonic() + self.connect_timeout + self.read_timeout
        resp = self.session.post(
            url, data=body, params=params, headers=headers, stream=True,
            timeout=(self.connect_timeout, self.read_timeout),
        )
        try:
            chunks: list[bytes] = []
            size = 0
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise requests.exceptions.ReadTimeout("answer not received in time")
                _limit_next_read(resp, min(self.read_timeout, remaining))
                try:
                    chunk = resp.raw.read1(64 * 1024)
                except urllib3.exceptions.ReadTimeoutError as exc:
                    raise requests.exceptions.ReadTimeout(str(exc)) from exc
                except (urllib3.exceptions.ProtocolError, OSError) as exc:
                    raise requests.exceptions.ConnectionError(str(exc)) from exc
                except urllib3.exceptions.HTTPError as exc:
                    raise requests.exceptions.ContentDecodingError(str(exc)) from exc
                if not chunk:
                    break
                chunks.append(chunk)
                size += len(chunk)
                if size > max_bytes:
                    raise requests.exceptions.ContentDecodingError(
                        f"answer larger than {max_bytes} bytes")
                if time.monotonic() > deadline:
                    raise requests.exceptions.ReadTimeout("answer not received in time")
            return resp, b"".join(chunks)
        finally:
            resp.close()

    def _unavailable(self, exc: Exception) -> ApiError:
        # the internal address goes to the log only, never to the client
        log.warning("segmentation service at %s cannot be reached: %s", self.base_url, exc)
        return ApiError(
            "segmentation_unavailable",
            f"the segmentation service cannot be reached ({type(exc).__name__}); try again "
            "shortly (the operator finds its address in the matting service's log)",
        )

    @staticmethod
    def _error_from(resp: requests.Response, content: bytes) -> ApiError:
        """The :class:`ApiError` for a non-200 answer."""
        code, message, field = None, None, None
        try:
            payload = json.loads(content.decode("utf-8"))
            error = payload.get("error", {}) if isinstance(payload, dict) else {}
            code = error.get("code") if isinstance(error, dict) else None
            message = error.get("message") if isinstance(error, dict) else None
            field = error.get("field") if isinstance(error, dict) else None
        except (ValueError, UnicodeDecodeError):
            pass
        status = resp.status_code
        if (
            isinstance(code, str) and code in PASS_THROUGH_CODES
            and 400 <= status < 500 and ERROR_CODES[code][0] == status
        ):
            text = message if isinstance(message, str) and message else ERROR_CODES[code][1]
            if isinstance(field, str) and field in FORWARDED_FIELDS:  # the client's parameter
                return ApiError(code, text[:500], field=field)
            return ApiError(code, text[:500])
        if status == 503 and code == "overloaded":  # its memory or queue is taken: a moment's wait
            retry = resp.headers.get("Retry-After", "")
            return ApiError(
                "overloaded", "the segmentation service is busy with other pictures; retry after "
                "the Retry-After seconds",
                retry_after=min(60, int(retry)) if retry.isascii() and retry.isdigit() else None)
        if status == 503:
            return ApiError(
                "segmentation_unavailable",
                "the segmentation service is not ready yet (503); try again shortly",
            )
        log.warning("segmentation answered HTTP %s (code %r)", status, code)
        return ApiError(
            "segmentation_bad_response",
            f"the segmentation service answered HTTP {status}"
            + (f" ({code})" if isinstance(code, str) else ""),
        )

    @staticmethod
    def _parse_mask(
        resp: requests.Response, content: bytes, width: int, height: int
    ) -> np.ndarray:
        """Decode and check a mask answer; 502 ``segmentation_bad_response`` if unusable."""
        try:
            mask = decode_mask16(content, width, height)
        except ValueError as exc:
            why = str(exc)
            if why.startswith("not a PNG"):
                why = f"{why[:-1]}, Content-Type {resp.headers.get('Content-Type', '?')})"
            log.warning("unusable mask from segmentation: %s", why)
            raise ApiError("segmentation_bad_response",
                           f"the segmentation service answered an unusable mask: {why}") from exc
        if not (mask >= 0.5).any():
            raise ApiError("segmentation_bad_response", "the segmentation service answered an "
                           "unusable mask: no pixel of the subject (none >= 0.5), yet no no_subject error")
        return np.ascontiguousarray(mask)

    # -------------------------------------------------------------- /readyz

    def readiness(self, timeout: float = 2.0) -> tuple[bool, dict[str, Any]]:
        """``GET /readyz`` of the segmentation service: ``(ready, what it said)``, without its
        address (that goes to the log only). Never raises."""
        url = self.base_url + "/readyz"
        try:
            resp = self.session.get(url, timeout=(self.connect_timeout, timeout))
        except requests.exceptions.RequestException as exc:
            log.warning("segmentation service at %s is unreachable: %s", self.base_url, exc)
            return False, {"status": "unreachable", "error": type(exc).__name__}
        try:
            body = resp.json()
        except ValueError:
            body = {}
        info: dict[str, Any] = {"http_status": resp.status_code}
        if isinstance(body, dict):
            for key in ("status", "backend", "device", "backends", "policy"):
                if key in body:
                    info[key] = body[key]
        ready = resp.status_code == 200
        info.setdefault("status", "ready" if ready else "not_ready")
        return ready, info


def _limit_next_read(resp: requests.Response, seconds: float) -> None:
    """Make the next socket read of the streamed ``resp`` wait at most ``seconds``.

    urllib3 sets the socket's timeout again whenever the pooled connection is reused."""
    sock = getattr(getattr(resp.raw, "connection", None), "sock", None)
    if sock is not None:
        sock.settimeout(max(seconds, 0.001))


def _seen_subject(value: str | None) -> str:
    """``X-Segmentation-Subject`` if it is ``person`` or ``object``, else ``""``."""
    return value if value in SUBJECTS[1:] else ""


def _int_or_none(text: str | None) -> int | None:
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None

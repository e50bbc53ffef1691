"""The one error format of every endpoint of both services.

Every error answer is JSON::

    {"error": {"code": "no_subject", "message": "No person found ...", "request_id": "..."}}

with the HTTP status given by the code in :data:`ERROR_CODES`. ``code`` is stable and
machine-readable; ``message`` is for people and may change. No answer ever carries a
traceback: unexpected exceptions are logged with the request id and answered as
``internal_error``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from flask import Blueprint, Flask, g, jsonify, request
from werkzeug.exceptions import HTTPException

from contract.parse import InvalidValue

log = logging.getLogger(__name__)

#: code -> (HTTP status, what it means). The OpenAPI documents are built from this table.
ERROR_CODES: dict[str, tuple[int, str]] = {
    "empty_body": (400, "the request carried no image (empty body or empty file field)"),
    "missing_field": (400, "a required multipart field is missing"),
    "invalid_image": (400, "the upload is not an image, or it is truncated or corrupt"),
    "unsupported_format": (415, "the image format is not supported (PNG, JPEG, WebP, GIF, BMP, TIFF are)"),
    "image_too_large": (413, "the image has more pixels than BACKDROP_MAX_PIXELS allows"),
    "payload_too_large": (413, "the request body is larger than BACKDROP_MAX_UPLOAD_MB allows"),
    "image_too_small": (400, "the image is smaller than the minimum size"),
    "image_too_complex": (422, "decoding the image would take more work than allowed (a JPEG with "
                               "too many scans, a TIFF with too many strips or tiles, a PNG, GIF or "
                               "WebP with too many chunks or frames)"),
    "invalid_parameter": (400, "a parameter has a value that is not allowed"),
    "unknown_field": (400, "a form field, file or query parameter the endpoint does not read (a "
                           "misspelt name: the message names the closest known one)"),
    "too_many_fields": (400, "the form has more fields than the service reads"),
    "invalid_trimap": (400, "the given trimap does not fit the image or has no foreground"),
    "invalid_hints": (400, "the touch-up hints are not the image's size"),
    "no_subject": (422, "no subject of the requested classes was found in the image"),
    "bad_request": (400, "the request is not well-formed HTTP/1.1 (answered by the service's front)"),
    "client_timeout": (408, "the request's head or body arrived too slowly (BACKDROP_CLIENT_TIMEOUT)"),
    "uri_too_long": (414, "the request line is too long"),
    "header_too_large": (431, "the request's headers are too many or too large"),
    "overloaded": (503, "the service's queue is full, or the memory its worker may use is taken by "
                        "requests in flight; retry after the Retry-After seconds"),
    "request_timeout": (504, "the request took longer than BACKDROP_REQUEST_TIMEOUT"),
    "not_found": (404, "no such endpoint"),
    "method_not_allowed": (405, "the endpoint does not take this HTTP method"),
    "not_acceptable": (406, "the requested response type is not offered"),
    "segmentation_unavailable": (503, "the segmentation service cannot be reached"),
    "segmentation_timeout": (504, "the segmentation service did not answer in time"),
    "segmentation_bad_response": (502, "the segmentation service answered something unusable"),
    "not_ready": (503, "the service's models are not loaded"),
    "internal_error": (500, "an unexpected error; the request id locates it in the logs"),
}

#: 503 codes whose answers carry ``Retry-After`` (seconds) unless the error sets its own.
RETRY_AFTER_S: dict[str, int] = {"overloaded": 1, "not_ready": 5, "segmentation_unavailable": 5}

_HTTP_STATUS_CODES = {
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "payload_too_large",
}


class ApiError(Exception):
    """An error answered to the client in the common JSON format.

    Args:
        code: a key of :data:`ERROR_CODES`; it fixes the HTTP status.
        message: a sentence for people saying what was wrong and how to fix it.
        retry_after: seconds for the ``Retry-After`` header; ``None``: the code's default in
            :data:`RETRY_AFTER_S` (no header for the other codes).
        details: optional extra JSON-serialisable fields (e.g. ``{"field": "bg_color"}``).
    """

    def __init__(self, code: str, message: str, *, retry_after: int | None = None, **details: Any) -> None:
        if code not in ERROR_CODES:
            raise ValueError(f"unknown error code {code!r}")
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = ERROR_CODES[code][0]
        self.details = details
        self.retry_after = RETRY_AFTER_S.get(code) if retry_after is None else retry_after

    @property
    def headers(self) -> dict[str, str]:
        """Extra headers of the answer (``Retry-After`` where it applies)."""
        return {} if self.retry_after is None else {"Retry-After": str(max(1, int(self.retry_after)))}

    def to_dict(self, request_id: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        body.update(self.details)
        if request_id:
            body["request_id"] = request_id
        return {"error": body}


def invalid_parameter(exc: InvalidValue) -> ApiError:
    """The API's ``400 invalid_parameter`` for a value a :mod:`contract.parse` parser refused:
    the message starts with the field's name, and ``field`` names it."""
    return ApiError("invalid_parameter", f"{exc.field}: {exc.message}", field=exc.field, **exc.details)


def error_response(error: ApiError):
    """The Flask response for ``error`` in the common format (with its :attr:`ApiError.headers`)."""
    response = jsonify(error.to_dict(getattr(g, "request_id", None)))
    response.status_code = error.status
    response.headers.update(error.headers)
    return response


def api_error_from_http(exc: HTTPException) -> ApiError:
    """Translate a werkzeug HTTP error (404, 405, 413, ...) into an :class:`ApiError`."""
    code = _HTTP_STATUS_CODES.get(exc.code or 500)
    if code is None:
        if exc.code and 400 <= exc.code < 500:
            return ApiError("invalid_parameter", exc.description or "bad request")
        return ApiError("internal_error", "unexpected server error")
    message = ERROR_CODES[code][1]
    if code == "payload_too_large":
        if _too_many_parts():
            return ApiError("too_many_fields", f"the form has more than {MAX_FORM_PARTS} fields "
                            "and files; send only the fields the endpoint documents",
                            max_fields=MAX_FORM_PARTS)
        message = "the request body is larger than this server accepts (BACKDROP_MAX_UPLOAD_MB)"
    return ApiError(code, message)


#: Most multipart fields and files in one request (werkzeug's own limit, named here).
MAX_FORM_PARTS = 1000


def _too_many_parts() -> bool:
    """Whether werkzeug's 413 came from the number of form parts, not the body's size."""
    from flask import current_app, has_request_context, request

    if not has_request_context():
        return False
    limit = current_app.config.get("MAX_CONTENT_LENGTH")
    size = request.content_length
    return size is not None and (limit is None or size <= limit)


def as_api_error(exc: Exception) -> ApiError:
    """Any exception raised while handling a request, as the :class:`ApiError` to answer:
    itself, a refused value (:func:`invalid_parameter`), a werkzeug HTTP error, or (logged
    with the request id, never shown) ``internal_error``."""
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, InvalidValue):
        return invalid_parameter(exc)
    if isinstance(exc, HTTPException):
        return api_error_from_http(exc)
    log.exception("unhandled error (request %s)", getattr(g, "request_id", "-"))
    return ApiError("internal_error", ERROR_CODES["internal_error"][1])


def _drain_body() -> None:
    """Read and drop what is left of the request's body before an error is answered: a body
    left unread (a parameter refused before the upload was read) breaks the connection the
    answer goes on, and the front then reports 503 instead of the error. A body that cannot
    be read (too large, cut off) is left as it is."""
    try:
        while request.stream.read(1 << 16):
            pass
    except Exception:  # noqa: BLE001 - the error being answered is the one that matters
        pass


def register_error_handlers(app: Flask | Blueprint, respond: Callable[[ApiError], Any] | None = None) -> None:
    """Answer every error of ``app`` (or of a blueprint) with ``respond`` (default: the
    common JSON format, :func:`error_response`), never with a traceback; every answer carries
    the error's :attr:`ApiError.headers` (``Retry-After``), whoever formats its body."""
    answer = respond or error_response

    @app.errorhandler(Exception)
    def _any_error(exc: Exception):
        error = as_api_error(exc)
        _drain_body()
        response = answer(error)
        for key, value in error.headers.items():
            response.headers.setdefault(key, value)
        return response

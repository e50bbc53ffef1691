"""HTTP calls to the matting service (``POST /v1/matte``, ``GET /readyz``).

:class:`MattingClient` keeps one pooled :class:`requests.Session` (safe to share between
the threads of a batch or a video pipeline) and turns every failure into a
:class:`MattingError` that carries the API's ``code``, ``message``, HTTP ``status`` and
``request_id``. Connection errors and 503/504 answers are retried once after a short
back-off; nothing else is retried.

Example::

    client = MattingClient("http://127.0.0.1:5000", timeout=60)
    png, headers = client.matte(open("me.jpg", "rb").read(), bg_color="skyblue", format="png")
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from requests.structures import CaseInsensitiveDict

from contract.vocab import MATTE_FIELDS

log = logging.getLogger(__name__)

#: Where the CLI looks when neither ``--server`` nor ``BACKDROP_SERVER`` says otherwise.
DEFAULT_SERVER = "http://127.0.0.1:5000"

#: Form fields of ``POST /v1/matte`` (:data:`contract.vocab.MATTE_FIELDS`). Values are sent as
#: text; ``True``/``False`` become ``"true"``/``"false"``; ``None`` means "not sent".
FORM_FIELDS = frozenset(MATTE_FIELDS)

#: Answers worth one more try: the service (or the one behind it) is momentarily away.
RETRY_STATUSES = frozenset({503, 504})

UNREACHABLE_HINT = "is the service running? start it with `make serve`"


def default_server() -> str:
    """``$BACKDROP_SERVER`` if set, else :data:`DEFAULT_SERVER`."""
    return (os.environ.get("BACKDROP_SERVER") or DEFAULT_SERVER).rstrip("/")


class MattingError(Exception):
    """The matting call failed.

    Attributes:
        code: the API's error code (``no_subject``, ``invalid_image``, ...) or one of the
            client's own: ``service_unreachable``, ``timeout``, ``bad_response``.
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


def error_from_response(resp: requests.Response) -> MattingError:
    """A :class:`MattingError` from a non-200 answer in the common error format.

    Answers that are not in that format (a proxy's HTML page, say) become code
    ``http_<status>`` with the start of the body as the message.
    """
    request_id = resp.headers.get("X-Request-Id")
    try:
        body = resp.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        err = body["error"]
        return MattingError(
            str(err.get("code", f"http_{resp.status_code}")),
            str(err.get("message", resp.reason)),
            resp.status_code,
            str(err.get("request_id") or request_id or "") or None,
        )
    text = resp.text.strip().replace("\n", " ")[:200] or resp.reason or "no message"
    return MattingError(f"http_{resp.status_code}", text, resp.status_code, request_id)


class MattingClient:
    """A client of one matting service.

    Args:
        server: base URL, e.g. ``http://127.0.0.1:5000`` (``None``: :func:`default_server`).
        timeout: seconds to wait for an answer (per attempt); the connection itself gets
            at most 5 s.
        pool_size: connections kept open; make it at least the number of threads that
            call :meth:`matte` at once.
        backoff: seconds to wait before the one retry.
    """

    def __init__(
        self,
        server: str | None = None,
        timeout: float = 120.0,
        pool_size: int = 8,
        backoff: float = 0.5,
    ) -> None:
        self.server = (server or default_server()).rstrip("/")
        self.timeout = timeout
        self.backoff = backoff
        self.session = requests.Session()
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=max(1, pool_size))
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)

    def __enter__(self) -> MattingClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the pooled connections."""
        self.session.close()

    def _send(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        url = self.server + path
        timeout = (min(5.0, self.timeout), self.timeout)
        for attempt in (1, 2):
            try:
                resp = self.session.request(method, url, timeout=timeout, **kwargs)
            except requests.ConnectionError as exc:
                if attempt == 1:
                    log.info("connection to %s failed (%s); retrying once", url, exc)
                    time.sleep(self.backoff)
                    continue
                raise ServiceUnreachable(
                    "service_unreachable",
                    f"cannot connect to the matting service at {self.server}: {UNREACHABLE_HINT}",
                ) from exc
            except requests.Timeout as exc:
                raise MattingError(
                    "timeout", f"no answer from {self.server} within {self.timeout:g} s "
                    "(raise --timeout for large images)",
                ) from exc
            if resp.status_code in RETRY_STATUSES and attempt == 1:
                log.info("%s answered %s; retrying once", url, resp.status_code)
                resp.close()
                time.sleep(self.backoff)
                continue
            return resp
        raise AssertionError("unreachable")  # pragma: no cover

    def matte(
        self,
        image: bytes,
        *,
        filename: str = "image",
        bg_image: bytes | None = None,
        trimap: bytes | None = None,
        **options: Any,
    ) -> tuple[bytes, CaseInsensitiveDict]:
        """Send one image to ``POST /v1/matte``.

        Args:
            image: the encoded image file (PNG, JPEG, WebP, ...).
            filename: the file name sent with it (only for the service's logs).
            bg_image: an encoded background image (implies ``bg_mode=image``).
            trimap: an encoded trimap (0/128/255, same size as ``image``).
            options: form fields of the contract (:data:`FORM_FIELDS`); ``None`` values are
                left out.

        Returns:
            ``(body, headers)``: the encoded result and the answer's headers
            (``Content-Type``, ``X-Width``, ``X-Height``, ``X-Matting-Backend``, ...).

        Raises:
            MattingError: the service answered an error, or did not answer in time.
            ServiceUnreachable: no connection (after one retry).
            TypeError: an option that the API does not have.
        """
        unknown = set(options) - FORM_FIELDS
        if unknown:
            raise TypeError(f"unknown matting option(s): {', '.join(sorted(unknown))}")
        files: dict[str, tuple[str, bytes]] = {"image": (filename, image)}
        if bg_image is not None:
            files["bg_image"] = ("background", bg_image)
        if trimap is not None:
            files["trimap"] = ("trimap.png", trimap)
        data = {k: _form_value(v) for k, v in options.items() if v is not None}
        resp = self._send("POST", "/v1/matte", files=files, data=data)
        if resp.status_code != 200:
            raise error_from_response(resp)
        return resp.content, resp.headers

    def ready(self) -> Mapping[str, Any]:
        """``GET /readyz`` as a dict; raises :class:`MattingError` when not ready."""
        resp = self._send("GET", "/readyz")
        if resp.status_code != 200:
            raise error_from_response(resp)
        try:
            return resp.json()
        except ValueError as exc:
            raise MattingError("bad_response", "/readyz did not answer JSON", 200) from exc

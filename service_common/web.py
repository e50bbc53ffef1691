"""Flask plumbing shared by both services: limits, request ids, logging, uploads.

Nothing here knows about models. :func:`init_app` is called by each service's
``create_app`` right after the Flask object is made.
"""

from __future__ import annotations

import logging
import re
import threading
import time
import uuid
from collections.abc import Callable, Collection
from typing import Any

from flask import Flask, current_app, g, request

from contract.parse import closest_name, shown

from . import memory
from .config import ConfigError, Settings
from .cpu import IN_FLIGHT_HEADER, limit_blas_threads, sharing_cores
from .errors import MAX_FORM_PARTS, ApiError, register_error_handlers
from .weights import ModelError

log = logging.getLogger(__name__)

#: gunicorn's exit code for a worker that failed to boot (its arbiter then stops).
WORKER_BOOT_ERROR = 3

_REQUEST_ID_OK = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")

#: MIME types accepted as a raw image body (besides multipart).
RAW_IMAGE_TYPES = ("image/", "application/octet-stream")


def boot(name: str, factory: Callable[[], Flask]) -> Flask:
    """``factory()`` for a gunicorn worker, where an app that cannot start says why in one
    log line (a missing model file, a missing extra, a bad setting: the message says what to
    change) and the worker exits with gunicorn's boot-error code, which stops the server,
    instead of a traceback."""
    try:
        return factory()
    except (ModelError, ConfigError) as exc:
        logging.basicConfig()
        logging.getLogger(f"backdrop.{name}").error("the %s service cannot start: %s", name, exc)
        raise SystemExit(WORKER_BOOT_ERROR) from None


def configure_logging(level: str) -> None:
    """Log lines with time, level, logger and the request id (``-`` outside requests)."""

    class _RequestIdFilter(logging.Filter):
        def filter(self, record: logging.LogRecord) -> bool:
            try:
                record.request_id = getattr(g, "request_id", "-")
            except RuntimeError:  # outside an application context
                record.request_id = "-"
            return True

    root = logging.getLogger()
    if not any(getattr(h, "_backdrop", False) for h in root.handlers):
        handler = logging.StreamHandler()
        handler._backdrop = True  # type: ignore[attr-defined]
        handler.addFilter(_RequestIdFilter())
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")
        )
        root.addHandler(handler)
    root.setLevel(level)


def init_app(app: Flask, settings: Settings) -> None:
    """Limits, error handlers, request ids and timing for ``app``.

    * ``MAX_CONTENT_LENGTH`` from ``settings.max_upload_bytes`` (413 ``payload_too_large``);
    * every answer carries ``X-Request-Id`` (the client's, when it sent a sane one);
    * every error is JSON in the common format (:mod:`service_common.errors`);
    * debug mode stays off whatever the environment says;
    * BLAS on one thread; each request knows how many share the cores with it
      (:mod:`service_common.cpu`: its worker's requests in flight, or its sender's count);
    * the worker's memory budget (:mod:`service_common.memory`): its share of the container's
      limit, or ``BACKDROP_WORKER_MEMORY_MB``.
    """
    limit_blas_threads()
    memory.enable(settings.malloc_tuning)
    memory.configure(*memory.worker_memory_bytes(settings.worker_memory_mb, workers_sharing(app, settings)))
    counter = _InFlight()
    app.config["MAX_CONTENT_LENGTH"] = settings.max_upload_bytes
    app.config["MAX_FORM_MEMORY_SIZE"] = settings.max_upload_bytes
    app.config["MAX_FORM_PARTS"] = MAX_FORM_PARTS
    app.debug = False
    configure_logging(settings.log_level)
    register_error_handlers(app)

    @app.before_request
    def _start() -> None:
        given = request.headers.get("X-Request-Id", "")
        g.request_id = given if _REQUEST_ID_OK.match(given) else uuid.uuid4().hex[:16]
        g.started = time.perf_counter()
        here = counter.enter()
        try:
            sent = int(request.headers.get(IN_FLIGHT_HEADER, "1"))
        except ValueError:
            sent = 1
        g.sharing = sharing_cores(max(here, min(sent, 1024)))
        g.sharing.__enter__()

    @app.teardown_request
    def _end(exc: BaseException | None) -> None:  # noqa: ARG001 - Flask passes the error
        sharing = g.pop("sharing", None)
        if sharing is not None:
            sharing.__exit__(None, None, None)
            counter.leave()
        memory.after_request(request.content_length)

    @app.after_request
    def _finish(response):
        response.headers["X-Request-Id"] = getattr(g, "request_id", "-")
        started = getattr(g, "started", None)
        if started is not None:
            ms = (time.perf_counter() - started) * 1000.0
            log.info("%s %s -> %s in %.0f ms", request.method, request.path, response.status_code, ms)
        return response


def workers_sharing(app: Flask, settings: Settings) -> int:
    """The gunicorn workers that share this worker's container: its service's workers when the
    container runs one service (``BACKDROP_SERVICE``), both services' workers otherwise."""
    mine = settings.matting_workers if app.import_name.startswith("matting") else settings.seg_workers
    if settings.service is not None:
        return mine
    return settings.matting_workers + settings.seg_workers


class _InFlight:
    """The number of requests an app (one worker) is serving right now."""

    def __init__(self) -> None:
        self._count = 0
        self._lock = threading.Lock()

    def enter(self) -> int:
        """Count one more; return the count, this request included."""
        with self._lock:
            self._count += 1
            return self._count

    def leave(self) -> None:
        with self._lock:
            self._count -= 1


#: Where each app keeps its state (settings, models, clients) in ``app.extensions``.
STATE_KEY = "backdrop"


def attach_state(app: Flask, state: Any) -> None:
    """Keep ``state`` (built once per worker by ``create_app``) for the app's requests."""
    app.extensions[STATE_KEY] = state


def app_state() -> Any:
    """The state of the app handling the current request.

    Raises:
        ApiError: 503 ``not_ready`` when the app has none yet (its models are not loaded).
    """
    state = current_app.extensions.get(STATE_KEY)
    if state is None:
        raise ApiError("not_ready", "the service's models are not loaded yet; try again shortly")
    return state


def read_upload(field: str, *, required: bool = True, raw_body: bool = False) -> bytes | None:
    """The bytes of the uploaded file ``field``.

    Args:
        field: multipart field name.
        required: raise ``missing_field`` (or ``empty_body``) when absent.
        raw_body: also accept the image as the whole body with an ``image/*`` or
            ``application/octet-stream`` content type.

    Returns:
        the bytes, or ``None`` when absent and not required (an empty part without a file
        name, which is how a browser's form sends a file input left unset, counts as absent).

    Raises:
        ApiError: 400 ``empty_body`` for an empty file, optional or not (a client that
            attaches a file means it to be used), ``missing_field`` when a required one is
            missing, ``invalid_parameter`` when it came as a text field.
    """
    content_type = (request.mimetype or "").lower()
    if raw_body and content_type.startswith(RAW_IMAGE_TYPES):
        data = _read_body()
        if not data:
            raise ApiError("empty_body", "the request body is empty; send the image bytes")
        return data
    storage = request.files.get(field)
    if storage is None:
        if field in request.form:
            raise ApiError(
                "invalid_parameter",
                f"'{field}' must be sent as a file (multipart/form-data), not as a text field",
                field=field,
            )
        if not required:
            return None
        if not request.files and not request.form and not request.content_length:
            raise ApiError("empty_body", f"the request is empty; send the image as multipart field '{field}'")
        raise ApiError("missing_field", f"multipart field '{field}' is missing", field=field)
    data = storage.read()
    if not data:
        if not required and not storage.filename:
            return None  # a browser's form sends an unset file input as an empty, nameless file
        raise ApiError("empty_body", f"the file in field '{field}' is empty; attach the picture, or "
                       "leave the field out", field=field)
    return data


def _read_body(chunk: int = 1 << 16) -> bytes:
    """The whole request body, read in chunks.

    A streamed (chunked) body has no Content-Length to check up front: werkzeug's limited
    stream raises 413 when it grows past ``MAX_CONTENT_LENGTH`` while read in chunks, but a
    single ``read()`` stops quietly at the limit, and the truncated image would be answered
    as ``invalid_image`` instead of ``payload_too_large``.
    """
    parts = []
    while block := request.stream.read(chunk):
        parts.append(block)
    return b"".join(parts)


def param(name: str, default: str | None = None) -> str | None:
    """A parameter from the form, else the query string, stripped; ``default`` when absent."""
    value = request.form.get(name)
    if value is None:
        value = request.args.get(name)
    if value is None:
        return default
    value = value.strip()
    return value if value != "" else default


def check_fields(fields: Collection[str], files: Collection[str], *, refused: Collection[str] = (),
                 required_file: str | None = None) -> None:
    """Refuse what the endpoint would not read: every name of the form, its files and the
    query string must be one of ``fields`` (text, also accepted in the query string),
    ``files`` (uploads) or ``refused`` (names the endpoint answers with its own error).
    ``required_file`` is the upload the endpoint needs: an unknown file that resembles no
    known name is taken for it when it is missing (``file`` -> ``did you mean image?``).

    Raises:
        ApiError: 400 ``unknown_field`` naming the first unknown name and the closest known
            one (``did you mean bg_color?``; a misspelt file is matched among the files
            first); 400 ``invalid_parameter`` for a file sent where a text field is expected,
            or a file's name in the query string.
    """
    readable = (*fields, *files)
    known = (*readable, *refused)
    for name in request.files:
        name = name or ""  # a part whose name werkzeug could not read comes as None
        if name in fields:
            raise ApiError("invalid_parameter", f"'{name}' is a text field, not a file: send its value "
                           f"as {name}=VALUE", field=name)
        if name not in known:
            missing = required_file if required_file not in request.files else None
            suggestion = closest_name(name, files) or missing or closest_name(name, readable)
            raise _unknown_field(name, "file", suggestion, readable)
    for where, names in (("field", request.form), ("query parameter", request.args)):
        for name in names:
            name = name or ""  # a part whose name werkzeug could not read comes as None
            if name in files and where == "query parameter":
                raise ApiError("invalid_parameter", f"'{name}' is a file: upload it as a multipart "
                               "file field, not in the query string", field=name)
            if name not in known:
                raise _unknown_field(name, where, closest_name(name, fields) or closest_name(name, readable),
                                     readable)


def _unknown_field(name: str, where: str, suggestion: str | None, readable: Collection[str]) -> ApiError:
    """400 ``unknown_field``: the name, the closest known one (or all of them), what to do."""
    details: dict[str, Any] = {"field": name[:64], "known": list(readable)}
    if suggestion is not None:
        details["did_you_mean"] = suggestion
        hint = f"did you mean {suggestion}?"
    else:
        hint = "this endpoint reads " + ", ".join(readable) + "."
    if not name:
        return ApiError("unknown_field", f"a {where} has no name: {hint} Name it, or leave it out.",
                        **details)
    return ApiError("unknown_field", f"unknown {where} {shown(name)}: {hint} Fix the name, or leave "
                    "it out.", **details)

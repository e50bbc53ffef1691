"""One way to check the services' error answers, for Flask test-client responses and
``requests`` responses alike.

Every error of both services is JSON ``{"error": {"code", "message", "request_id", ...}}``
with the HTTP status fixed by the code (:data:`service_common.errors.ERROR_CODES`), and no
answer leaks a traceback or a server path (:data:`LEAKS`). remove.bg's endpoint answers its
own envelope ``{"errors": [...]}`` on purpose: it is not checked here.

Imported by its bare name (``from apierrors import assert_api_error``), like the folders' own
helper modules: ``tests/`` is on ``sys.path`` because ``tests/conftest.py`` lives there.
"""

from __future__ import annotations

import json
import re
from typing import Any

from service_common.errors import ERROR_CODES

#: What must never appear in an answer: a traceback, a path of the server's files, an HTML
#: debugger page.
LEAKS = re.compile(r'Traceback|File "|/work/|site-packages|\.py[",: ]|<!doctype html', re.IGNORECASE)


def body_of(response: Any) -> bytes:
    """The body of a Flask test response (``.data``) or a ``requests`` response (``.content``)."""
    return response.data if hasattr(response, "data") else response.content


def assert_no_leak(response: Any) -> None:
    """No traceback, source path or HTML debugger page in the body."""
    text = body_of(response).decode("utf-8", errors="replace")
    match = LEAKS.search(text)
    assert match is None, f"the answer leaks {match.group(0)!r}: {text[:300]}"


def assert_api_error(response: Any, status: int, code: str) -> dict[str, Any]:
    """``response`` is the common JSON error with ``status`` and ``code``: a non-empty
    message, the request id of the answer's ``X-Request-Id``, no leak. Returns the ``error``
    object (details included: ``field``, ``valid``, ...) for the test's own checks."""
    body = body_of(response)
    assert response.status_code == status, (response.status_code, body[:300])
    assert ERROR_CODES[code][0] == status, f"{code!r} is answered {ERROR_CODES[code][0]}, not {status}"
    assert response.headers["Content-Type"].startswith("application/json"), response.headers
    assert_no_leak(response)
    payload = json.loads(body)
    assert set(payload) == {"error"}, payload
    error = payload["error"]
    assert error["code"] == code, error
    assert isinstance(error["message"], str) and error["message"].strip(), error
    assert error["request_id"] and error["request_id"] == response.headers["X-Request-Id"], (
        error, response.headers.get("X-Request-Id"))
    return error

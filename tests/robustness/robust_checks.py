"""Checks of the services' answers shared by the robustness tests."""

from __future__ import annotations

import re

import requests

#: What must never appear in an answer: a traceback, a path of the server's files, an HTML
#: debugger page.
LEAKS = re.compile(r'Traceback|File "|/work/|site-packages|\.py[",: ]|<!doctype html', re.IGNORECASE)


def assert_no_leak(response: requests.Response) -> None:
    """No traceback, source path or HTML debugger page in the body."""
    text = response.content.decode("utf-8", errors="replace")
    match = LEAKS.search(text)
    assert match is None, f"the answer leaks {match.group(0)!r}: {text[:300]}"


def check_error(response: requests.Response, status: int, code: str) -> dict:
    """The common JSON error with ``status`` and ``code``; returns ``body["error"]``."""
    assert response.status_code == status, (response.status_code, response.text[:300])
    assert response.headers["Content-Type"].startswith("application/json")
    assert_no_leak(response)
    error = response.json()["error"]
    assert error["code"] == code, error
    assert error["message"] and error["request_id"] == response.headers["X-Request-Id"]
    return error


def check_removebg_error(response: requests.Response, status: int, code: str) -> dict:
    """remove.bg's envelope ``{"errors": [{"title", "code"}]}``; returns the error."""
    assert response.status_code == status, (response.status_code, response.text[:300])
    assert_no_leak(response)
    body = response.json()
    assert set(body) == {"errors"} and len(body["errors"]) == 1, body
    (error,) = body["errors"]
    assert error["code"] == code and error["title"], error
    return error

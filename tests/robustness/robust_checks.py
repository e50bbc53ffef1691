"""Checks of the services' answers shared by the robustness tests.

The common JSON error is checked by :func:`apierrors.assert_api_error` (one helper for the
whole suite); what is left here is remove.bg's own envelope.
"""

from __future__ import annotations

import requests
from apierrors import assert_no_leak


def check_removebg_error(response: requests.Response, status: int, code: str) -> dict:
    """remove.bg's envelope ``{"errors": [{"title", "code"}]}``; returns the error."""
    assert response.status_code == status, (response.status_code, response.text[:300])
    assert_no_leak(response)
    body = response.json()
    assert set(body) == {"errors"} and len(body["errors"]) == 1, body
    (error,) = body["errors"]
    assert error["code"] == code and error["title"], error
    return error

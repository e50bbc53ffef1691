"""``GET /``: the web page (drop a photo, pick a background, touch up the edge, download).

A static page and its assets shipped in the package (``matting_api/static/``): no build
step, nothing fetched from elsewhere, so it works on a machine without internet. The page is
a client like any other: it calls the public ``POST /v1/matte`` of this service, with the
touch-up strokes as its ``hints`` upload (:mod:`trimap.hints`). A Content-Security-Policy
keeps it to this origin.
"""

from __future__ import annotations

from flask import Blueprint, Response

#: Where the page's files are, relative to this package; served under :data:`ASSETS_URL`.
STATIC_FOLDER = "static"
ASSETS_URL = "/page"
#: Only this origin: scripts, styles, requests; images also from the page's own blob: URLs.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
    "connect-src 'self'; form-action 'none'; base-uri 'none'; frame-ancestors 'none'"
)

bp = Blueprint("page", __name__, static_folder=STATIC_FOLDER, static_url_path=ASSETS_URL)


@bp.after_request
def _page_headers(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


@bp.get("/")
def index() -> Response:
    """The page itself."""
    response = bp.send_static_file("index.html")
    response.headers["Cache-Control"] = "no-cache"
    return response


"""Response headers shared by ``/v1/matte`` and ``/v1.0/removebg``."""

from __future__ import annotations

from flask import Response

from contract.formats import OUTPUT_FORMATS

from .pipeline import MatteResult


def result_headers(result: MatteResult) -> dict[str, str]:
    """``X-Width``, ``X-Height``, ``X-Foreground-*``, the backends, ``Server-Timing`` and,
    with touch-up hints, ``X-Hints``."""
    left, top, width, height = result.foreground
    headers = {
        "X-Width": str(result.width),
        "X-Height": str(result.height),
        "X-Foreground-Top": str(top),
        "X-Foreground-Left": str(left),
        "X-Foreground-Width": str(width),
        "X-Foreground-Height": str(height),
        "X-Segmentation-Backend": result.segmentation_backend,
        "X-Segmentation-Reason": result.segmentation_reason,
        "X-Matting-Backend": result.matting_backend,
        "Server-Timing": result.server_timing(),
    }
    if result.segmentation_subject:
        headers["X-Segmentation-Subject"] = result.segmentation_subject
    if result.hints is not None:
        headers["X-Hints"] = f"keep={result.hints[0]}, remove={result.hints[1]}"
    return headers


def image_response(result: MatteResult, extra_headers: dict[str, str] | None = None) -> Response:
    """The encoded result as the body, with the result headers."""
    response = Response(result.body, mimetype=result.mime)
    response.headers.update(result_headers(result))
    response.headers["Content-Disposition"] = (
        f'inline; filename="result{OUTPUT_FORMATS[result.format].extension}"'
    )
    if extra_headers:
        response.headers.update(extra_headers)
    return response

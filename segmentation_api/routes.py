"""HTTP endpoints of the segmentation service: parse, call, respond.

* ``POST /v1/trimap``: image in, trimap PNG (or JSON with ``Accept: application/json``) out;
* ``GET /healthz``: the process is alive;
* ``GET /readyz``: the models are loaded.

The contract (parameters, headers, error codes) is in the README's API section. Every
answer of ``/v1/trimap`` once a backend is chosen (200, and errors such as 422
``no_subject``) says which one in ``X-Segmentation-Backend``.
"""

from __future__ import annotations

import base64
import time

from flask import Blueprint, Response, current_app, g, jsonify, request

from service_common.errors import ApiError
from service_common.images import decode_image, encode_image, mime_type
from service_common.web import param, read_upload

from .params import parse_backend, parse_params
from .pipeline import SegmentParams, SegmentResult, segment
from .state import SegmentationState, current_state

bp = Blueprint("segmentation", __name__)


@bp.after_request
def _backend_header(response: Response) -> Response:
    name = g.get("segmentation_backend")
    if name:
        response.headers["X-Segmentation-Backend"] = name
    return response


def _state() -> SegmentationState:
    state = current_state()
    if state is None or not state.backends:
        raise ApiError("not_ready", "the segmentation models are not loaded yet")
    return state


def _wants_json() -> bool:
    """JSON when the client prefers it; 406 when it accepts neither PNG nor JSON."""
    if not request.accept_mimetypes:
        return False
    best = request.accept_mimetypes.best_match(["image/png", "application/json"])
    if best is None:
        raise ApiError("not_acceptable", "this endpoint answers image/png or application/json")
    return best == "application/json"


def _no_subject(params: SegmentParams, backend_name: str, classes_used: bool) -> ApiError:
    what = ", ".join(params.classes) if classes_used else "salient object"
    return ApiError(
        "no_subject",
        f"no {what} found with score > {params.score_threshold:g} (backend {backend_name})",
        backend=backend_name,
        classes=list(params.classes),
        score_threshold=params.score_threshold,
    )


def _box_text(box: tuple[int, int, int, int]) -> str:
    return ",".join(str(v) for v in box)


@bp.get("/healthz")
def healthz() -> Response:
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz() -> Response:
    state = _state()
    default = state.backend()
    return jsonify(status="ready", backend=default.name, device=default.device,
                   backends=list(state.backends))


@bp.post("/v1/trimap")
def trimap() -> Response:
    state = _state()
    settings = current_app.config["BACKDROP_SETTINGS"]
    as_json = _wants_json()
    backend = state.backend(parse_backend(param, list(state.backends)))
    g.segmentation_backend = backend.name
    params = parse_params(param, backend.class_names, backend.class_aliases)

    started = time.perf_counter()
    decoded = decode_image(read_upload("image", raw_body=True) or b"", settings.max_pixels)
    decode_ms = (time.perf_counter() - started) * 1000.0

    result: SegmentResult = segment(backend, decoded.rgb, params)
    if result.trimap is None:
        raise _no_subject(params, backend.name, backend.classes_used)

    started = time.perf_counter()
    png = encode_image(result.trimap.trimap, "png")
    payload = None
    if as_json:
        payload = {
            "backend": backend.name,
            "device": backend.device,
            "width": decoded.width,
            "height": decoded.height,
            "subjects": len(result.instances),
            "box": list(result.trimap.box),
            "instances": [
                {"label": inst.label, "score": round(inst.score, 4), "box": list(inst.box)}
                for inst in result.instances
            ],
            "classes_ignored": not backend.classes_used,
            "trimap_png_base64": base64.b64encode(png).decode("ascii"),
        }
    encode_ms = (time.perf_counter() - started) * 1000.0

    timings = {"decode": decode_ms, **result.timings_ms, "encode": encode_ms}
    total_ms = (time.perf_counter() - g.started) * 1000.0
    if payload is not None:
        payload["timing_ms"] = {k: round(v, 1) for k, v in {**timings, "total": total_ms}.items()}
        response = jsonify(payload)
    else:
        response = Response(png, mimetype=mime_type("png"))
    response.headers["X-Subjects"] = str(len(result.instances))
    response.headers["X-Subject-Box"] = _box_text(result.trimap.box)
    response.headers["X-Processing-Ms"] = f"{total_ms:.1f}"
    response.headers["Server-Timing"] = ", ".join(f"{k};dur={v:.1f}" for k, v in timings.items())
    return response

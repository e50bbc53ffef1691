"""HTTP endpoints of the segmentation service: parse, call, respond.

* ``POST /v1/trimap``: image in, trimap PNG (or JSON with ``Accept: application/json``) out;
* ``POST /v1/mask``: image in, the subjects' soft mask as a 16-bit greyscale PNG (or JSON)
  out: what the matting service uses as its prior;
* ``GET /healthz``: the process is alive;
* ``GET /readyz``: the models are loaded, and which backend serves what.

The contract (parameters, headers, error codes) is in the README's API section. Every
answer of ``/v1/trimap`` and ``/v1/mask`` once a backend is chosen (200, and errors such as
422 ``no_subject``) says which one in ``X-Segmentation-Backend`` and why in
``X-Segmentation-Reason``.
"""

from __future__ import annotations

import base64
import time

from flask import Blueprint, Response, current_app, g, jsonify, request

from service_common.errors import ApiError
from service_common.images import decode_image, encode_image, encode_mask16, mime_type
from service_common.web import param, read_upload

from .backends import Backend, box_of_mask
from .params import parse_backend, parse_classes, parse_params
from .pipeline import SegmentParams, SegmentResult, segment, with_trimap
from .state import SegmentationState, current_state

bp = Blueprint("segmentation", __name__)


@bp.after_request
def _backend_header(response: Response) -> Response:
    name = g.get("segmentation_backend")
    if name:
        response.headers["X-Segmentation-Backend"] = name
        response.headers["X-Segmentation-Reason"] = g.get("segmentation_reason", "")
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
    default = state.default
    return jsonify(status="ready", backend=default.name, device=default.device,
                   backends=list(state.backends), policy=state.policy.as_dict())


def _choose(state: SegmentationState) -> tuple[Backend, str]:
    """The backend of this request and why: the one it names, else the policy's choice by
    its classes."""
    requested = parse_backend(param, list(state.backends))
    if requested is not None:
        return state.backends[requested], f"requested backend={requested}"
    policy = state.policy
    if policy.mode == "single":
        return state.default, policy.why
    person = state.backends[policy.person]
    other = state.backends.get(policy.other) if policy.other else None
    from .backends.maskrcnn import class_names as coco_class_names

    valid = dict.fromkeys([*person.class_names, *(other.class_names if other else coco_class_names())])
    classes = parse_classes(param, list(valid), other.class_aliases if other else None)
    name, reason = policy.choose(classes)
    if name is None:
        raise ApiError("not_ready", f"no loaded backend finds {', '.join(classes)}: {policy.missing}")
    return state.backends[name], reason


def _segment() -> tuple[Backend, SegmentParams, SegmentResult, dict[str, float]]:
    """What both endpoints do: choose the backend, parse, decode, segment; raise 422 when
    nothing is found. Returns the backend, the parameters, the result and ``{"decode": ms}``."""
    state = _state()
    settings = current_app.config["BACKDROP_SETTINGS"]
    backend, reason = _choose(state)
    g.segmentation_backend = backend.name
    g.segmentation_reason = reason
    params = parse_params(param, backend.class_names, backend.class_aliases)
    started = time.perf_counter()
    decoded = decode_image(read_upload("image", raw_body=True) or b"", settings.max_pixels)
    decode_ms = (time.perf_counter() - started) * 1000.0
    result = segment(backend, decoded.rgb, params)
    if not result.found:
        raise _no_subject(params, backend.name, backend.classes_used)
    return backend, params, result, {"decode": decode_ms}


def _answer(body: bytes, payload: dict | None, backend: Backend, result: SegmentResult,
            box: tuple[int, int, int, int], timings: dict[str, float], shape: tuple[int, int],
            body_key: str) -> Response:
    """The PNG (or, with ``payload``, the JSON) answer with the common headers."""
    total_ms = (time.perf_counter() - g.started) * 1000.0
    if payload is not None:
        height, width = shape
        payload.update({
            "backend": backend.name,
            "mask_kind": backend.mask_kind,
            "reason": g.segmentation_reason,
            "device": backend.device,
            "width": width,
            "height": height,
            "subjects": len(result.instances),
            "box": list(box),
            "instances": [
                {"label": inst.label, "score": round(inst.score, 4), "box": list(inst.box)}
                for inst in result.instances
            ],
            "classes_ignored": not backend.classes_used,
            body_key: base64.b64encode(body).decode("ascii"),
            "timing_ms": {k: round(v, 1) for k, v in {**timings, "total": total_ms}.items()},
        })
        response = jsonify(payload)
    else:
        response = Response(body, mimetype=mime_type("png"))
    response.headers["X-Subjects"] = str(len(result.instances))
    response.headers["X-Mask-Kind"] = backend.mask_kind
    response.headers["X-Subject-Box"] = _box_text(box)
    response.headers["X-Processing-Ms"] = f"{total_ms:.1f}"
    response.headers["Server-Timing"] = ", ".join(f"{k};dur={v:.1f}" for k, v in timings.items())
    return response


@bp.post("/v1/trimap")
def trimap() -> Response:
    as_json = _wants_json()
    backend, params, result, timings = _segment()
    result = with_trimap(result, params.trimap)
    assert result.trimap is not None  # a found subject always has a trimap
    started = time.perf_counter()
    png = encode_image(result.trimap.trimap, "png")
    timings = {**timings, **result.timings_ms, "encode": (time.perf_counter() - started) * 1000.0}
    return _answer(png, {} if as_json else None, backend, result, result.trimap.box, timings,
                   result.trimap.trimap.shape, "trimap_png_base64")


@bp.post("/v1/mask")
def mask() -> Response:
    """The subjects' combined soft mask: a single-channel 16-bit PNG of the input's size,
    ``value / 65535`` in ``[0, 1]``. ``X-Subject-Box`` is the box of the pixels >= 0.5,
    ``X-Mask-Kind`` says whether it is a matte or a segmentation mask."""
    as_json = _wants_json()
    backend, _params, result, timings = _segment()
    assert result.mask is not None
    started = time.perf_counter()
    png = encode_mask16(result.mask)
    timings = {**timings, **result.timings_ms, "encode": (time.perf_counter() - started) * 1000.0}
    return _answer(png, {} if as_json else None, backend, result, box_of_mask(result.mask), timings,
                   result.mask.shape, "mask_png16_base64")

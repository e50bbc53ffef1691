"""HTTP endpoints of the segmentation service: parse, call, respond.

* ``POST /v1/trimap``: image in, trimap PNG (or JSON with ``Accept: application/json``) out;
* ``POST /v1/mask``: image in, the subjects' soft mask as a 16-bit greyscale PNG (or JSON)
  out: what the matting service uses as its prior;
* both: ``format=tiff`` answers an uncompressed TIFF in one strip instead of the PNG (the same
  values; what the matting service asks for on this machine, where coding costs more than
  the bytes: :mod:`contract.transport`);
* ``GET /healthz``: the process is alive;
* ``GET /readyz``: the models are loaded, and which backend serves what.

The contract (parameters, headers, error codes) is in the README's API section. Every
answer of ``/v1/trimap`` and ``/v1/mask`` once a backend is chosen (200, and errors such as
422 ``no_subject``) says which one in ``X-Segmentation-Backend`` and why in
``X-Segmentation-Reason``.
"""

from __future__ import annotations

from flask import Blueprint, Response, g, jsonify, request

from contract.vocab import SEGMENT_FIELDS, SEGMENT_FILES
from service_common.errors import ApiError
from service_common.images import mime_type
from service_common.web import app_state, check_fields, param, read_upload

from .backends import Backend
from .backends.maskrcnn import class_names as coco_class_names
from .options import (
    Getter,
    check_subject,
    parse_backend,
    parse_classes,
    parse_format,
    parse_options,
    parse_subject,
)
from .pipeline import run
from .responses import segment_response
from .state import SegmentationState
from .subject import AutoSubject

bp = Blueprint("segmentation", __name__)


@bp.after_request
def _backend_header(response: Response) -> Response:
    name = g.get("segmentation_backend")
    if name:
        response.headers["X-Segmentation-Backend"] = name
        response.headers["X-Segmentation-Reason"] = g.get("segmentation_reason", "")
    if g.get("segmentation_subject"):
        response.headers["X-Segmentation-Subject"] = g.segmentation_subject
    return response


def _state() -> SegmentationState:
    return app_state()


def _wants_json(fmt: str) -> bool:
    """JSON when the client prefers it; 406 when it accepts neither the picture's type
    (``format``: PNG or TIFF) nor JSON. JSON carries a PNG (``mask_png16_base64``), so with
    ``format=tiff`` it is a 400 naming ``format``."""
    mime = mime_type(fmt)
    if not request.accept_mimetypes:
        return False
    best = request.accept_mimetypes.best_match([mime, "application/json"])
    if best is None:
        raise ApiError("not_acceptable", f"this endpoint answers {mime} (format={fmt}) or "
                       "application/json")
    if best == "application/json" and fmt != "png":
        raise ApiError("invalid_parameter", f"format: the JSON answer carries the picture as PNG "
                       f"in base64; leave format out, or ask for {mime} (Accept)", field="format")
    return best == "application/json"


@bp.get("/healthz")
def healthz() -> Response:
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz() -> Response:
    state = _state()
    default = state.default
    return jsonify(status="ready", backend=default.name, device=default.device,
                   backends=list(state.backends), policy=state.policy.as_dict())


def _choose(state: SegmentationState) -> tuple[Backend | AutoSubject, str]:
    """The backend of this request and why: the one it names, else the policy's choice by
    its ``subject`` and classes (``subject=auto`` with both offline models loaded and no
    classes named: :class:`~segmentation_api.subject.AutoSubject`, which decides per photo)."""
    subject = parse_subject(param)
    requested = parse_backend(param, list(state.backends))
    if requested is not None:
        return state.backends[requested], f"requested backend={requested}"
    policy = state.policy
    if policy.mode == "single":
        return state.default, policy.why if subject == "auto" else f"subject={subject}: {policy.why}"
    person = state.backends[policy.person]
    other = state.backends.get(policy.other) if policy.other else None
    valid = dict.fromkeys([*person.class_names, *(other.class_names if other else coco_class_names())])
    classes = parse_classes(param, list(valid), other.class_aliases if other else None)
    if param("classes") is not None:
        check_subject(subject, classes)
        name, reason = policy.choose(classes)
    elif subject == "person":
        name, reason = policy.person, f"subject=person: {policy.person}; {policy.why}"
    elif subject == "object":
        name, reason = policy.other, f"subject=object: {policy.other}; {policy.why}"
    elif other is None:
        name, reason = policy.person, f"subject=auto: {policy.person}, the only model loaded; {policy.why}"
    else:
        return AutoSubject(person, other), f"subject=auto: {person.name}, then {other.name} when needed"
    if name is None:
        what = ", ".join(classes) if param("classes") is not None else f"a subject={subject}"
        raise ApiError("not_ready", f"no loaded backend finds {what}: {policy.missing}")
    return state.backends[name], reason


def _getter(source: Backend | AutoSubject, subject: str) -> Getter:
    """The request's parameters, where ``subject=object`` without classes asks a class-based
    backend (Mask R-CNN, DeepLabV3) for every class it knows but people."""
    if subject != "object" or param("classes") is not None or isinstance(source, AutoSubject):
        return param
    others = [name for name in source.class_names if name != "person"]
    if not source.classes_used or not others:
        return param
    return lambda name, default=None: ",".join(others) if name == "classes" else param(name, default)


def _segment(output: str) -> Response:
    """Both endpoints: refuse unknown fields, choose the backend, parse, run the pipeline,
    answer."""
    check_fields(SEGMENT_FIELDS, SEGMENT_FILES, required_file="image")
    fmt = parse_format(param)
    as_json = _wants_json(fmt)
    state = _state()
    source, reason = _choose(state)
    g.segmentation_backend, g.segmentation_reason = source.name, reason
    options = parse_options(_getter(source, parse_subject(param)), source.class_names,
                            source.class_aliases)
    image = read_upload("image", raw_body=True) or b""
    try:
        answer = run(source, image, options, output, state.settings.max_pixels, fmt)
    except ApiError as error:
        g.segmentation_backend = error.details.get("backend", source.name)
        g.segmentation_reason = error.details.get("reason", reason)
        raise
    backend = answer.result.backend
    assert backend is not None  # segment() records the model that answered
    reason = answer.result.reason or reason
    g.segmentation_backend, g.segmentation_reason = backend.name, reason
    g.segmentation_subject = answer.result.subject
    return segment_response(answer, backend, reason, output, as_json)


@bp.post("/v1/trimap")
def trimap() -> Response:
    """The trimap (0/128/255 PNG, or ``format=tiff`` TIFF, of the input's size) of the
    subjects found."""
    return _segment("trimap")


@bp.post("/v1/mask")
def mask() -> Response:
    """The subjects' combined soft mask: a single-channel 16-bit PNG (``format=tiff``: an
    uncompressed TIFF) of the input's size, ``value / 65535`` in ``[0, 1]``. ``X-Subject-Box``
    is the box of the pixels >= 0.5, ``X-Mask-Kind`` says whether it is a matte or a
    segmentation mask."""
    return _segment("mask")

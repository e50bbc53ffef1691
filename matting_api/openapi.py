"""``GET /openapi.json``: the OpenAPI 3.1 description of every endpoint of this service.

Built from the same constants the code uses (option choices in :mod:`contract.vocab` and
:mod:`matting_api.removebg`, formats in :mod:`contract.formats`, the matting models in
:mod:`service_common.registry`, error codes in :data:`service_common.errors.ERROR_CODES`),
so the document cannot drift from what the service accepts.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from flask import Blueprint, jsonify

from contract import formats, values, vocab
from service_common import registry
from service_common.errors import ERROR_CODES

from . import removebg as rb

bp = Blueprint("openapi", __name__)

VERSION = "0.1.0"

#: Error codes each endpoint can answer.
MATTE_ERRORS = (
    "empty_body", "missing_field", "invalid_image", "unsupported_format", "image_too_large",
    "image_too_small", "image_too_complex", "invalid_parameter", "unknown_field",
    "too_many_fields", "invalid_trimap", "invalid_hints", "payload_too_large",
    "no_subject", "segmentation_unavailable", "segmentation_timeout",
    "segmentation_bad_response", "internal_error",
)
REMOVEBG_ERRORS = tuple(c for c in MATTE_ERRORS if c not in ("invalid_trimap", "invalid_hints"))
READY_ERRORS = ("not_ready",)

_STATUS_TEXT = {400: "Bad request", 413: "Payload too large", 415: "Unsupported media type",
                422: "Unprocessable", 500: "Internal error", 502: "Bad gateway",
                503: "Unavailable", 504: "Gateway timeout"}


def _int_header(description: str) -> dict[str, Any]:
    return {"description": description, "schema": {"type": "integer", "minimum": 0}}


def _str_header(description: str) -> dict[str, Any]:
    return {"description": description, "schema": {"type": "string"}}


RESULT_HEADERS: dict[str, Any] = {
    "X-Width": _int_header("result width, px"),
    "X-Height": _int_header("result height, px"),
    "X-Foreground-Top": _int_header("subject box top, in result pixels"),
    "X-Foreground-Left": _int_header("subject box left, in result pixels"),
    "X-Foreground-Width": _int_header("subject box width, px (0: nothing visible)"),
    "X-Foreground-Height": _int_header("subject box height, px (0: nothing visible)"),
    "X-Segmentation-Backend": _str_header(
        "u2netp, maskrcnn, ... or given-trimap (or hints-only: nothing found, the keep "
        "strokes define the subject)"),
    "X-Matting-Backend": _str_header(" or ".join(vocab.MATTING_BACKENDS[1:])),
    "X-Hints": _str_header("with hints: the pixels each kind of stroke covered at the "
                           "working size, e.g. keep=1200, remove=0"),
    "Server-Timing": _str_header(
        "decode, segmentation, matting, compositing and encode durations, ms"),
    "X-Request-Id": _str_header("the request's id (the client's X-Request-Id when sane)"),
}
REMOVEBG_HEADERS: dict[str, Any] = {
    **RESULT_HEADERS,
    "X-Type": _str_header("the foreground type: the requested type, or for auto person/other"),
    "X-Credits-Charged": _int_header("always 0 (no accounts)"),
}

_BINARY = {"type": "string", "format": "binary"}


def _prop(description: str, **schema: Any) -> dict[str, Any]:
    return {"description": description, **schema}


SEGMENTATION_FIELDS: dict[str, Any] = {
    "classes": _prop("comma-separated COCO class names for the segmentation service "
                     "(default person; ignored by its u2netp backend)", type="string",
                     examples=["person", "person,dog"]),
    "score_threshold": _prop("detections with a score above this are kept (default 0.6)",
                             type="number", minimum=0, maximum=1),
    "instances": _prop("all (default) or only the largest instance", type="string",
                       enum=list(vocab.INSTANCES)),
    "backend": _prop("the segmentation service's backend for this request (default auto: "
                     "its default one); it must be loaded there, else 400 invalid_parameter",
                     type="string", enum=list(vocab.SEGMENTATION_BACKENDS), default="auto"),
    "model_size": _prop("the people model's working size, shorter side in px (default "
                        "BACKDROP_MODNET_SIZE, 512); smaller is faster and steadier on video "
                        "but may lose objects the person holds (at 256 px a helmet), the matting "
                        "stage still refines the edge at full resolution; only MODNet uses it",
                        type="integer", minimum=values.MIN_MODEL_SIZE,
                        maximum=values.MAX_MODEL_SIZE),
    "subject": _prop("what the photo is of: auto (the default) decides per photo: the people model "
                     "first, kept when its matte looks like a person, else the salient-object model "
                     "too, which serves when the people model found nothing or only a part of its "
                     "object (X-Segmentation-Reason says which and why); person: the people model; "
                     "object: the salient-object model (Mask R-CNN: every class but person). Named "
                     "classes that contradict it are a 400", type="string", enum=list(vocab.SUBJECTS),
                     default="auto"),
}

_BOOL = {"type": "string", "enum": [*vocab.TRUE_WORDS, *vocab.FALSE_WORDS]}
_COLOR = _prop("hex with 3, 4, 6 or 8 digits, with or without # (the 4th/8th are alpha), "
               "or a CSS colour name", type="string", examples=["81d4fa", "#fff", "81d4fa80",
                                                                "skyblue"])
_MARGIN = _prop("with crop=true: 1, 2 or 4 values (CSS order) in px or % of the subject, "
                f"at most {values.MAX_MARGIN_PX}px / {values.MAX_MARGIN_PERCENT:g}%",
                type="string", examples=["30px", "10%", "10px 20px"])

_SCALE = _prop(f"original (the default), or the subject's size relative to the result, "
               f"{values.MIN_SCALE_PERCENT:g}% to {values.MAX_SCALE_PERCENT:g}% (it is resized to fit that "
               "share of the result's width and height; of the crop with crop=true). Not with "
               "bg_mode=blur or grayscale, which keep the subject at its place", type="string",
               examples=["original", "80%"])
_POSITION = _prop("original (the subject stays where it is), center (the default when scale is "
                  "given), or one percentage for both axes or two (horizontal, vertical) of the free "
                  "space left of and above the subject: 0% = against the left/top edge, 100% = the "
                  "right/bottom one", type="string", examples=["center", "50% 100%", "original"])
_ROI = _prop("region of interest: x1 y1 x2 y2, each in px of the uploaded image or % of its "
             "width/height; only this region is searched for the subject, the rest is background "
             "(default: the whole image, 0% 0% 100% 100%)", type="string",
             examples=["10% 5% 90% 100%", "120px 40px 800px 600px"])
_SHADOW_OPACITY = _prop("the shadow's opacity, 0 to 100 (default 50)", type="number",
                        minimum=0, maximum=100)

MATTE_FORM: dict[str, Any] = {
    "image": _prop("the photo (PNG, JPEG, WebP, GIF, BMP, TIFF)", **_BINARY),
    "bg_image": _prop("new background, scaled to cover the frame (aspect kept, centred)",
                      **_BINARY),
    "trimap": _prop("0/128/255 trimap of the image's size; skips the segmentation service",
                    **_BINARY),
    "prior": _prop("a soft mask of the subject you already have (grey, 0 = background, 255 = "
                   "subject, the image's size), e.g. the previous video frame's matte carried along "
                   "the motion; skips the segmentation service: the service refines it in a band "
                   "around its edge, as it refines its own person model's matte. Not with trimap",
                   **_BINARY),
    "hints": _prop("touch-up strokes, an image of the image's size: white (luma >= 245) = keep, "
                   "the subject is surely here; black (<= 10) = remove, surely background; "
                   "anything else, or alpha < 128, = no hint (e.g. strokes drawn on a transparent "
                   "PNG). Added to the trimap the service builds (or to the given trimap): the "
                   "strokes are known, and where one contradicts it the edge within 2% of the "
                   "shorter side of the stroke is matted again. Without a subject found, keep "
                   "strokes alone define it", **_BINARY),
    "bg_mode": _prop("default: image if bg_image, else color if bg_color, else transparent",
                     type="string", enum=list(vocab.BG_MODES)),
    "bg_color": {**_COLOR, "description": _COLOR["description"] + " (bg_mode=color: white)"},
    "blur_radius": _prop("bg_mode=blur: Gaussian sigma in px (default 2% of the long side)",
                         type="number", exclusiveMinimum=0, maximum=values.MAX_BLUR_RADIUS),
    "channels": _prop("rgba: the picture; alpha: the greyscale matte only", type="string",
                      enum=list(vocab.CHANNELS), default="rgba"),
    "format": _prop("auto: PNG with transparency (or a matte), else JPEG", type="string",
                    enum=[*vocab.FORMATS, *formats.FORMAT_ALIASES], default="auto"),
    "size": _prop(f"full, or the cap on the result's long side in px (>= {values.MIN_SIZE})",
                  type="string", examples=["full", "1024"], default="full"),
    "crop": _prop("crop to the subject", **_BOOL, default="false"),
    "crop_margin": _MARGIN,
    "blend": _prop("alpha: composite with the matte; poisson (OpenCV NORMAL_CLONE) and "
                   "poisson_mixed (MIXED_CLONE: the background's texture shows through flat parts): "
                   "seamless cloning into the new background, then the matte's soft edges; it tints "
                   "the subject toward the background and needs one (bg_image, an opaque bg_color, "
                   "blur or grayscale) and channels=rgba, else 400 invalid_parameter",
                   type="string", enum=list(vocab.BLEND_MODES), default="alpha"),
    "foreground": _prop("how the subject's colour is estimated where it is see-through (hair, "
                        "soft edges), so that the old background's colour leaves it: best "
                        "(multi-level estimation) or fast (blur fusion: a few blurs, for video "
                        "frames). Closed-form matting only: FBA predicts the colour itself",
                        type="string", enum=list(vocab.FOREGROUND_ESTIMATES), default="best"),
    "scale": _SCALE,
    "position": _POSITION,
    "roi": _ROI,
    "shadow": _prop("drop: a soft shadow cast from the matte under the subject, a little down and to "
                    "the right, its offset and blur proportional to the subject's size; it darkens a "
                    "new background, and with a transparent result (or channels=alpha) it is in the "
                    "alpha", type="string", enum=list(vocab.SHADOWS), default="none"),
    "shadow_opacity": {**_SHADOW_OPACITY, "description": _SHADOW_OPACITY["description"]
                       + "; only with shadow=drop"},
    **SEGMENTATION_FIELDS,
}

REMOVEBG_FORM: dict[str, Any] = {
    "image_file": _prop("the photo (give this or image_file_b64)", **_BINARY),
    "image_file_b64": _prop("the photo, base64", type="string"),
    "size": _prop("preview/small/regular: 0.25 MP, medium: 1.5 MP, hd: 4 MP, "
                  "full/4k/50mp/auto: the input's size", type="string", enum=list(rb.SIZES),
                  default=rb.DEFAULT_SIZE),
    "type": _prop("foreground hint, mapped to COCO classes for the segmentation service and to "
                  "subject: person -> person, product and car -> object, auto -> auto",
                  type="string", enum=list(rb.TYPE_CLASSES), default="auto"),
    "type_level": _prop("accepted and ignored", type="string"),
    "format": _prop("auto: PNG with transparency, else JPEG; zip: color.jpg + alpha.png",
                    type="string", enum=[*rb.FORMATS, *formats.FORMAT_ALIASES], default="auto"),
    "channels": _prop("rgba or alpha", type="string", enum=list(vocab.CHANNELS),
                      default="rgba"),
    "bg_color": _COLOR,
    "bg_image_file": _prop("new background (not with bg_color)", **_BINARY),
    "crop": _prop("crop to the subject", **_BOOL, default="false"),
    "crop_margin": _MARGIN,
    "semitransparency": _prop("accepted and ignored", type="string"),
    "scale": _SCALE,
    "position": _POSITION,
    "roi": _ROI,
    "shadow_type": _prop("none (the default), or car, 3D, drop: each is this service's one soft drop "
                         "shadow cast from the matte (in the alpha when the result is transparent)",
                         type="string", enum=[*rb.SHADOW_TYPES, "3D"], default="none"),
    "add_shadow": _prop("remove.bg's older switch: true is shadow_type=drop (shadow_type wins when "
                        "both are given)", **_BOOL, default="false"),
    "shadow_opacity": _SHADOW_OPACITY,
    **{name: _prop("not supported (400): this server fetches no URLs", **{"not": {}})
       for name in rb.NOT_SUPPORTED},
}


def _error_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["error"],
        "properties": {"error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string", "enum": list(ERROR_CODES)},
                "message": {"type": "string"},
                "request_id": {"type": "string"},
                "field": {"type": "string"},
            },
            "additionalProperties": True,
        }},
    }


def _removebg_error_schema() -> dict[str, Any]:
    codes = sorted({rb.REMOVEBG_CODES.get(c, c) for c in ERROR_CODES})
    return {
        "type": "object",
        "required": ["errors"],
        "properties": {"errors": {"type": "array", "items": {
            "type": "object",
            "required": ["title", "code"],
            "properties": {
                "title": {"type": "string"},
                "code": {"type": "string", "enum": codes},
                "source": {"type": "object",
                           "properties": {"parameter": {"type": "string"}}},
            },
        }}},
    }


def _error_responses(
    codes: tuple[str, ...], schema_ref: str, status_of=None, name_of=None
) -> dict[str, Any]:
    """``{"400": {...}, ...}``: per status, the codes it carries and what they mean."""
    by_status: dict[int, list[str]] = defaultdict(list)
    for code in codes:
        status = status_of(code) if status_of else ERROR_CODES[code][0]
        by_status[status].append(code)
    responses = {}
    for status in sorted(by_status):
        lines = [f"- `{name_of(c) if name_of else c}`: {ERROR_CODES[c][1]}"
                 for c in by_status[status]]
        responses[str(status)] = {
            "description": f"{_STATUS_TEXT.get(status, 'Error')}. Codes:\n" + "\n".join(lines),
            "headers": {"X-Request-Id": RESULT_HEADERS["X-Request-Id"]},
            "content": {"application/json": {"schema": {"$ref": schema_ref}}},
        }
    return responses


def _removebg_status(code: str) -> int:
    from service_common.errors import ApiError

    return rb.removebg_status(ApiError(code, ""))


def build_openapi() -> dict[str, Any]:
    """The OpenAPI 3.1 document as a dict."""
    image_content = {
        mime: {"schema": _BINARY} for mime in formats.result_mime_types()
    }
    matte_multipart = {"type": "object", "required": ["image"], "properties": MATTE_FORM}
    removebg_multipart = {"type": "object", "properties": REMOVEBG_FORM, "oneOf": [
        {"required": ["image_file"]}, {"required": ["image_file_b64"]}]}
    error_ref = "#/components/schemas/Error"
    removebg_error_ref = "#/components/schemas/RemoveBgErrors"
    code_table = "\n".join(
        f"| `{code}` | {status} | {meaning} |" for code, (status, meaning) in ERROR_CODES.items()
    )
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Backdrop matting service",
            "version": VERSION,
            "description": (
                "Replaces the background of a photo: asks the segmentation service for a "
                "trimap, runs matting (FBA, or closed-form matting offline), composites the "
                "subject over the new background in linear light.\n\n"
                "Every error (except on /v1.0/removebg) is "
                '`{"error": {"code", "message", "request_id"}}`:\n\n'
                "| code | status | meaning |\n|---|---|---|\n" + code_table
            ),
        },
        "paths": {
            "/v1/matte": {"post": {
                "summary": "Replace or remove the background of a photo",
                "operationId": "matte",
                "requestBody": {"required": True, "content": {
                    "multipart/form-data": {"schema": matte_multipart},
                    "image/*": {"schema": _BINARY},
                    "application/octet-stream": {"schema": _BINARY},  # the clients' raw body
                }},
                "parameters": [
                    {"name": name, "in": "query", "required": False,
                     "description": "also accepted in the query string: " + spec["description"],
                     "schema": {k: v for k, v in spec.items() if k != "description"}}
                    for name, spec in MATTE_FORM.items() if spec.get("type") != "string"
                    or spec.get("format") != "binary"
                ],
                "responses": {
                    "200": {"description": "the result image", "headers": RESULT_HEADERS,
                            "content": image_content},
                    **_error_responses(MATTE_ERRORS, error_ref),
                },
            }},
            "/v1.0/removebg": {"post": {
                "summary": "remove.bg-compatible background removal (core subset)",
                "description": rb.__doc__ or "",
                "operationId": "removebg",
                "parameters": [
                    {"name": "X-Api-Key", "in": "header", "required": False,
                     "description": "accepted and ignored", "schema": {"type": "string"}},
                ],
                "requestBody": {"required": True, "content": {
                    "multipart/form-data": {"schema": removebg_multipart},
                    "application/x-www-form-urlencoded": {"schema": {
                        "type": "object",
                        "required": ["image_file_b64"],
                        "properties": {k: v for k, v in REMOVEBG_FORM.items()
                                       if v.get("format") != "binary"},
                    }},
                }},
                "responses": {
                    "200": {"description": "the result (image, zip, or JSON with "
                                           "Accept: application/json)",
                            "headers": REMOVEBG_HEADERS,
                            "content": {
                                **image_content,
                                "application/zip": {"schema": _BINARY},
                                "application/json": {"schema": {
                                    "$ref": "#/components/schemas/RemoveBgResult"}},
                            }},
                    **_error_responses(REMOVEBG_ERRORS, removebg_error_ref,
                                       status_of=_removebg_status,
                                       name_of=lambda c: rb.REMOVEBG_CODES.get(c, c)),
                },
            }},
            "/": {"get": {
                "summary": "the web page: drop a photo, pick a background, touch up, download",
                "description": "A static page served from the package (nothing fetched from "
                               "elsewhere); it calls POST /v1/matte, sending its touch-up "
                               "strokes as the hints upload.",
                "operationId": "page",
                "responses": {"200": {"description": "the page", "content": {
                    "text/html": {"schema": {"type": "string"}}}}},
            }},
            "/healthz": {"get": {
                "summary": "liveness", "operationId": "healthz",
                "responses": {"200": {"description": "the process is alive", "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/Health"}}}}},
            }},
            "/readyz": {"get": {
                "summary": "readiness: the matting backend is loaded and the segmentation "
                           "service is ready",
                "operationId": "readyz",
                "responses": {
                    "200": {"description": "ready", "content": {"application/json": {
                        "schema": {"$ref": "#/components/schemas/Ready"}}}},
                    **_error_responses(READY_ERRORS, error_ref),
                },
            }},
            "/openapi.json": {"get": {
                "summary": "this document", "operationId": "openapi",
                "responses": {"200": {"description": "OpenAPI 3.1", "content": {
                    "application/json": {"schema": {"type": "object"}}}}},
            }},
        },
        "components": {"schemas": {
            "Error": _error_schema(),
            "RemoveBgErrors": _removebg_error_schema(),
            "RemoveBgResult": {"type": "object", "required": ["data"], "properties": {
                "data": {"type": "object", "properties": {
                    "result_b64": {"type": "string", "contentEncoding": "base64"},
                    "foreground_top": {"type": "integer"},
                    "foreground_left": {"type": "integer"},
                    "foreground_width": {"type": "integer"},
                    "foreground_height": {"type": "integer"},
                }},
            }},
            "Health": {"type": "object", "properties": {"status": {"const": "ok"}}},
            "Ready": {"type": "object", "properties": {
                "status": {"const": "ready"},
                "backend": {"type": "string", "enum": list(registry.names("matting"))},
                "device": {"type": "string"},
                "backends": {"type": "array", "items": {"type": "string"}},
                "matting": {"type": "object"},
                "segmentation": {"type": "object"},
            }},
        }},
    }


@bp.get("/openapi.json")
def openapi_json():
    """The OpenAPI document."""
    return jsonify(build_openapi())

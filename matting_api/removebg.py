"""``POST /v1.0/removebg``: the core of remove.bg's API, so existing remove.bg clients work.

The request is translated into :class:`~matting_api.options.MatteOptions` and run through
the same pipeline as ``/v1/matte`` (:class:`~matting_api.pipeline.Pipeline`).

Supported fields (multipart form, or the query string):

* ``image_file`` (file) or ``image_file_b64`` (base64 text) - exactly one;
* ``size``: ``preview`` (the default, as at remove.bg) / ``small`` / ``regular`` = at most
  0.25 megapixels, ``medium`` = 1.5 MP, ``hd`` = 4 MP, ``full`` / ``4k`` / ``50mp`` /
  ``auto`` = the input's size. The input is scaled down before any work;
* ``type``: a hint for the segmentation service, mapped to COCO classes (the U^2-Net-p
  backend ignores classes and takes the salient object): ``auto`` (the service's default,
  people), ``person``, ``animal`` (bird, cat, dog, horse, sheep, cow, elephant, bear, zebra,
  giraffe), ``car`` (car, truck, bus), ``transportation`` (bicycle, car, motorcycle,
  airplane, bus, train, truck, boat), ``product`` (common COCO objects: bottle, cup, chair,
  laptop, ... see :data:`TYPE_CLASSES`), ``other`` (everything ``animal``, ``product`` and
  ``transportation`` list); ``type`` also sets the ``subject`` of ``/v1/matte``: ``person``
  -> ``person``, ``product`` and ``car`` -> ``object``, ``auto`` -> ``auto`` (the
  segmentation service decides per photo). ``X-Type`` answers the requested type (for
  ``auto``: ``person`` when a people model served, Mask R-CNN or MODNet, else ``other``);
* ``type_level``: accepted and ignored;
* ``format``: ``auto`` (PNG when the result has transparency, else JPEG), ``png``, ``jpg``,
  ``webp``, ``zip`` (``color.jpg`` + ``alpha.png``, as remove.bg);
* ``channels``: ``rgba`` or ``alpha``;
* ``bg_color`` or ``bg_image_file`` (not both, as at remove.bg);
* ``crop`` and ``crop_margin`` (1, 2 or 4 values in px or %, at most 500 px / 50 %);
* ``scale``: ``original`` or the subject's size relative to the result, 10 % to 100 %
  (of the crop when ``crop=true``);
* ``position``: ``original``, ``center`` (the default when ``scale`` is given), or one or
  two percentages (horizontal, vertical: 0 = left/top, 100 = right/bottom);
* ``roi``: ``x1 y1 x2 y2`` in px or %: only this region is searched for the subject;
* ``shadow_type`` (``none``, ``car``, ``3D``, ``drop``) and the older ``add_shadow``: any
  shadow is this service's one soft drop shadow cast from the matte
  (:mod:`render.shadow`), darkening a new background or, over a transparent one, in the
  result's alpha; ``shadow_opacity`` 0..100 (default 50);
* ``semitransparency``: accepted and ignored (edges are always semi-transparent).

Not supported (400 ``invalid_parameter`` naming the field): ``image_url`` and
``bg_image_url`` (this service does not fetch URLs). Any other name is a 400
``unknown_field`` naming the closest of remove.bg's fields. ``X-Api-Key`` is ignored (no
accounts, no credits: ``X-Credits-Charged: 0``); ``GET /account`` and ``POST /improve`` do
not exist.

Answers: the image with remove.bg's headers (``X-Type``, ``X-Width``, ``X-Height``,
``X-Foreground-Top/Left/Width/Height``, ``X-Credits-Charged``) plus this service's own
(backends, ``Server-Timing``); with ``Accept: application/json``:
``{"data": {"result_b64", "foreground_top", "foreground_left", "foreground_width",
"foreground_height"}}``. Errors use remove.bg's envelope ``{"errors": [{"title", "code"}]}``
and its status codes: every client error is 400 (no subject found: code
``unknown_foreground``), except 413 for a body over the upload limit; server-side failures
keep this service's 5xx codes (:data:`~service_common.errors.ERROR_CODES`).
"""

from __future__ import annotations

import base64
import binascii
import logging

from flask import Blueprint, g, jsonify, request

from contract.formats import REMOVEBG_FORMATS
from contract.parse import (
    InvalidValue,
    parse_bool,
    parse_choice,
    parse_color,
    parse_crop_margin,
    parse_format,
)
from contract.values import SizeLimit
from contract.vocab import CHANNELS, SegmentationOptions
from service_common.errors import ApiError, register_error_handlers
from service_common.web import app_state, check_fields, param, read_upload

from .options import MatteOptions, parse_product_options
from .pipeline import MatteRequest, MatteResult
from .responses import image_response

log = logging.getLogger(__name__)

bp = Blueprint("removebg", __name__)

#: remove.bg ``size`` -> the cap on the result's pixels.
SIZES: dict[str, SizeLimit] = {
    "preview": SizeLimit(max_pixels=250_000),
    "small": SizeLimit(max_pixels=250_000),
    "regular": SizeLimit(max_pixels=250_000),
    "medium": SizeLimit(max_pixels=1_500_000),
    "hd": SizeLimit(max_pixels=4_000_000),
    "full": SizeLimit(),
    "4k": SizeLimit(),
    "50mp": SizeLimit(),
    "auto": SizeLimit(),
}
DEFAULT_SIZE = "preview"

_ANIMALS = "bird,cat,dog,horse,sheep,cow,elephant,bear,zebra,giraffe"
_VEHICLES = "bicycle,car,motorcycle,airplane,bus,train,truck,boat"
_PRODUCTS = (
    "backpack,umbrella,handbag,tie,suitcase,sports ball,skateboard,surfboard,tennis racket,"
    "bottle,wine glass,cup,bowl,banana,apple,orange,chair,couch,potted plant,bed,tv,laptop,"
    "mouse,remote,keyboard,cell phone,microwave,toaster,refrigerator,book,clock,vase,"
    "scissors,teddy bear,hair drier,toothbrush"
)
#: remove.bg ``type`` -> COCO classes for the segmentation service (``None``: its default).
TYPE_CLASSES: dict[str, str | None] = {
    "auto": None,
    "person": "person",
    "animal": _ANIMALS,
    "car": "car,truck,bus",
    "transportation": _VEHICLES,
    "product": _PRODUCTS,
    "other": ",".join((_ANIMALS, _VEHICLES, _PRODUCTS)),
}
#: remove.bg ``type`` -> ``subject`` of ``/v1/matte`` (absent: ``auto``, or the classes decide).
TYPE_SUBJECTS: dict[str, str] = {"person": "person", "product": "object", "car": "object"}
#: Segmentation backends that serve people: ``X-Type: person`` for ``type=auto``.
PEOPLE_BACKENDS = ("maskrcnn", "maskrcnn_v2", "modnet")
FORMATS = ("auto", *REMOVEBG_FORMATS)

#: Every field of remove.bg's ``POST /v1.0/removebg``, as its documentation lists them.
REMOVEBG_FIELDS = (
    "image_file", "image_file_b64", "image_url", "size", "type", "type_level", "format", "roi",
    "crop", "crop_margin", "scale", "position", "channels", "add_shadow", "semitransparency",
    "bg_color", "bg_image_url", "bg_image_file", "shadow_type", "shadow_opacity",
)
#: Its file fields.
FILES = ("image_file", "bg_image_file")
#: remove.bg's fields this service does not implement (400 saying so).
NOT_SUPPORTED = ("image_url", "bg_image_url")
#: remove.bg's ``shadow_type`` values: each is this service's one drop shadow.
SHADOW_TYPES: dict[str, str] = {"none": "none", "car": "drop", "3d": "drop", "drop": "drop"}

#: Our error code -> remove.bg's code where they differ.
REMOVEBG_CODES = {"no_subject": "unknown_foreground"}


def parse_removebg_options(
    params: dict[str, str | None], *, has_bg_image: bool
) -> tuple[MatteOptions, str]:
    """remove.bg fields -> (:class:`MatteOptions`, the requested ``type``)."""
    for name in NOT_SUPPORTED:
        if params.get(name) is not None:
            raise InvalidValue(name, "not supported by this server, which fetches no URLs: upload the "
                               f"file as {name.removesuffix('_url')}_file instead")
    kind = parse_choice(params.get("type"), "type", tuple(TYPE_CLASSES), "auto")
    size = parse_choice(params.get("size"), "size", tuple(SIZES), DEFAULT_SIZE)
    fmt = parse_format(params.get("format"), choices=FORMATS)
    channels = parse_choice(params.get("channels"), "channels", CHANNELS, "rgba")
    if fmt == "zip" and channels == "alpha":
        raise InvalidValue("format", "zip holds color.jpg and alpha.png: use channels=rgba")
    raw_color = params.get("bg_color")
    if raw_color is not None and has_bg_image:
        raise InvalidValue("bg_color", "give either bg_color or bg_image_file, not both")
    color = parse_color(raw_color) if raw_color is not None else None
    bg_mode = "image" if has_bg_image else ("color" if color is not None else "transparent")
    shadow = SHADOW_TYPES[parse_choice(params.get("shadow_type"), "shadow_type", tuple(SHADOW_TYPES),
                                       "none")]
    if params.get("shadow_type") is None and parse_bool(params.get("add_shadow"), "add_shadow"):
        shadow = "drop"  # remove.bg's older switch for its car shadow
    options = MatteOptions(
        bg_mode=bg_mode,
        bg_color=color,
        channels=channels,
        format=fmt,
        size=SIZES[size],
        crop=parse_bool(params.get("crop"), "crop"),
        crop_margin=parse_crop_margin(params.get("crop_margin")),
        segmentation=SegmentationOptions(classes=TYPE_CLASSES[kind], subject=TYPE_SUBJECTS.get(kind)),
        **parse_product_options(params, bg_mode=bg_mode, shadow=shadow),
    )
    return options, kind


#: The text fields read (also from the query string): all of remove.bg's but the files.
FIELDS = tuple(name for name in REMOVEBG_FIELDS if name not in FILES)


def _image_bytes() -> bytes:
    b64 = param("image_file_b64")
    has_file = "image_file" in request.files or "image_file" in request.form
    if b64 is not None and has_file:
        raise InvalidValue("image_file_b64", "give either image_file or image_file_b64, not both")
    if b64 is not None:
        try:
            data = base64.b64decode(b64.split(",", 1)[-1] if b64.startswith("data:") else b64,
                                    validate=False)
        except (binascii.Error, ValueError) as exc:
            raise InvalidValue("image_file_b64", "not valid base64") from exc
        if not data:
            raise ApiError("empty_body", "image_file_b64 decodes to nothing")
        return data
    if not has_file and param("image_url") is None:
        raise ApiError("missing_field", "send the image as image_file (or image_file_b64)",
                       field="image_file")
    return read_upload("image_file") or b""


def _x_type(kind: str, result: MatteResult) -> str:
    if kind != "auto":
        return kind
    return "person" if result.segmentation_backend in PEOPLE_BACKENDS else "other"


@bp.post("/v1.0/removebg")
def removebg():
    """remove.bg-compatible background removal."""
    check_fields(FIELDS, FILES, required_file="image_file")
    params = {name: param(name) for name in FIELDS}
    bg_image = read_upload("bg_image_file", required=False)
    options, kind = parse_removebg_options(params, has_bg_image=bg_image is not None)
    image = _image_bytes()
    result = app_state().pipeline.run(
        MatteRequest(image=image, options=options, bg_image=bg_image),
        getattr(g, "request_id", None),
    )
    extra = {"X-Type": _x_type(kind, result), "X-Credits-Charged": "0"}
    accept = request.accept_mimetypes
    if accept.quality("application/json") > accept.quality(result.mime):
        left, top, width, height = result.foreground
        response = jsonify({"data": {
            "result_b64": base64.b64encode(result.body).decode("ascii"),
            "foreground_top": top,
            "foreground_left": left,
            "foreground_width": width,
            "foreground_height": height,
        }})
        for key, value in {**extra, "X-Width": str(result.width),
                           "X-Height": str(result.height),
                           "X-Foreground-Top": str(top), "X-Foreground-Left": str(left),
                           "X-Foreground-Width": str(width),
                           "X-Foreground-Height": str(height),
                           "X-Segmentation-Backend": result.segmentation_backend,
                           "X-Matting-Backend": result.matting_backend,
                           "Server-Timing": result.server_timing()}.items():
            response.headers[key] = value
        return response
    return image_response(result, extra)


def removebg_status(error: ApiError) -> int:
    """remove.bg's status for one of our errors: 400 for the client's, 413 for too large a
    body, our own 5xx otherwise."""
    if error.code == "payload_too_large":
        return 413
    if 400 <= error.status < 500:
        return 400
    return error.status


def removebg_error(error: ApiError):
    """``{"errors": [{"title", "code"}]}`` with remove.bg's status."""
    body = {"title": error.message, "code": REMOVEBG_CODES.get(error.code, error.code)}
    if "field" in error.details:
        body["source"] = {"parameter": error.details["field"]}
    response = jsonify({"errors": [body]})
    response.status_code = removebg_status(error)
    return response


register_error_handlers(bp, respond=removebg_error)

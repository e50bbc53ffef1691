"""Request parameters of ``POST /v1/matte`` parsed into a frozen :class:`MatteOptions`.

Pure: the parsers take plain strings (or ``None`` for "not given") and raise
:class:`~service_common.errors.ApiError` ``invalid_parameter`` naming the field. No Flask here;
the routes collect the raw strings and the remove.bg route translates its own names first.

The allowed values are module constants (:data:`BG_MODES`, :data:`FORMATS`, ...) so that the
OpenAPI document and the parsers never disagree.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from PIL import ImageColor

from service_common.config import SEGMENTATION_BACKENDS
from service_common.errors import ApiError

BG_MODES = ("image", "color", "transparent", "blur", "grayscale")
#: ``alpha``: compositing with the matte; ``poisson`` / ``poisson_mixed``: seamless cloning
#: into the new background (:mod:`matting_api.blending`).
BLEND_MODES = ("alpha", "poisson", "poisson_mixed")
CHANNELS = ("rgba", "alpha")
FORMATS = ("auto", "png", "jpg", "webp")
INSTANCES = ("all", "largest")
TRUE_WORDS = ("true", "1", "yes", "on")
FALSE_WORDS = ("false", "0", "no", "off")

#: Largest ``blur_radius`` (Gaussian sigma, px) accepted.
MAX_BLUR_RADIUS = 1000.0
#: Largest crop margin per side: 500 px or 50 % of the subject (remove.bg's limits).
MAX_MARGIN_PX = 500
MAX_MARGIN_PERCENT = 50.0
#: Smallest size cap on the long side, px.
MIN_SIZE = 16

_HEX = re.compile(r"^#?([0-9a-fA-F]{3}|[0-9a-fA-F]{4}|[0-9a-fA-F]{6}|[0-9a-fA-F]{8})$")
_MARGIN = re.compile(r"^(\d+(?:\.\d+)?)(px|%)?$")
_CLASS_NAME = re.compile(r"^[a-z][a-z ]{0,40}$")

RGBA = tuple[int, int, int, int]


@dataclass(frozen=True)
class Margin:
    """One side's crop margin: ``value`` px, or ``value`` % of the subject's size."""

    value: float
    percent: bool = False

    def pixels(self, subject_extent: int) -> int:
        """The margin in px for a subject ``subject_extent`` px wide (or high)."""
        if self.percent:
            return round(subject_extent * self.value / 100.0)
        return round(self.value)


@dataclass(frozen=True)
class CropMargin:
    """Margins of the four sides (CSS order: top, right, bottom, left)."""

    top: Margin = Margin(0)
    right: Margin = Margin(0)
    bottom: Margin = Margin(0)
    left: Margin = Margin(0)


@dataclass(frozen=True)
class SizeLimit:
    """A cap on the result's size; ``None`` fields do not limit. Never upscales."""

    long_side: int | None = None
    max_pixels: int | None = None

    @property
    def is_full(self) -> bool:
        return self.long_side is None and self.max_pixels is None


@dataclass(frozen=True)
class SegmentationParams:
    """Parameters passed through to the segmentation service (``None`` = its default).

    ``backend`` is one of :data:`~service_common.config.SEGMENTATION_BACKENDS` but ``auto``
    (``auto`` is its default, so it is not sent); whether that backend is loaded there is
    for the segmentation service to say (400 ``invalid_parameter``, passed on).
    """

    classes: str | None = None
    score_threshold: float | None = None
    instances: str | None = None
    backend: str | None = None

    def as_form(self) -> dict[str, str]:
        form: dict[str, str] = {}
        if self.backend is not None:
            form["backend"] = self.backend
        if self.classes is not None:
            form["classes"] = self.classes
        if self.score_threshold is not None:
            form["score_threshold"] = repr(self.score_threshold)
        if self.instances is not None:
            form["instances"] = self.instances
        return form


@dataclass(frozen=True)
class MatteOptions:
    """Everything that decides what the pipeline produces, validated.

    Attributes:
        bg_mode: one of :data:`BG_MODES`.
        bg_color: ``(r, g, b, a)`` 0..255 for ``bg_mode="color"``; ``None`` otherwise.
        blur_radius: Gaussian sigma in px for ``bg_mode="blur"``; ``None`` = 2 % of the long side.
        channels: ``"rgba"`` (the picture) or ``"alpha"`` (the greyscale matte only).
        format: one of :data:`FORMATS` (``"auto"``: PNG when the result has transparency or
            is a matte, else JPEG).
        size: cap on the result's size (the input is scaled down before any work).
        crop: crop the result to the subject (plus ``crop_margin``).
        crop_margin: margins around the subject when cropping.
        segmentation: pass-through parameters of the segmentation service.
        blend: one of :data:`BLEND_MODES`; the Poisson modes need a new opaque background
            (``bg_mode`` ``image``, ``color`` with an opaque colour, ``blur``, ``grayscale``)
            and ``channels="rgba"``.
    """

    bg_mode: str = "transparent"
    bg_color: RGBA | None = None
    blur_radius: float | None = None
    channels: str = "rgba"
    format: str = "auto"
    size: SizeLimit = SizeLimit()
    crop: bool = False
    crop_margin: CropMargin = CropMargin()
    segmentation: SegmentationParams = SegmentationParams()
    blend: str = "alpha"


def _invalid(field: str, message: str) -> ApiError:
    return ApiError("invalid_parameter", f"{field}: {message}", field=field)


def _choice(field: str, value: str | None, choices: tuple[str, ...], default: str) -> str:
    if value is None:
        return default
    low = value.strip().lower()
    if low not in choices:
        raise _invalid(field, f"{value!r} is not one of {', '.join(choices)}")
    return low


def parse_color(value: str, field: str = "bg_color") -> RGBA:
    """A colour as ``(r, g, b, a)``, each 0..255.

    Accepts hex with 3, 4, 6 or 8 digits, with or without ``#`` (``fff``, ``#81d4fa``,
    ``81d4fa80``; the 4th/8th digits are alpha), a CSS colour name (``white``, ``skyblue``),
    and the ``rgb(...)``/``hsl(...)`` forms Pillow understands.
    """
    text = value.strip()
    if not text:
        raise _invalid(field, "empty colour")
    if _HEX.match(text) and not text.startswith("#"):
        text = "#" + text
    try:
        rgb = ImageColor.getrgb(text.lower())
    except ValueError as exc:
        raise _invalid(
            field, f"{value!r} is not a colour (hex like 81d4fa or #fff, or a CSS name like skyblue)"
        ) from exc
    rgba = (*rgb, 255) if len(rgb) == 3 else tuple(rgb)
    # Pillow passes through out-of-range functional forms such as rgb(999,0,0)
    if not all(0 <= int(c) <= 255 for c in rgba):
        raise _invalid(field, f"{value[:40]!r}: every channel must be within 0..255")
    return (int(rgba[0]), int(rgba[1]), int(rgba[2]), int(rgba[3]))


def parse_bool(value: str | None, field: str, default: bool = False) -> bool:
    """``true``/``false`` (also 1/0, yes/no, on/off), case-insensitive."""
    if value is None:
        return default
    low = value.strip().lower()
    if low in TRUE_WORDS:
        return True
    if low in FALSE_WORDS:
        return False
    raise _invalid(field, f"{value!r} is not true or false")


def parse_float(
    value: str | None, field: str, *, minimum: float, maximum: float, exclusive_min: bool = False
) -> float | None:
    """A finite number in ``[minimum, maximum]`` (``(minimum, ...]`` if ``exclusive_min``)."""
    if value is None:
        return None
    try:
        number = float(value)
    except ValueError as exc:
        raise _invalid(field, f"{value!r} is not a number") from exc
    too_small = number <= minimum if exclusive_min else number < minimum
    if number != number or too_small or number > maximum:  # NaN fails too
        low = f"> {minimum:g}" if exclusive_min else f">= {minimum:g}"
        raise _invalid(field, f"{value!r} must be {low} and <= {maximum:g}")
    return number


def parse_size(value: str | None, field: str = "size") -> SizeLimit:
    """``full`` (default) or a whole number: the cap on the result's long side in px."""
    if value is None or value.strip().lower() == "full":
        return SizeLimit()
    text = value.strip().lower().removesuffix("px")
    # ASCII digits only (str.isdigit() also accepts '²', which int() refuses), and few of
    # them (int() refuses more than 4300 digits); any cap above the pixel limit is moot.
    if not (text.isascii() and text.isdigit()) or len(text) > 9:
        raise _invalid(field, f"{value[:40]!r} is neither 'full' nor a whole number of pixels")
    number = int(text)
    if number < MIN_SIZE:
        raise _invalid(field, f"{number} is below the minimum of {MIN_SIZE} px")
    return SizeLimit(long_side=number)


def _parse_margin_value(token: str, field: str) -> Margin:
    match = _MARGIN.match(token)
    if not match:
        raise _invalid(field, f"{token!r} is not like 30px or 10%")
    number = float(match.group(1))
    if match.group(2) == "%":
        if number > MAX_MARGIN_PERCENT:
            raise _invalid(field, f"{token!r} is above the maximum of {MAX_MARGIN_PERCENT:g}%")
        return Margin(number, percent=True)
    if number > MAX_MARGIN_PX:
        raise _invalid(field, f"{token!r} is above the maximum of {MAX_MARGIN_PX}px")
    return Margin(number)


def parse_crop_margin(value: str | None, field: str = "crop_margin") -> CropMargin:
    """CSS-like margins: one value (all sides), two (top/bottom, left/right) or four
    (top, right, bottom, left). Each is ``30px``, ``30`` (px) or ``10%`` (of the subject's
    height for top/bottom, width for left/right); at most 500 px or 50 %."""
    if value is None:
        return CropMargin()
    tokens = value.replace(",", " ").lower().split()
    if len(tokens) not in (1, 2, 4):
        raise _invalid(field, f"{value!r}: give 1, 2 or 4 values")
    m = [_parse_margin_value(t, field) for t in tokens]
    if len(m) == 1:
        return CropMargin(m[0], m[0], m[0], m[0])
    if len(m) == 2:
        return CropMargin(m[0], m[1], m[0], m[1])
    return CropMargin(m[0], m[1], m[2], m[3])


def parse_classes(value: str | None, field: str = "classes") -> str | None:
    """Comma-separated class names (lower-case words), normalised; ``None`` = default."""
    if value is None:
        return None
    names = [n.strip().lower() for n in value.split(",") if n.strip()]
    if not names:
        raise _invalid(field, "give at least one class name")
    for name in names:
        if not _CLASS_NAME.match(name):
            raise _invalid(field, f"{name!r} is not a class name (like person or teddy bear)")
    return ",".join(names)


def parse_segmentation_params(params: Mapping[str, str | None]) -> SegmentationParams:
    """``classes``, ``score_threshold`` (0..1), ``instances`` (all|largest), ``backend``
    (a name of :data:`~service_common.config.SEGMENTATION_BACKENDS`; ``auto`` = not sent)."""
    instances = params.get("instances")
    backend = _choice("backend", params.get("backend"), SEGMENTATION_BACKENDS, "auto")
    return SegmentationParams(
        classes=parse_classes(params.get("classes")),
        score_threshold=parse_float(
            params.get("score_threshold"), "score_threshold", minimum=0.0, maximum=1.0
        ),
        instances=None if instances is None else _choice("instances", instances, INSTANCES, "all"),
        backend=None if backend == "auto" else backend,
    )


def check_blend(blend: str, bg_mode: str, channels: str, bg_color: RGBA | None) -> None:
    """Refuse a Poisson ``blend`` that has no new opaque background to blend into.

    Raises:
        ApiError: ``invalid_parameter`` (field ``blend``) saying why and what to do.
    """
    if blend == "alpha":
        return
    if channels == "alpha":
        raise _invalid("blend", f"blend={blend} changes the subject's colours, but "
                       "channels=alpha returns the matte only, which blending does not "
                       "change; drop blend or ask for channels=rgba")
    if bg_mode == "transparent":
        raise _invalid("blend", f"blend={blend} blends the subject into a new background, "
                       "and bg_mode=transparent has none; give bg_image or bg_color, or "
                       "bg_mode=blur or grayscale (or use blend=alpha)")
    if bg_mode == "color" and bg_color is not None and bg_color[3] < 255:
        raise _invalid("blend", f"blend={blend} needs an opaque background, but bg_color has "
                       f"alpha {bg_color[3]} (< 255); give an opaque colour or use blend=alpha")


def parse_matte_options(
    params: Mapping[str, str | None], *, has_bg_image: bool
) -> MatteOptions:
    """Validate the form fields of ``POST /v1/matte``.

    Args:
        params: field name -> raw value (``None`` or missing = not given).
        has_bg_image: whether a ``bg_image`` file came with the request.

    Returns:
        the validated :class:`MatteOptions`.

    Raises:
        ApiError: ``invalid_parameter`` with ``field`` set to the offending parameter.
    """
    raw_color = params.get("bg_color")
    color = parse_color(raw_color) if raw_color is not None else None
    default_mode = "image" if has_bg_image else ("color" if color is not None else "transparent")
    bg_mode = _choice("bg_mode", params.get("bg_mode"), BG_MODES, default_mode)
    if bg_mode == "image" and not has_bg_image:
        raise _invalid("bg_mode", "bg_mode=image needs a bg_image file")
    if bg_mode == "color" and color is None:
        color = (255, 255, 255, 255)  # documented default: white
    blur = parse_float(
        params.get("blur_radius"), "blur_radius", minimum=0.0, maximum=MAX_BLUR_RADIUS,
        exclusive_min=True,
    )
    channels = _choice("channels", params.get("channels"), CHANNELS, "rgba")
    blend = _choice("blend", params.get("blend"), BLEND_MODES, "alpha")
    check_blend(blend, bg_mode, channels, color)
    return MatteOptions(
        bg_mode=bg_mode,
        bg_color=color if bg_mode == "color" else None,
        blur_radius=blur,
        channels=channels,
        format=_choice("format", _jpeg_alias(params.get("format")), FORMATS, "auto"),
        size=parse_size(params.get("size")),
        crop=parse_bool(params.get("crop"), "crop"),
        crop_margin=parse_crop_margin(params.get("crop_margin")),
        segmentation=parse_segmentation_params(params),
        blend=blend,
    )


def _jpeg_alias(value: str | None) -> str | None:
    if value is not None and value.strip().lower() == "jpeg":
        return "jpg"
    return value


#: The form fields ``POST /v1/matte`` reads (besides the files).
MATTE_FIELDS = (
    "bg_mode", "bg_color", "blur_radius", "channels", "format", "size", "crop", "crop_margin",
    "classes", "score_threshold", "instances", "backend", "blend",
)

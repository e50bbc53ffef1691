"""Request parameters of ``POST /v1/matte`` parsed into a frozen :class:`MatteOptions`.

Pure: the values come in as plain strings (or ``None`` for "not given") and are parsed by
the shared parsers of :mod:`contract.parse`, which raise
:class:`~contract.parse.InvalidValue` naming the field (the app answers it as ``400
invalid_parameter``). No Flask here; the routes collect the raw strings and the remove.bg
route translates its own names first. The allowed values are :mod:`contract.vocab`'s, so
the OpenAPI document, the parsers and the clients never disagree.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from contract.parse import (
    InvalidValue,
    parse_backend,
    parse_bool,
    parse_choice,
    parse_classes,
    parse_color,
    parse_crop_margin,
    parse_format,
    parse_model_size,
    parse_number,
    parse_position,
    parse_roi,
    parse_scale,
    parse_size,
)
from contract.values import MAX_BLUR_RADIUS, RGBA, CropMargin, Position, Roi, SizeLimit
from contract.vocab import (
    BG_MODES,
    BLEND_MODES,
    CHANNELS,
    FOREGROUND_ESTIMATES,
    INSTANCES,
    SHADOWS,
    SUBJECTS,
    SegmentationOptions,
)

WHITE: RGBA = (255, 255, 255, 255)


@dataclass(frozen=True)
class MatteOptions:
    """Everything that decides what the pipeline produces, validated.

    Attributes:
        bg_mode: one of :data:`~contract.vocab.BG_MODES`.
        bg_color: ``(r, g, b, a)`` 0..255 for ``bg_mode="color"``; ``None`` otherwise.
        blur_radius: Gaussian sigma in px for ``bg_mode="blur"``; ``None`` = 2 % of the long side.
        channels: ``"rgba"`` (the picture) or ``"alpha"`` (the greyscale matte only).
        format: one of :data:`~contract.vocab.FORMATS` (``"auto"``: PNG when the result has
            transparency or is a matte, else JPEG); remove.bg's route may also give ``zip``.
        size: cap on the result's size (the input is scaled down before any work).
        crop: crop the result to the subject (plus ``crop_margin``).
        crop_margin: margins around the subject when cropping.
        segmentation: pass-through parameters of the segmentation service.
        blend: one of :data:`~contract.vocab.BLEND_MODES`; the Poisson modes need a new
            opaque background (``bg_mode`` ``image``, ``color`` with an opaque colour,
            ``blur``, ``grayscale``) and ``channels="rgba"``.
        foreground: one of :data:`~contract.vocab.FOREGROUND_ESTIMATES` (closed-form matting;
            FBA predicts the colour itself).
        scale: the subject's size relative to the result, ``(0.1, 1]``; ``None`` = its own.
        position: where the subject goes in the result (percentages); ``None`` = its place.
        roi: the region searched for the subject; ``None`` = the whole image.
        shadow: one of :data:`~contract.vocab.SHADOWS`.
        shadow_opacity: the shadow's opacity, percent (0..100).
    """

    bg_mode: str = "transparent"
    bg_color: RGBA | None = None
    blur_radius: float | None = None
    channels: str = "rgba"
    format: str = "auto"
    size: SizeLimit = SizeLimit()
    crop: bool = False
    crop_margin: CropMargin = CropMargin()
    segmentation: SegmentationOptions = SegmentationOptions()
    blend: str = "alpha"
    foreground: str = "best"
    scale: float | None = None
    position: Position | None = None
    roi: Roi | None = None
    shadow: str = "none"
    shadow_opacity: float = 50.0


def parse_segmentation_options(params: Mapping[str, str | None]) -> SegmentationOptions:
    """``classes``, ``score_threshold`` (0..1), ``instances`` (all|largest), ``backend`` and
    ``subject`` (``auto`` = not sent)."""
    classes, score, instances = params.get("classes"), params.get("score_threshold"), params.get("instances")
    size = params.get("model_size")
    backend = parse_backend(params["backend"]) if params.get("backend") is not None else "auto"
    subject = parse_choice(params.get("subject"), "subject", SUBJECTS, "auto")
    return SegmentationOptions(
        classes=None if classes is None else ",".join(parse_classes(classes)),
        score_threshold=None if score is None else parse_number(score, "score_threshold", low=0.0, high=1.0),
        instances=None if instances is None else parse_choice(instances, "instances", INSTANCES, "all"),
        backend=None if backend == "auto" else backend,
        model_size=None if size is None else parse_model_size(size),
        subject=None if subject == "auto" else subject,
    )


def check_blend(blend: str, bg_mode: str, channels: str, bg_color: RGBA | None) -> None:
    """Refuse a Poisson ``blend`` that has no new opaque background to blend into.

    Raises:
        InvalidValue: field ``blend``, saying why and what to do.
    """
    if blend == "alpha":
        return
    if channels == "alpha":
        raise InvalidValue("blend", f"blend={blend} changes the subject's colours, but "
                           "channels=alpha returns the matte only, which blending does not "
                           "change; drop blend or ask for channels=rgba")
    if bg_mode == "transparent":
        raise InvalidValue("blend", f"blend={blend} blends the subject into a new background, "
                           "and bg_mode=transparent has none; give bg_image or bg_color, or "
                           "bg_mode=blur or grayscale (or use blend=alpha)")
    if bg_mode == "color" and bg_color is not None and bg_color[3] < 255:
        raise InvalidValue("blend", f"blend={blend} needs an opaque background, but bg_color has "
                           f"alpha {bg_color[3]} (< 255); give an opaque colour or use blend=alpha")


#: ``shadow_opacity`` when not given, percent.
DEFAULT_SHADOW_OPACITY = 50.0
#: Backgrounds made from the photo itself, where the subject still stands at its place.
PHOTO_BACKGROUNDS = ("blur", "grayscale")


def parse_product_options(params: Mapping[str, str | None], *, bg_mode: str, shadow: str) -> dict:
    """``scale``, ``position`` and ``roi`` of ``params``, and ``shadow_opacity`` for
    ``shadow`` (already parsed: ``/v1/matte`` and remove.bg name it differently): the
    :class:`MatteOptions` fields of a product photo, as keyword arguments.

    Raises:
        InvalidValue: a value out of range, a moved subject over a background made from the
            photo (the subject is still in it), an opacity without a shadow.
    """
    scale = parse_scale(params.get("scale"))
    position = parse_position(params.get("position"), scaled=scale is not None)
    moved = scale is not None or position is not None
    if moved and bg_mode in PHOTO_BACKGROUNDS:
        field = "scale" if scale is not None else "position"
        raise InvalidValue(field, f"bg_mode={bg_mode} makes the background from the photo, where the "
                           "subject still stands at its place; use a new background (bg_image, "
                           "bg_color, or transparent) to move or resize the subject")
    raw_opacity = params.get("shadow_opacity")
    opacity = DEFAULT_SHADOW_OPACITY if raw_opacity is None else parse_number(
        raw_opacity.strip().removesuffix("%"), "shadow_opacity", low=0.0, high=100.0)
    return {"scale": scale, "position": position, "roi": parse_roi(params.get("roi")),
            "shadow": shadow, "shadow_opacity": opacity}


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
        InvalidValue: naming the offending field.
    """
    raw_color = params.get("bg_color")
    color = parse_color(raw_color) if raw_color is not None else None
    default_mode = "image" if has_bg_image else ("color" if color is not None else "transparent")
    bg_mode = parse_choice(params.get("bg_mode"), "bg_mode", BG_MODES, default_mode)
    if bg_mode == "image" and not has_bg_image:
        raise InvalidValue("bg_mode", "bg_mode=image needs a bg_image file")
    if bg_mode == "color" and color is None:
        color = WHITE  # documented default
    raw_blur = params.get("blur_radius")
    blur = None if raw_blur is None else parse_number(raw_blur, "blur_radius", low=0.0,
                                                      high=MAX_BLUR_RADIUS, low_open=True)
    channels = parse_choice(params.get("channels"), "channels", CHANNELS, "rgba")
    blend = parse_choice(params.get("blend"), "blend", BLEND_MODES, "alpha")
    check_blend(blend, bg_mode, channels, color)
    shadow = parse_choice(params.get("shadow"), "shadow", SHADOWS, "none")
    if shadow == "none" and params.get("shadow_opacity") is not None:
        raise InvalidValue("shadow_opacity", "a shadow's opacity needs a shadow: add shadow=drop, "
                           "or leave shadow_opacity out")
    return MatteOptions(
        bg_mode=bg_mode,
        bg_color=color if bg_mode == "color" else None,
        blur_radius=blur,
        channels=channels,
        format=parse_format(params.get("format")),
        size=parse_size(params.get("size")),
        crop=parse_bool(params.get("crop"), "crop"),
        crop_margin=parse_crop_margin(params.get("crop_margin")),
        segmentation=parse_segmentation_options(params),
        blend=blend,
        foreground=parse_choice(params.get("foreground"), "foreground", FOREGROUND_ESTIMATES, "best"),
        **parse_product_options(params, bg_mode=bg_mode, shadow=shadow),
    )

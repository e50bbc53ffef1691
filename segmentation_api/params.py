"""Validate the parameters of ``POST /v1/trimap``.

Pure: values come in as strings through a getter (form field, else query string), come
out as a :class:`~segmentation_api.pipeline.SegmentParams`; a bad value raises
``ApiError("invalid_parameter", ..., field=<name>)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Mapping

from service_common.config import SEGMENTATION_BACKENDS
from service_common.errors import ApiError
from trimap.from_masks import TrimapOptions

from .pipeline import INSTANCE_MODES, SegmentParams

#: Values of the ``backend`` parameter (``auto`` = the service's default backend).
BACKEND_CHOICES = SEGMENTATION_BACKENDS

#: Largest ``band`` accepted (a band wider than the image is pointless).
MAX_BAND = 10.0

Getter = Callable[[str, str | None], str | None]


def _invalid(field: str, message: str, **details: object) -> ApiError:
    return ApiError("invalid_parameter", message, field=field, **details)


def parse_float(get: Getter, field: str, default: float, low: float, high: float,
                *, low_open: bool = False, high_open: bool = False) -> float:
    """The number in ``field`` (``default`` when absent), checked against its range."""
    raw = get(field, None)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise _invalid(field, f"{field}={raw!r} is not a number") from None
    too_low = value <= low if low_open else value < low
    too_high = value >= high if high_open else value > high
    if not math.isfinite(value) or too_low or too_high:
        interval = f"{'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
        raise _invalid(field, f"{field}={raw!r} must be in {interval}")
    return value


def parse_classes(get: Getter, valid: Collection[str],
                  aliases: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """Comma-separated class names (case and spaces around commas ignored); default ``person``.

    Args:
        get: the parameter getter.
        valid: the names the backend knows (COCO's for Mask R-CNN, VOC's for DeepLabV3).
        aliases: other accepted spellings -> a name of ``valid`` (COCO spellings of VOC
            names for DeepLabV3); the result holds the names of ``valid`` only.
    """
    aliases = aliases or {}
    raw = get("classes", None)
    if raw is None:
        return ("person",)
    names = [" ".join(part.split()).lower() for part in raw.split(",")]
    names = [n for n in names if n]
    if not names:
        raise _invalid("classes", "classes is empty; give comma-separated class names")
    names = [aliases.get(n, n) for n in names]
    unknown = [n for n in names if n not in valid]
    if unknown:
        also = ("; also accepted: " + ", ".join(f"{a} ({n})" for a, n in aliases.items())
                if aliases else "")
        raise _invalid(
            "classes",
            f"unknown class name(s) {', '.join(repr(n) for n in unknown)}; valid names: "
            + ", ".join(valid) + also,
            unknown=unknown,
            valid=list(valid),
        )
    return tuple(dict.fromkeys(names))


def parse_backend(get: Getter, loaded: Collection[str]) -> str | None:
    """The requested backend's name, or ``None`` for ``auto`` / absent (the default one).

    A family name also names a loaded variant when the exact one is not loaded:
    ``maskrcnn`` a ``maskrcnn_v2``, ``deeplabv3`` a ``deeplabv3_mobilenet``.
    """
    raw = get("backend", None)
    if raw is None or raw.lower() == "auto":
        return None
    value = raw.lower()
    if value not in BACKEND_CHOICES:
        raise _invalid("backend", f"backend={raw!r}: expected one of {', '.join(BACKEND_CHOICES)}")
    if value in loaded:
        return value
    matches = [name for name in loaded if name.startswith(value + "_")]
    if not matches:
        raise _invalid(
            "backend",
            f"backend={raw!r} is not loaded in this service; loaded: {', '.join(loaded)}. "
            f"Start the service with BACKDROP_SEGMENTATION_PRELOAD={value} to load it as well "
            "(or make it the default with BACKDROP_SEGMENTATION_BACKEND)",
            loaded=list(loaded),
        )
    return matches[0]


def parse_params(get: Getter, valid_classes: Collection[str],
                 class_aliases: Mapping[str, str] | None = None) -> SegmentParams:
    """All parameters of a trimap request except ``backend``.

    Args:
        get: ``get(name, default) -> str | None`` (form field, else query string).
        valid_classes: the class names a client may ask for (the chosen backend's).
        class_aliases: other accepted class spellings -> a name of ``valid_classes``.
    """
    classes = parse_classes(get, valid_classes, class_aliases)
    score = parse_float(get, "score_threshold", 0.6, 0.0, 1.0)
    instances = (get("instances", None) or "all").lower()
    if instances not in INSTANCE_MODES:
        raise _invalid("instances", f"instances={instances!r}: expected one of {', '.join(INSTANCE_MODES)}")
    defaults = TrimapOptions()
    fg = parse_float(get, "fg_threshold", defaults.fg_threshold, 0.0, 1.0, low_open=True)
    bg = parse_float(get, "bg_threshold", defaults.bg_threshold, 0.0, 1.0, low_open=True, high_open=True)
    if bg >= fg:
        raise _invalid("bg_threshold", f"bg_threshold={bg:g} must be below fg_threshold={fg:g}")
    band = parse_float(get, "band", defaults.band, 0.0, MAX_BAND, low_open=True)
    return SegmentParams(
        classes=classes,
        score_threshold=score,
        instances=instances,
        trimap=TrimapOptions(fg_threshold=fg, bg_threshold=bg, band=band),
    )

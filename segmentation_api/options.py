"""Validate the parameters of ``POST /v1/trimap`` and ``POST /v1/mask``.

Pure: values come in as strings through a getter (form field, else query string) and are
parsed by :mod:`contract.parse`; they come out as a
:class:`~segmentation_api.pipeline.SegmentOptions`. A bad value raises
:class:`~contract.parse.InvalidValue` naming the field (the app answers 400
``invalid_parameter``). What only this service knows is checked here: which class names the
chosen backend has, which backends this worker loaded.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping

from contract.parse import InvalidValue, parse_choice, parse_model_size, parse_number
from contract.parse import parse_backend as parse_backend_name
from contract.parse import parse_classes as parse_class_names
from contract.vocab import INSTANCES, SEGMENT_FORMATS, SUBJECTS
from trimap.from_masks import TrimapOptions

from .pipeline import SegmentOptions

#: Largest ``band`` accepted (a band wider than the image is pointless).
MAX_BAND = 10.0

Getter = Callable[[str, str | None], str | None]


def _number(get: Getter, field: str, default: float, **interval: float | bool) -> float:
    raw = get(field, None)
    return default if raw is None else parse_number(raw, field, **interval)  # type: ignore[arg-type]


def parse_classes(get: Getter, valid: Collection[str],
                  aliases: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """Comma-separated class names (case and spaces ignored); default ``person``.

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
    try:
        names = [aliases.get(n, n) for n in parse_class_names(raw)]
    except InvalidValue as exc:
        if "unknown" not in exc.details:
            raise
        raise _unknown(exc.details["unknown"], valid, aliases) from None
    unknown = [n for n in names if n not in valid]
    if unknown:
        raise _unknown(unknown, valid, aliases)
    return tuple(dict.fromkeys(names))


def _unknown(unknown: list[str], valid: Collection[str], aliases: Mapping[str, str]) -> InvalidValue:
    """The error for class names the backend does not know, listing the ones it does."""
    also = "; also accepted: " + ", ".join(f"{a} ({n})" for a, n in aliases.items()) if aliases else ""
    more = f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
    return InvalidValue(
        "classes",
        f"unknown class name(s) {', '.join(repr(n) for n in unknown[:5])}{more}; valid names: "
        + ", ".join(valid) + also,
        unknown=unknown[:5],
        valid=list(valid),
    )


def parse_backend(get: Getter, loaded: Collection[str]) -> str | None:
    """The requested backend's name, or ``None`` for ``auto`` / absent (the policy's choice).

    A family name also names a loaded variant when the exact one is not loaded:
    ``maskrcnn`` a ``maskrcnn_v2``, ``deeplabv3`` a ``deeplabv3_mobilenet``.
    """
    raw = get("backend", None)
    if raw is None:
        return None
    value = parse_backend_name(raw)
    if value == "auto":
        return None
    if value in loaded:
        return value
    matches = [name for name in loaded if name.startswith(value + "_")]
    if not matches:
        raise InvalidValue(
            "backend",
            f"{value} is not loaded in this service; loaded: {', '.join(loaded)}. Start the "
            f"service with BACKDROP_SEGMENTATION_PRELOAD={value} to load it as well (or make it "
            "the default with BACKDROP_SEGMENTATION_BACKEND)",
            loaded=list(loaded),
        )
    return matches[0]


def parse_subject(get: Getter) -> str:
    """``subject``: one of :data:`~contract.vocab.SUBJECTS`; default ``auto``."""
    return parse_choice(get("subject", None), "subject", SUBJECTS, "auto")


def parse_format(get: Getter) -> str:
    """``format`` of the answer: one of :data:`~contract.vocab.SEGMENT_FORMATS`; default
    ``png``."""
    return parse_choice(get("format", None), "format", SEGMENT_FORMATS, "png")


def check_subject(subject: str, classes: Collection[str]) -> None:
    """Refuse named ``classes`` that contradict ``subject`` (``person`` with other classes,
    ``object`` with people only).

    Raises:
        InvalidValue: field ``subject``, saying which to drop.
    """
    people = set(classes) <= {"person"}
    if (subject == "person" and not people) or (subject == "object" and people):
        raise InvalidValue("subject", f"{subject} contradicts classes={','.join(classes)}: "
                           "give one of the two (subject=auto lets the classes decide)")


def parse_options(get: Getter, valid_classes: Collection[str],
                 class_aliases: Mapping[str, str] | None = None) -> SegmentOptions:
    """All parameters of a segmentation request except ``backend``.

    Args:
        get: ``get(name, default) -> str | None`` (form field, else query string).
        valid_classes: the class names a client may ask for (the chosen backend's).
        class_aliases: other accepted class spellings -> a name of ``valid_classes``.
    """
    classes = parse_classes(get, valid_classes, class_aliases)
    score = _number(get, "score_threshold", 0.6, low=0.0, high=1.0)
    instances = parse_choice(get("instances", None), "instances", INSTANCES, "all")
    defaults = TrimapOptions()
    fg = _number(get, "fg_threshold", defaults.fg_threshold, low=0.0, high=1.0, low_open=True)
    bg = _number(get, "bg_threshold", defaults.bg_threshold, low=0.0, high=1.0, low_open=True,
                 high_open=True)
    if bg >= fg:
        raise InvalidValue("bg_threshold", f"{bg:g} must be below fg_threshold ({fg:g})")
    band = _number(get, "band", defaults.band, low=0.0, high=MAX_BAND, low_open=True)
    raw_size = get("model_size", None)
    return SegmentOptions(
        subject=parse_subject(get),
        model_size=None if raw_size is None else parse_model_size(raw_size),
        classes=classes,
        score_threshold=score,
        instances=instances,
        trimap=TrimapOptions(fg_threshold=fg, bg_threshold=bg, band=band),
    )

"""One parser per kind of value, for the services and the clients alike. Pure.

Every parser takes the raw text (``None`` = not given, where a default applies) and returns
the value, or raises :class:`InvalidValue` naming the field with a sentence a user can act
on. The services turn it into ``400 invalid_parameter`` (``service_common.errors``), the
command-line clients into an argparse usage error (``client.options.arg``). Values are
quoted in messages at most :data:`SHOWN_CHARS` characters long.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Collection

from PIL import ImageColor

from .formats import FORMAT_ALIASES
from .values import (
    CENTER,
    MAX_MARGIN_PERCENT,
    MAX_MARGIN_PX,
    MAX_MODEL_SIZE,
    MAX_ROI_PX,
    MAX_SCALE_PERCENT,
    MAX_SIZE,
    MIN_MODEL_SIZE,
    MIN_SCALE_PERCENT,
    MIN_SIZE,
    RGBA,
    CropMargin,
    Margin,
    Position,
    Roi,
    SizeLimit,
)
from .vocab import FALSE_WORDS, FORMATS, SEGMENTATION_BACKENDS, TRUE_WORDS

#: Longest part of a bad value quoted back in a message.
SHOWN_CHARS = 40

_HEX = re.compile(r"^#?([0-9a-fA-F]{3}|[0-9a-fA-F]{4}|[0-9a-fA-F]{6}|[0-9a-fA-F]{8})$")
_MARGIN = re.compile(r"^(\d+(?:\.\d+)?)(px|%)?$")
_CLASS_NAME = re.compile(r"^[a-z][a-z ]{0,40}$")
_PERCENT = re.compile(r"^(\d{1,12}(?:\.\d{1,12})?)%?$")
_COORD = re.compile(r"^(\d{1,12}(?:\.\d{1,12})?)(px|%)?$")


class InvalidValue(ValueError):
    """A value that cannot be used.

    Attributes:
        field: the parameter's name (``bg_color``, ``size``, ...).
        message: a sentence about the value, without the field's name.
        details: extra JSON-serialisable facts for the API's error body.
    """

    def __init__(self, field: str, message: str, **details: object) -> None:
        super().__init__(message)
        self.field = field
        self.message = message
        self.details = details


def shown(value: str) -> str:
    """``value`` quoted for a message, cut to :data:`SHOWN_CHARS` characters."""
    if len(value) <= SHOWN_CHARS:
        return repr(value)
    return repr(value[:SHOWN_CHARS]) + f" (and {len(value) - SHOWN_CHARS} more characters)"


def parse_choice(value: str | None, field: str, choices: Collection[str], default: str) -> str:
    """One of ``choices`` (case and surrounding spaces ignored); ``default`` when absent."""
    if value is None:
        return default
    low = value.strip().lower()
    if low not in choices:
        raise InvalidValue(field, f"{shown(value)} is not one of {', '.join(choices)}")
    return low


def parse_format(value: str | None, field: str = "format", choices: Collection[str] = FORMATS,
                 default: str = "auto") -> str:
    """An output format of ``choices`` (``jpeg`` means ``jpg``: :data:`~contract.formats.FORMAT_ALIASES`)."""
    if value is not None:
        value = FORMAT_ALIASES.get(value.strip().lower(), value)
    return parse_choice(value, field, choices, default)


def parse_bool(value: str | None, field: str, default: bool = False) -> bool:
    """``true``/``false`` (also 1/0, yes/no, on/off), case-insensitive."""
    if value is None:
        return default
    low = value.strip().lower()
    if low in TRUE_WORDS:
        return True
    if low in FALSE_WORDS:
        return False
    raise InvalidValue(field, f"{shown(value)} is not true or false")


def parse_number(value: str, field: str, *, low: float, high: float, low_open: bool = False,
                 high_open: bool = False) -> float:
    """A finite number in the interval from ``low`` to ``high`` (open ends as asked)."""
    try:
        number = float(value)
    except ValueError:
        raise InvalidValue(field, f"{shown(value)} is not a number") from None
    too_low = number <= low if low_open else number < low
    too_high = number >= high if high_open else number > high
    if not math.isfinite(number) or too_low or too_high:
        interval = f"{'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
        raise InvalidValue(field, f"{shown(value)} must be a number in {interval}")
    return number


def parse_color(value: str, field: str = "bg_color") -> RGBA:
    """A colour as ``(r, g, b, a)``, each 0..255.

    Accepts hex with 3, 4, 6 or 8 digits, with or without ``#`` (``fff``, ``#81d4fa``,
    ``81d4fa80``; the 4th/8th digits are alpha), a CSS colour name (``white``, ``skyblue``),
    and the ``rgb(...)``/``hsl(...)`` forms Pillow understands, with every channel in 0..255.
    """
    text = value.strip()
    if not text:
        raise InvalidValue(field, "the colour is empty; give hex like 81d4fa or a CSS name like skyblue")
    if _HEX.match(text) and not text.startswith("#"):
        text = "#" + text
    try:
        rgb = ImageColor.getrgb(text.lower())
    except ValueError:
        raise InvalidValue(field, f"{shown(value)} is not a colour: give hex like 81d4fa, #fff or "
                           "81d4fa80 (with alpha), or a CSS name like skyblue") from None
    rgba = (*rgb, 255) if len(rgb) == 3 else tuple(rgb)
    # Pillow passes through out-of-range functional forms such as rgb(999,0,0)
    if not all(0 <= int(c) <= 255 for c in rgba):
        raise InvalidValue(field, f"{shown(value)}: every channel must be within 0..255")
    return (int(rgba[0]), int(rgba[1]), int(rgba[2]), int(rgba[3]))


def parse_size(value: str | None, field: str = "size") -> SizeLimit:
    """``full`` (default) or a whole number of px in [:data:`~contract.values.MIN_SIZE`,
    :data:`~contract.values.MAX_SIZE`]: the cap on the result's long side."""
    if value is None or value.strip().lower() == "full":
        return SizeLimit()
    text = value.strip().lower().removesuffix("px")
    # ASCII digits only (str.isdigit() also accepts '²', which int() refuses)
    if not (text.isascii() and text.isdigit()):
        raise InvalidValue(field, f"{shown(value)} is neither 'full' nor a whole number of pixels "
                           "(such as 1024)")
    # int() refuses more than 4300 digits; any number that long is out of range anyway
    if len(text.lstrip("0")) > len(str(MAX_SIZE)) or not MIN_SIZE <= int(text) <= MAX_SIZE:
        raise InvalidValue(field, f"{shown(value)} px is outside {MIN_SIZE}..{MAX_SIZE} px: give the "
                           "cap on the result's long side within that range, or full",
                           minimum=MIN_SIZE, maximum=MAX_SIZE)
    return SizeLimit(long_side=int(text))


def _px_or_percent(token: str, field: str, pattern: re.Pattern[str], example: str) -> Margin:
    """``token`` (``pattern``: a number, then ``px``, ``%`` or nothing for px) as a
    :class:`Margin`, its range not checked yet; ``example`` says what is wanted."""
    match = pattern.match(token)
    if not match:
        raise InvalidValue(field, f"{shown(token)} is not {example}")
    return Margin(float(match.group(1)), percent=match.group(2) == "%")


def _margin(token: str, field: str) -> Margin:
    margin = _px_or_percent(token, field, _MARGIN, "a margin like 30px, 30 (px) or 10%")
    if margin.percent and margin.value > MAX_MARGIN_PERCENT:
        raise InvalidValue(field, f"{shown(token)} is above the maximum of {MAX_MARGIN_PERCENT:g}%")
    if not margin.percent and margin.value > MAX_MARGIN_PX:
        raise InvalidValue(field, f"{shown(token)} is above the maximum of {MAX_MARGIN_PX}px")
    return margin


def parse_crop_margin(value: str | None, field: str = "crop_margin") -> CropMargin:
    """CSS-like margins: one value (all sides), two (top/bottom, left/right) or four (top,
    right, bottom, left). Each is ``30px``, ``30`` (px) or ``10%`` (of the subject's height
    for top/bottom, width for left/right); at most 500 px or 50 %."""
    if value is None:
        return CropMargin()
    tokens = value.replace(",", " ").lower().split()
    if len(tokens) not in (1, 2, 4):
        raise InvalidValue(field, f"{shown(value)}: give 1, 2 or 4 margins (all sides; top/bottom "
                           "and left/right; or top, right, bottom, left)")
    m = [_margin(t, field) for t in tokens]
    if len(m) == 1:
        return CropMargin(m[0], m[0], m[0], m[0])
    if len(m) == 2:
        return CropMargin(m[0], m[1], m[0], m[1])
    return CropMargin(m[0], m[1], m[2], m[3])


def parse_classes(value: str, field: str = "classes") -> tuple[str, ...]:
    """Comma-separated class names, normalised (lower case, single spaces, duplicates dropped).

    Which names exist is the segmentation backend's business; here a name only has to look
    like one (letters and spaces, such as ``person`` or ``teddy bear``).
    """
    names = [" ".join(part.split()).lower() for part in value.split(",")]
    names = [n for n in names if n]
    if not names:
        raise InvalidValue(field, "no class name given; give comma-separated names such as person,dog")
    for name in names:
        if not _CLASS_NAME.match(name):
            raise InvalidValue(field, f"{shown(name)} is not a class name (such as person or teddy bear)",
                               unknown=[name[:SHOWN_CHARS]])
    return tuple(dict.fromkeys(names))


def parse_model_size(value: str, field: str = "model_size") -> int:
    """The people model's working size: a whole number of px in
    [:data:`~contract.values.MIN_MODEL_SIZE`, :data:`~contract.values.MAX_MODEL_SIZE`]."""
    text = value.strip().lower().removesuffix("px")
    if not (text.isascii() and text.isdigit()):
        raise InvalidValue(field, f"{shown(value)} is not a whole number of pixels (such as 384)")
    if len(text.lstrip("0")) > len(str(MAX_MODEL_SIZE)) or not (
            MIN_MODEL_SIZE <= int(text) <= MAX_MODEL_SIZE):
        raise InvalidValue(field, f"{shown(value)} px is outside {MIN_MODEL_SIZE}..{MAX_MODEL_SIZE} px",
                           minimum=MIN_MODEL_SIZE, maximum=MAX_MODEL_SIZE)
    return int(text)


def parse_backend(value: str, field: str = "backend") -> str:
    """A segmentation backend name of :data:`~contract.vocab.SEGMENTATION_BACKENDS`."""
    return parse_choice(value, field, SEGMENTATION_BACKENDS, "auto")


def parse_scale(value: str | None, field: str = "scale") -> float | None:
    """remove.bg's ``scale``: ``original`` (default: ``None``, the subject keeps its size) or
    the subject's size relative to the result, :data:`~contract.values.MIN_SCALE_PERCENT` to
    :data:`~contract.values.MAX_SCALE_PERCENT` % (``80%`` or ``80``); returned as a fraction."""
    if value is None or value.strip().lower() == "original":
        return None
    match = _PERCENT.match(value.strip())
    if not match:
        raise InvalidValue(field, f"{shown(value)} is neither 'original' nor a percentage such as 80%")
    number = float(match.group(1))
    if not MIN_SCALE_PERCENT <= number <= MAX_SCALE_PERCENT:
        raise InvalidValue(field, f"{shown(value)} is outside {MIN_SCALE_PERCENT:g}%.."
                           f"{MAX_SCALE_PERCENT:g}%: give the subject's size relative to the result "
                           "within that range",
                           minimum=MIN_SCALE_PERCENT, maximum=MAX_SCALE_PERCENT)
    return number / 100.0


def _percent(token: str, field: str) -> float:
    match = _PERCENT.match(token)
    if not match:
        raise InvalidValue(field, f"{shown(token)} is not a percentage such as 50%")
    number = float(match.group(1))
    if number > 100.0:
        raise InvalidValue(field, f"{shown(token)} is outside 0%..100%", minimum=0, maximum=100)
    return number


def parse_position(value: str | None, field: str = "position", *,
                   scaled: bool = False) -> Position | None:
    """remove.bg's ``position``: ``original`` (``None``: the subject stays where it is),
    ``center``, or one percentage (both axes) or two (horizontal, vertical), each 0..100 % of
    the free space left of / above the subject. Absent: ``center`` when the subject is
    ``scaled``, else ``original`` (remove.bg's defaults)."""
    if value is None:
        return CENTER if scaled else None
    text = value.replace(",", " ").strip().lower()
    if text == "original":
        return None
    if text in ("center", "centre"):
        return CENTER
    tokens = text.split()
    if len(tokens) not in (1, 2):
        raise InvalidValue(field, f"{shown(value)}: give original, center, or one or two percentages "
                           "(horizontal, vertical) such as 50% 100%")
    numbers = [_percent(t, field) for t in tokens]
    return Position(numbers[0], numbers[-1])


def _coordinate(token: str, field: str) -> Margin:
    corner = _px_or_percent(token, field, _COORD, "a coordinate like 120px, 120 (px) or 25%")
    if corner.percent and corner.value > 100.0:
        raise InvalidValue(field, f"{shown(token)} is outside 0%..100%", minimum=0, maximum=100)
    if not corner.percent and corner.value > MAX_ROI_PX:
        raise InvalidValue(field, f"{shown(token)} is outside 0..{MAX_ROI_PX}px", minimum=0,
                           maximum=MAX_ROI_PX)
    return corner


def parse_roi(value: str | None, field: str = "roi") -> Roi | None:
    """remove.bg's ``roi``: the region searched for the subject, ``x1 y1 x2 y2`` (spaces or
    commas), each in px (``120px`` or ``120``) or % of the image's width or height; ``None``
    for the whole image (absent, or ``0% 0% 100% 100%``)."""
    if value is None:
        return None
    tokens = value.replace(",", " ").lower().split()
    if len(tokens) != 4:
        raise InvalidValue(field, f"{shown(value)}: give the region's corners as x1 y1 x2 y2, in px or % "
                           "(such as 10% 10% 90% 90%)")
    x1, y1, x2, y2 = (_coordinate(t, field) for t in tokens)
    for low, high, axis in ((x1, x2, "x"), (y1, y2, "y")):
        if low.percent == high.percent and high.value <= low.value:
            raise InvalidValue(field, f"{shown(value)}: {axis}2 must be greater than {axis}1 (the "
                               "corners are the top left and the bottom right)")
    roi = Roi(x1, y1, x2, y2)
    return None if roi.whole else roi


def closest_name(name: str, known: Collection[str]) -> str | None:
    """The name of ``known`` closest to a misspelt ``name``, or ``None``: case, ``-`` for
    ``_`` and ``background`` for ``bg`` forgiven, then the one known name that it extends or
    that extends it by a ``_`` part, then :func:`difflib.get_close_matches`."""
    low = name.strip().lower().replace("-", "_")
    spellings: dict[str, str] = {}
    for candidate in known:
        spellings.setdefault(candidate, candidate)
        if candidate.startswith("bg_"):
            rest = candidate.removeprefix("bg_")
            for spelling in (f"background_{rest}", f"background{rest}", rest):
                if spelling not in known:
                    spellings.setdefault(spelling, candidate)
    if low in spellings:
        return spellings[low]
    # one known name that the given one extends, or that extends it (blur -> blur_radius)
    related = {field for spelling, field in spellings.items()
               if low.startswith(spelling + "_") or spelling.startswith(low + "_")}
    if len(related) == 1:
        return related.pop()
    match = difflib.get_close_matches(low[:SHOWN_CHARS], list(spellings), n=1, cutoff=0.6)
    return spellings[match[0]] if match else None

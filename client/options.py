"""Parse and check command-line values before anything is sent (pure functions).

Every parser raises :class:`ValueError` with a sentence for people; the CLIs turn it into
a usage error (exit code 2). Values are checked here so that a typo fails at once, not
after a folder's worth of requests.
"""

from __future__ import annotations

import re
from pathlib import Path

from PIL import ImageColor

#: File extension -> output format name of the API.
FORMAT_BY_EXT: dict[str, str] = {".png": "png", ".jpg": "jpg", ".jpeg": "jpg", ".webp": "webp"}
#: Output format -> the extension written.
EXT_BY_FORMAT: dict[str, str] = {"png": ".png", "jpg": ".jpg", "webp": ".webp"}
#: Content-Type of an answer -> the extension written.
EXT_BY_MIME: dict[str, str] = {"image/png": ".png", "image/jpeg": ".jpg", "image/webp": ".webp"}

#: Files treated as images when INPUT is a folder.
IMAGE_EXTS = frozenset({".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff"})

#: Values of the API's ``blend`` (alpha compositing, Poisson blending).
BLEND_MODES = ("alpha", "poisson", "poisson_mixed")
#: Segmentation backends a request may name (``auto``: the service's default); the
#: segmentation service must have loaded the one named. Mirrors the services' list.
SEGMENTATION_BACKENDS = ("auto", "maskrcnn", "maskrcnn_v2", "modnet", "u2netp", "deeplabv3",
                         "deeplabv3_mobilenet")

_HEX = re.compile(r"^#?(?:[0-9a-fA-F]{3,4}|[0-9a-fA-F]{6}|[0-9a-fA-F]{8})$")
_MARGIN = re.compile(r"^\d+(?:\.\d+)?(?:px|%)?$")
_VIDEO_SIZE = re.compile(r"^(\d+)[xX](\d+)$")


def parse_color(text: str) -> tuple[int, int, int, int]:
    """A colour as the API takes it: hex with 3, 4, 6 or 8 digits (``81d4fa``, ``#fff``,
    ``81d4fa80``; the 4th/8th digits are alpha), a CSS name (``skyblue``) or ``rgb(...)``.

    Returns:
        ``(r, g, b, a)``, each 0..255 (``a`` is 255 unless 8 hex digits were given).
    """
    value = text.strip()
    if _HEX.match(value):
        value = "#" + value.lstrip("#")
    try:
        rgb = ImageColor.getrgb(value.lower())
    except ValueError:
        raise ValueError(
            f"unknown colour {text!r}: give hex (81d4fa, #fff, 81d4fa80) or a CSS name (skyblue)"
        ) from None
    return (rgb[0], rgb[1], rgb[2], rgb[3] if len(rgb) == 4 else 255)


def parse_crop_margin(text: str) -> str:
    """The API's CSS-like margin: 1, 2 or 4 values, each ``10px``, ``10`` (px) or ``5%``.

    Returns the values normalised to lower case and single spaces (``"10px 5%"``).
    """
    tokens = text.replace(",", " ").lower().split()
    if len(tokens) not in (1, 2, 4) or not all(_MARGIN.match(t) for t in tokens):
        raise ValueError(f"bad crop margin {text!r}: give pixels (10px) or a percentage (5%), "
                         "or 2 or 4 of them (top/bottom left/right; top right bottom left)")
    return " ".join(tokens)


def parse_size(text: str) -> str:
    """``full`` or a positive whole number of pixels (cap on the long side)."""
    value = text.strip().lower()
    if value == "full":
        return value
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"bad size {text!r}: give 'full' or a whole number of pixels, e.g. 1024")
    return str(int(value))


def parse_video_size(text: str) -> tuple[int, int]:
    """``WxH`` (e.g. ``640x360``) -> ``(width, height)``, both >= 2."""
    match = _VIDEO_SIZE.match(text.strip())
    if not match or int(match[1]) < 2 or int(match[2]) < 2:
        raise ValueError(f"bad size {text!r}: give WIDTHxHEIGHT, e.g. 640x360")
    return int(match[1]), int(match[2])


def parse_classes(text: str) -> str:
    """Comma-separated class names, spaces removed (``person, dog`` -> ``person,dog``)."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise ValueError("--classes needs at least one class name, e.g. person,dog")
    return ",".join(names)


def parse_backend(text: str) -> str:
    """A segmentation backend name of :data:`SEGMENTATION_BACKENDS` (case-insensitive)."""
    value = text.strip().lower()
    if value not in SEGMENTATION_BACKENDS:
        raise ValueError(f"unknown segmentation backend {text!r}: give one of "
                         + ", ".join(SEGMENTATION_BACKENDS))
    return value


def parse_fraction(text: str, what: str, *, closed_top: bool = True) -> float:
    """A number in ``[0, 1]`` (``[0, 1)`` when ``closed_top`` is false)."""
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{what} must be a number between 0 and 1, not {text!r}") from None
    if not (0.0 <= value <= 1.0) or (not closed_top and value >= 1.0):
        top = "1" if closed_top else "below 1"
        raise ValueError(f"{what} must be between 0 and {top}, not {text}")
    return value


def format_for_output(output: Path | None, fmt: str | None) -> str | None:
    """The API ``format`` to request for a single-file OUTPUT.

    Args:
        output: the output path, or ``None`` when the CLI picks the name.
        fmt: the ``--format`` value, or ``None`` when not given.

    Returns:
        ``png``/``jpg``/``webp``/``auto``, or ``None`` to leave it to the service (auto).

    Raises:
        ValueError: the extension is not an image format we write, or contradicts ``fmt``.
    """
    ext_fmt = None
    if output is not None and output.suffix:
        ext_fmt = FORMAT_BY_EXT.get(output.suffix.lower())
        if ext_fmt is None:
            raise ValueError(
                f"cannot write {output.suffix!r} files: name the output .png, .jpg or .webp"
            )
    if fmt is None:
        return ext_fmt
    if ext_fmt is not None and fmt != ext_fmt:
        raise ValueError(
            f"--format {fmt} contradicts the output name {output.name!r}: "  # type: ignore[union-attr]
            "drop --format (the extension picks the format) or change the extension"
        )
    return fmt


def extension_for(content_type: str | None, requested: str | None) -> str:
    """The extension to write for an answer: from its Content-Type, else the request."""
    mime = (content_type or "").split(";")[0].strip().lower()
    if mime in EXT_BY_MIME:
        return EXT_BY_MIME[mime]
    return EXT_BY_FORMAT.get(requested or "", ".png")

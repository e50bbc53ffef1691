"""The file formats Backdrop writes, each described once: name, MIME type, extension, alpha.

The services encode with it (:mod:`service_common.images`), answer with its MIME types and
file names (``/v1/matte``, the remove.bg endpoint), the OpenAPI document lists it, and the
clients name their files from it. Adding a format is a row here (and, when Pillow needs
options to save it, a line in :func:`service_common.images.encode_image`); the remove.bg
endpoint takes only the formats remove.bg's own API has (:data:`REMOVEBG_FORMATS`).
:func:`tiff_blocks` counts the strips or tiles of a TIFF from its header, for the services
(uploads) and the clients (answers) alike.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass


@dataclass(frozen=True)
class OutputFormat:
    """One format Backdrop writes.

    Attributes:
        name: the API's name (``format=NAME``).
        mime: its MIME type (``Content-Type``).
        extension: the extension written, dot included.
        alpha: whether it can hold transparency.
        pillow: Pillow's name for encoding it; ``None`` for an archive (remove.bg's zip).
        use: who gets it: ``"result"`` (``/v1/matte`` and the clients), ``"hop"`` (between
            the services on one machine only) or ``"removebg"`` (the remove.bg endpoint only).
        other_extensions: more extensions read as this format (``.jpeg``).
    """

    name: str
    mime: str
    extension: str
    alpha: bool
    pillow: str | None
    use: str = "result"
    other_extensions: tuple[str, ...] = ()


#: Every format, by name.
OUTPUT_FORMATS: dict[str, OutputFormat] = {f.name: f for f in (
    OutputFormat("png", "image/png", ".png", alpha=True, pillow="PNG"),
    OutputFormat("jpg", "image/jpeg", ".jpg", alpha=False, pillow="JPEG", other_extensions=(".jpeg",)),
    OutputFormat("webp", "image/webp", ".webp", alpha=True, pillow="WEBP"),
    # uncompressed and lossless: the video client's answer on this machine (a 640 x 480 RGBA
    # frame: 0.5 to 2.7 ms to encode, PNG 15 to 26 ms: contract.transport), and a result for
    # photographers
    OutputFormat("tiff", "image/tiff", ".tif", alpha=True, pillow="TIFF", other_extensions=(".tiff",)),
    OutputFormat("bmp", "image/bmp", ".bmp", alpha=False, pillow="BMP", use="hop"),
    OutputFormat("zip", "application/zip", ".zip", alpha=True, pillow=None, use="removebg"),
)}

#: The formats of a result (``/v1/matte``, the clients), ``auto`` not included.
RESULT_FORMATS: tuple[str, ...] = tuple(n for n, f in OUTPUT_FORMATS.items() if f.use == "result")
#: The result formats remove.bg's API has (no tiff).
_REMOVEBG_RESULTS = ("png", "jpg", "webp")
#: The remove.bg endpoint's formats: the results remove.bg has and its own (zip), ``auto`` not
#: included.
REMOVEBG_FORMATS: tuple[str, ...] = (*(n for n in RESULT_FORMATS if n in _REMOVEBG_RESULTS),
                                     *(n for n, f in OUTPUT_FORMATS.items() if f.use == "removebg"))
#: The formats of the image sent from the matting service to the segmentation service: PNG
#: (lossless, compressed) and the hop's own (uncompressed BMP), ``auto`` not included.
TRANSPORT_FORMATS: tuple[str, ...] = ("png", *(n for n, f in OUTPUT_FORMATS.items() if f.use == "hop"))
#: Another spelling accepted for a format name.
FORMAT_ALIASES: dict[str, str] = {"jpeg": "jpg"}


def mime_type(name: str) -> str:
    """The MIME type of format ``name``."""
    return OUTPUT_FORMATS[name].mime


def result_mime_types() -> tuple[str, ...]:
    """The MIME types a result may have (:data:`RESULT_FORMATS`)."""
    return tuple(OUTPUT_FORMATS[n].mime for n in RESULT_FORMATS)


#: TIFF tags read by :func:`tiff_blocks`.
_TIFF_LENGTH, _TIFF_STRIP_OFFSETS, _TIFF_SAMPLES, _TIFF_ROWS_PER_STRIP = 257, 273, 277, 278
_TIFF_PLANAR, _TIFF_TILE_WIDTH, _TIFF_TILE_LENGTH, _TIFF_TILE_OFFSETS = 284, 322, 323, 324
_TIFF_WIDTH = 256
#: TIFF field type -> (struct code, bytes) of the integer types a size tag may use.
_TIFF_INTS = {1: ("B", 1), 3: ("H", 2), 4: ("I", 4), 16: ("Q", 8)}


def tiff_blocks(data: bytes) -> int:
    """How many strips or tiles the first picture of a TIFF (or BigTIFF) declares: the larger
    of its offset tags' counts and what its size and strip or tile size imply. Reads the
    header and the first directory's entries only (never the offset arrays); 0 when the
    directory cannot be found (the decoder then refuses the file as unreadable).

    Each strip or tile costs a decoder (Pillow's) a step and its bookkeeping, so the services
    count an upload's (:data:`service_common.images.MAX_TIFF_BLOCKS`) and the clients a TIFF
    answer's (:data:`client.api.MAX_ANSWER_TIFF_BLOCKS`) before decoding: it is here because
    both use it. The TIFFs Backdrop writes have one strip."""
    try:
        order = "<" if data[:2] == b"II" else ">"
        big = struct.unpack_from(order + "H", data, 2)[0] == 43
        if big:
            ifd = struct.unpack_from(order + "Q", data, 8)[0]
            count = struct.unpack_from(order + "Q", data, ifd)[0]
            first, size, entry_fmt = ifd + 8, 20, order + "HHQ8s"
        else:
            ifd = struct.unpack_from(order + "I", data, 4)[0]
            count = struct.unpack_from(order + "H", data, ifd)[0]
            first, size, entry_fmt = ifd + 2, 12, order + "HHI4s"
    except struct.error:
        return 0
    counts: dict[int, int] = {}
    values: dict[int, int] = {}
    for i in range(min(count, (len(data) - first) // size)):
        tag, kind, n, raw = struct.unpack_from(entry_fmt, data, first + i * size)
        counts[tag] = n
        if n == 1 and kind in _TIFF_INTS:
            code, width = _TIFF_INTS[kind]
            if width <= len(raw):
                values[tag] = struct.unpack_from(order + code, raw, 0)[0]
    declared = counts.get(_TIFF_STRIP_OFFSETS, 0) + counts.get(_TIFF_TILE_OFFSETS, 0)
    width, height = values.get(_TIFF_WIDTH, 0), values.get(_TIFF_LENGTH, 0)
    planes = values.get(_TIFF_SAMPLES, 1) if values.get(_TIFF_PLANAR, 1) == 2 else 1
    if _TIFF_TILE_WIDTH in values and _TIFF_TILE_LENGTH in values:
        tile_w, tile_h = max(1, values[_TIFF_TILE_WIDTH]), max(1, values[_TIFF_TILE_LENGTH])
        implied = -(-width // tile_w) * -(-height // tile_h) * planes
    else:
        rows = max(1, min(values.get(_TIFF_ROWS_PER_STRIP, height or 1), height or 1))
        implied = -(-height // rows) * planes
    return max(declared, implied)

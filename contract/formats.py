"""The file formats Backdrop writes, each described once: name, MIME type, extension, alpha.

The services encode with it (:mod:`service_common.images`), answer with its MIME types and
file names (``/v1/matte``, the remove.bg endpoint), the OpenAPI document lists it, and the
clients name their files from it. Adding a format is a row here (and, when Pillow needs
options to save it, a line in :func:`service_common.images.encode_image`).
"""

from __future__ import annotations

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
    OutputFormat("bmp", "image/bmp", ".bmp", alpha=False, pillow="BMP", use="hop"),
    OutputFormat("zip", "application/zip", ".zip", alpha=True, pillow=None, use="removebg"),
)}

#: The formats of a result (``/v1/matte``, the clients), ``auto`` not included.
RESULT_FORMATS: tuple[str, ...] = tuple(n for n, f in OUTPUT_FORMATS.items() if f.use == "result")
#: The remove.bg endpoint's formats: the results' and its own (zip), ``auto`` not included.
REMOVEBG_FORMATS: tuple[str, ...] = (*RESULT_FORMATS, *(n for n, f in OUTPUT_FORMATS.items()
                                                         if f.use == "removebg"))
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

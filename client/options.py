"""Command-line values of the clients: the shared parsers adapted to argparse, and the
client's own rules (output names, extensions, video sizes). Pure functions.

The values the API takes are parsed by :mod:`contract.parse`, the same code the services
run, so a typo fails at once with the service's own sentence, not after a folder's worth of
requests. :func:`arg` turns a parser into an argparse ``type``: argparse then prints
``argument --size: 'abc' is neither 'full' nor a whole number of pixels (such as 1024)``
and exits with code 2.
"""

from __future__ import annotations

import argparse
import logging
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from contract.formats import OUTPUT_FORMATS, RESULT_FORMATS
from contract.parse import InvalidValue, parse_backend, parse_classes, parse_model_size, parse_number
from contract.vocab import INSTANCES, SEGMENTATION_BACKENDS, SUBJECTS, SegmentationOptions

#: File extension -> output format name of the API.
FORMAT_BY_EXT: dict[str, str] = {ext: f.name for f in (OUTPUT_FORMATS[n] for n in RESULT_FORMATS)
                                 for ext in (f.extension, *f.other_extensions)}
#: Output format -> the extension written.
EXT_BY_FORMAT: dict[str, str] = {name: OUTPUT_FORMATS[name].extension for name in RESULT_FORMATS}
#: Content-Type of an answer -> the extension written.
EXT_BY_MIME: dict[str, str] = {OUTPUT_FORMATS[name].mime: OUTPUT_FORMATS[name].extension
                               for name in RESULT_FORMATS}

#: Files treated as images when INPUT is a folder.
IMAGE_EXTS = frozenset({".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff"})

_VIDEO_SIZE = re.compile(r"^(\d+)[xX](\d+)$")


def arg(parse: Callable[..., Any], *args: Any, keep_text: bool = False,
        **kwargs: Any) -> Callable[[str], Any]:
    """An argparse ``type`` from a parser of :mod:`contract.parse` (or any function raising
    :class:`ValueError` with a sentence): the sentence becomes argparse's error.

    Args:
        parse: ``parse(text, *args, **kwargs) -> value``.
        keep_text: return the text (stripped) instead of the parsed value: the value is
            only checked (a colour is sent as the user wrote it).
    """

    def convert(text: str) -> Any:
        try:
            value = parse(text, *args, **kwargs)
        except InvalidValue as exc:
            raise argparse.ArgumentTypeError(exc.message) from None
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
        return text.strip() if keep_text else value

    convert.__name__ = getattr(parse, "__name__", "value")
    return convert


def fraction(field: str, *, closed_top: bool = True) -> Callable[[str], float]:
    """An argparse ``type``: a number in ``[0, 1]`` (``[0, 1)`` when not ``closed_top``)."""
    return arg(parse_number, field, low=0.0, high=1.0, high_open=not closed_top)


def add_server_argument(parser: Any, default_server: str) -> None:
    """``--server URL``: the matting service (default: ``$BACKDROP_SERVER``, else ``default_server``)."""
    parser.add_argument("--server", default=None,
                        help=f"matting service URL (default: $BACKDROP_SERVER or {default_server})")


def add_subject_arguments(group: Any) -> None:
    """``--subject``, ``--classes``, ``--score-threshold``, ``--instances``, ``--model-size``,
    ``--backend`` (passed to the segmentation service), shared by the image and the video
    client."""
    group.add_argument("--subject", choices=SUBJECTS,
                       help="what the photo is of: auto (the service decides per photo: the people "
                       "model, or the salient-object model when the people model's matte looks unlike "
                       "a person and misses the object; default), person, or object")
    group.add_argument("--classes", type=arg(parse_classes), metavar="person,dog",
                       help="classes to keep (default person: MODNet offline; other classes: "
                       "Mask R-CNN when installed, else the salient object, U^2-Net-p)")
    group.add_argument("--score-threshold", type=fraction("score_threshold"), metavar="0..1",
                       help="keep detections scoring above this (default 0.6)")
    group.add_argument("--instances", choices=INSTANCES, help="keep all subjects or the largest")
    group.add_argument("--model-size", type=arg(parse_model_size), metavar="PX",
                       help="the people model's working size, shorter side in px (the service's "
                       "default: 512); smaller is faster but may lose what the person holds; the edge "
                       "is refined at full resolution")
    group.add_argument("--backend", type=arg(parse_backend), metavar="NAME",
                       help="segmentation backend: auto (the service's policy, default), "
                       + ", ".join(SEGMENTATION_BACKENDS[1:]) + "; the segmentation service must have "
                       "it loaded")


def segmentation_options(args: argparse.Namespace) -> SegmentationOptions:
    """The segmentation options of :func:`add_subject_arguments`' options (``None`` where
    one was not given)."""
    return SegmentationOptions(classes=None if args.classes is None else ",".join(args.classes),
                               score_threshold=args.score_threshold, instances=args.instances,
                               backend=args.backend, model_size=args.model_size, subject=args.subject)


def parse_video_size(text: str) -> tuple[int, int]:
    """``WxH`` (e.g. ``640x360``) -> ``(width, height)``, both >= 2."""
    match = _VIDEO_SIZE.match(text.strip())
    if not match or int(match[1]) < 2 or int(match[2]) < 2:
        raise InvalidValue("size", f"{text!r} is not WIDTHxHEIGHT with sides of 2 px or more, "
                           "such as 640x360")
    return int(match[1]), int(match[2])


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
            raise ValueError(f"cannot write {output.suffix!r} files: name the output "
                             + ", ".join(EXT_BY_FORMAT.values()))
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


def parse_command_line(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """Parse ``argv`` with ``parser`` (which has ``-v/--verbose``) and set up the log: INFO
    with ``--verbose``, else WARNING, as ``LEVEL logger: message`` on stderr."""
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    return args

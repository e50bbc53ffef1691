"""``backdrop`` / ``python -m client``: replace the background of photos via the matting service.

Usage::

    python -m client photo.jpg out.png --color skyblue
    python -m client photo.jpg --transparent            # writes photo.out.png
    python -m client photos/ results/ --blur --jobs 4 --skip-existing
    python -m client photo.jpg out.jpg --background beach.jpg --blend poisson --backend u2netp

INPUT is a file or a folder. For a folder every image in it (recursively) is sent, ``--jobs``
at a time, and the results go to the OUTPUT folder under the same relative names; the run
ends with one line per failed file (file, error code, message).

Nothing that answers is trusted: a file is written only when the answer is a whole image of
the format asked for (decoded first), at most :data:`client.api.MAX_ANSWER_BYTES` long;
``--timeout`` bounds each whole request and its answer, not each read; no redirect is
followed; a broken answer is a failed file with a sentence; and the server's text is printed
without control characters (see :mod:`client.api`).

Exit codes: 0 all done, 1 some file failed (or the service could not be reached, or answered
something that is not a result), 2 usage error (bad option, missing input), 130 interrupted.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

from tqdm.contrib.logging import logging_redirect_tqdm

from contract.parse import parse_color, parse_crop_margin, parse_number, parse_size
from contract.values import MAX_BLUR_RADIUS
from contract.vocab import BLEND_MODES, FORMATS

from .api import DEFAULT_SERVER, UNREACHABLE_HINT, MattingClient, default_server
from .batch import BatchReport, FileError, Task, TaskFailed, plan_folder, run_task, run_tasks
from .files import same_file
from .options import (
    add_server_argument,
    add_subject_arguments,
    arg,
    format_for_output,
    parse_command_line,
    segmentation_options,
)

log = logging.getLogger("client")

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class UsageError(ValueError):
    """A command-line problem: reported with the usage line, exit code 2."""


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, not {text}")
    return value


_radius = arg(parse_number, "blur_radius", low=0.0, high=MAX_BLUR_RADIUS, low_open=True)


def blur_radius(text: str) -> float | str:
    """``--blur``'s value: a radius in px, or ``auto`` (argparse also converts the ``const``)."""
    return "auto" if text == "auto" else _radius(text)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``python -m client``."""
    p = argparse.ArgumentParser(
        prog="backdrop",
        description="Remove or replace the background of photos with the Backdrop matting "
        "service (POST /v1/matte).",
        epilog="Exit codes: 0 ok, 1 some file failed, 2 usage error. "
        "Start the services with `make serve`.",
    )
    p.add_argument("input", type=Path, help="an image file, or a folder of images")
    p.add_argument("output", type=Path, nargs="?",
                   help="output file (its extension picks the format) or folder; default for "
                   "a file: <input stem>.out.<ext> next to the input")
    add_server_argument(p, DEFAULT_SERVER)
    bg = p.add_argument_group("background (pick one; default: transparent)")
    one = bg.add_mutually_exclusive_group()
    one.add_argument("--background", type=Path, metavar="FILE", help="an image to put behind")
    one.add_argument("--color", type=arg(parse_color, keep_text=True), metavar="HEX|NAME",
                     help="a colour: 81d4fa, #fff, 81d4fa80 (with alpha), skyblue")
    one.add_argument("--transparent", action="store_true", help="transparent background (RGBA)")
    one.add_argument("--blur", type=blur_radius, nargs="?", const="auto", metavar="RADIUS",
                     help="blur the original background (radius in px; default: 2%% of the "
                     "long side)")
    one.add_argument("--grayscale", action="store_true",
                     help="keep the background, in grey (colour splash)")
    bg.add_argument("--blend", choices=BLEND_MODES, default=None,
                    help="how the subject meets the new background: alpha (default: "
                    "compositing with the matte), poisson (seamless cloning of the edge band: "
                    "the edge takes on the background's tone), poisson_mixed (the background's "
                    "texture also reaches into the edge); poisson needs --background, "
                    "--color, --blur or --grayscale")
    out = p.add_argument_group("output")
    out.add_argument("--alpha", action="store_true", help="write the alpha matte only (grey)")
    out.add_argument("--format", choices=FORMATS, default=None,
                     help="output format (default: from OUTPUT's extension, else auto: PNG "
                     "with transparency, else JPEG)")
    out.add_argument("--size", type=arg(parse_size), default=None, metavar="N|full",
                     help="cap on the output's long side in px, or full (default)")
    out.add_argument("--crop", action="store_true", help="crop to the subject")
    out.add_argument("--crop-margin", type=arg(parse_crop_margin), default=None, metavar="10px|5%",
                     help="margin around the subject with --crop")
    seg = p.add_argument_group("subject")
    seg.add_argument("--trimap", type=Path, metavar="FILE",
                     help="a trimap (0/128/255, same size) instead of segmentation; for a "
                     "folder INPUT, a folder of trimaps with the same names")
    add_subject_arguments(seg)
    run = p.add_argument_group("running")
    run.add_argument("--jobs", type=_positive_int, default=4, help="requests in flight (folder)")
    run.add_argument("--skip-existing", action="store_true",
                     help="skip files whose output exists (resume an interrupted folder run)")
    run.add_argument("--timeout", type=_positive_float, default=120.0,
                     help="seconds for each image: the request and its whole answer, not "
                     "each read (default 120)")
    run.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    run.add_argument("-v", "--verbose", action="store_true", help="log each request")
    return p


def options_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """The API form fields (``bg_mode``, ``bg_color``, ...) that the arguments ask for."""
    opts: dict[str, Any] = {}
    if args.background is not None:
        opts["bg_mode"] = "image"
    elif args.color is not None:
        opts.update(bg_mode="color", bg_color=args.color)
    elif args.transparent:
        opts["bg_mode"] = "transparent"
    elif args.blur is not None:
        opts["bg_mode"] = "blur"
        if args.blur != "auto":
            opts["blur_radius"] = f"{args.blur:g}"
    elif args.grayscale:
        opts["bg_mode"] = "grayscale"
    if args.alpha:
        opts["channels"] = "alpha"
    if args.blend is not None and args.blend != "alpha":
        if args.alpha:
            raise UsageError(f"--blend {args.blend} changes the subject's colours; --alpha "
                             "writes the matte only: drop one of them")
        if opts.get("bg_mode", "transparent") == "transparent":
            raise UsageError(f"--blend {args.blend} blends the subject into a new background: "
                             "give --background, --color, --blur or --grayscale")
        if args.color is not None and parse_color(args.color)[3] < 255:
            raise UsageError(f"--blend {args.blend} needs an opaque --color (no alpha digits)")
    if args.blend is not None:
        opts["blend"] = args.blend
    if args.crop_margin is not None and not args.crop:
        raise UsageError("--crop-margin only applies with --crop")
    if args.crop:
        opts["crop"] = True
        if args.crop_margin is not None:
            opts["crop_margin"] = args.crop_margin.text()
    if args.size is not None:
        opts["size"] = args.size.text()
    opts.update(segmentation_options(args).as_form())
    return opts


def _read_arg_file(path: Path, flag: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise UsageError(f"{flag}: cannot read {path}: {exc.strerror or exc}") from None


def single_task(args: argparse.Namespace) -> tuple[Task, str | None]:
    """The task for a single INPUT file and the ``format`` to request."""
    src: Path = args.input
    if args.trimap is not None and not args.trimap.is_file():
        raise UsageError(f"--trimap {args.trimap} is not a file")
    output: Path | None = args.output
    if output is not None and output.is_dir():
        output = output / src.stem  # the extension follows the format
    try:
        fmt = format_for_output(output, args.format)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if output is None:
        task = Task(src, src.parent / f"{src.stem}.out", exact=False, trimap=args.trimap)
    elif output.suffix:
        task = Task(src, output, exact=True, trimap=args.trimap)
    else:
        task = Task(src, output, exact=False, trimap=args.trimap)
    if task.exact and same_file(src, task.output):
        raise UsageError(f"OUTPUT {task.output} is the input file: it is never overwritten")
    return task, fmt


def print_report(report: BatchReport, stream=None) -> None:
    """The end-of-run summary and one line per failed file (file, code, message), on
    ``stream`` (default: stderr)."""
    stream = stream or sys.stderr
    not_sent = f", {len(report.not_attempted)} not sent" if report.not_attempted else ""
    print(f"{len(report.written)} written, {len(report.skipped)} skipped (already done), "
          f"{len(report.failed)} failed{not_sent}", file=stream)
    if report.failed:
        print("failed files:", file=stream)
        width = max(len(str(e.path)) for e in report.failed)
        for err in report.failed:
            status = f" (HTTP {err.status})" if err.status else ""
            print(f"  {str(err.path):{width}s}  {err.code}{status}: {err.message}", file=stream)


def _run_single(client: MattingClient, args: argparse.Namespace, opts: dict[str, Any],
                bg: bytes | None) -> int:
    task, fmt = single_task(args)
    if fmt is not None:
        opts["format"] = fmt
    if args.skip_existing:
        done = [p for p in task.candidates(fmt) if p.exists()]
        if done:
            print(f"{done[0]} exists; skipped", file=sys.stderr)
            return EXIT_OK
    try:
        path = run_task(client, task, opts, bg)
    except TaskFailed as exc:
        _print_error(exc.error)
        return EXIT_FAILED
    print(path)
    return EXIT_OK


def _print_error(err: FileError) -> None:
    status = f", HTTP {err.status}" if err.status else ""
    print(f"error: {err.path}: {err.message} ({err.code}{status})", file=sys.stderr)


def _run_folder(client: MattingClient, args: argparse.Namespace, opts: dict[str, Any],
                bg: bytes | None) -> int:
    src: Path = args.input
    out: Path | None = args.output
    if out is None:
        raise UsageError("INPUT is a folder: give an OUTPUT folder too")
    if out.exists() and not out.is_dir():
        raise UsageError(f"INPUT is a folder, so OUTPUT must be a folder; {out} is a file")
    if out.exists() and same_file(src, out):
        raise UsageError("OUTPUT must be another folder than INPUT (inputs are never overwritten)")
    if args.trimap is not None and not args.trimap.is_dir():
        raise UsageError("INPUT is a folder, so --trimap must be a folder of trimaps")
    if args.format is not None:
        opts["format"] = args.format
    tasks = plan_folder(src, out, args.trimap)
    if not tasks:
        print(f"no image files in {src}", file=sys.stderr)
        return EXIT_OK
    out.mkdir(parents=True, exist_ok=True)
    with logging_redirect_tqdm():
        report = run_tasks(
            client, tasks, opts, bg_image=bg, jobs=args.jobs, skip_existing=args.skip_existing,
            require_trimap=args.trimap is not None, progress=not args.quiet,
        )
    print_report(report)
    if any(e.code == "service_unreachable" for e in report.failed):
        print(f"the matting service at {client.server} could not be reached: {UNREACHABLE_HINT}; "
              "then rerun with --skip-existing to resume", file=sys.stderr)
    return EXIT_OK if report.ok else EXIT_FAILED


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit code."""
    parser = build_parser()
    args = parse_command_line(parser, argv)
    try:
        if not args.input.exists():
            raise UsageError(f"INPUT {args.input} does not exist")
        opts = options_from_args(args)
        bg = _read_arg_file(args.background, "--background") if args.background else None
        with MattingClient(args.server or default_server(), timeout=args.timeout,
                           pool_size=args.jobs) as client:
            if args.input.is_dir():
                return _run_folder(client, args, opts, bg)
            return _run_single(client, args, opts, bg)
    except UsageError as exc:
        parser.print_usage(sys.stderr)
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted; finished outputs are complete, rerun with --skip-existing to resume",
              file=sys.stderr)
        return EXIT_INTERRUPTED

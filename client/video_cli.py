"""The video client's command line: ``backdrop-video`` / ``python -m client.video``.

The options are parsed here into a :class:`~client.video.VideoJob`, which
:func:`~client.video.process_video` runs (see :mod:`client.video` for what a job does, how
it fails and resumes). Exit codes: 0 done, 1 failed (service, video or encoder error), 2
usage error, 3 the work folder ``NAME.EXT.partial/`` is not one this client made, 130
Ctrl-C.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tqdm.contrib.logging import logging_redirect_tqdm

from contract.parse import parse_color

from .api import DEFAULT_SERVER, MattingError
from .options import (
    add_server_argument,
    add_subject_arguments,
    arg,
    fraction,
    parse_command_line,
    parse_video_size,
    segmentation_options,
)
from .video import (
    DEFAULT_SMOOTH,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    UsageError,
    VideoJob,
    process_video,
)
from .video_io import VideoError
from .video_model import SLOW_MODEL_INTERVAL
from .video_pipe import PIXEL_FORMATS
from .video_resume import NotOurFolder


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``backdrop-video`` / ``python -m client.video``."""
    p = argparse.ArgumentParser(
        prog="backdrop-video",
        description="Replace the background of a video with the Backdrop matting service.",
        epilog="Exit codes: 0 ok, 1 failed, 2 usage error, 3 the work folder OUTPUT.partial/ is not "
        "one this client made, 130 interrupted. A stopped or failed run keeps its frames in "
        "OUTPUT.partial/ (with ffmpeg): the same command again goes on from there, --restart "
        "discards them. Start the services with `make serve`.",
    )
    p.add_argument("input", type=Path, help="the subject video; - reads raw frames from standard "
                   "input (with --input-size)")
    p.add_argument("output", type=Path, nargs="?",
                   help="the result: .mp4 (H.264), .mov, .mkv, .webm; with --transparent .mov "
                   "(ProRes 4444) or .webm (VP9 alpha); - writes raw frames to standard output "
                   "(--pix-fmt; bgra/rgba with --transparent), each as soon as it is done")
    add_server_argument(p, DEFAULT_SERVER)
    bg = p.add_mutually_exclusive_group()
    bg.add_argument("--background", type=Path, metavar="FILE",
                    help="background image, or video (.mp4, .mov, .mkv, .webm, ...)")
    bg.add_argument("--color", type=arg(parse_color, keep_text=True), metavar="HEX|NAME",
                    help="background colour: 1e88e5, #fff, skyblue")
    bg.add_argument("--gradient", type=arg(parse_gradient), metavar="TOP,BOTTOM",
                    help="vertical gradient background between two colours, e.g. 0d47a1,90caf9")
    bg.add_argument("--transparent", action="store_true",
                    help="no background: OUTPUT keeps alpha (.mov or .webm)")
    p.add_argument("--bg-video-end", choices=("loop", "hold"), default="loop",
                   help="a background video shorter than the subject: loop it or hold its last "
                   "frame (default loop); a longer one is cut to the subject's length")
    p.add_argument("--size", type=arg(parse_video_size), metavar="WxH",
                   help="output size (default: the input's); scaled to cover, centre-cropped")
    p.add_argument("--smooth", type=fraction("smooth", closed_top=False), default=DEFAULT_SMOOTH,
                   metavar="S", help=f"temporal smoothing of alpha on still pixels, 0 (off) to <1 "
                   f"(default {DEFAULT_SMOOTH:g})")
    p.add_argument("--alpha-sequence", type=Path, metavar="DIR",
                   help="also write RGBA PNGs (frame_000000.png, ...) to DIR")
    p.add_argument("--output-alpha-video", type=Path, metavar="FILE",
                   help="also write a video with alpha: FILE.mov (ProRes 4444) or FILE.webm (VP9)")
    p.add_argument("--jobs", type=int, default=4, help="frames in flight (default 4)")
    p.add_argument("--max-frames", type=int, default=None, help="stop after N frames")
    p.add_argument("--no-audio", action="store_true", help="do not copy the input's audio")
    p.add_argument("--writer", choices=("auto", "ffmpeg", "opencv"), default="auto",
                   help="encoder: ffmpeg (H.264, audio) when installed, else OpenCV (mp4v)")
    p.add_argument("--crf", type=int, default=18, help="H.264 quality 0..51, lower is better")
    p.add_argument("--restart", action="store_true",
                   help="discard the unfinished earlier run of this job (NAME.EXT.partial/) "
                   "instead of resuming it")
    add_subject_arguments(p)  # --model-size not given: the job fills in VIDEO_MODEL_SIZE
    p.add_argument("--keyframe-interval", type=int, default=None, metavar="K",
                   help="run the person model on every K-th frame and carry its matte along the "
                   "motion to the frames between, each refined against its own colours (default: 1 "
                   "with the selfie segmenter, the people model the client picks when the first frame "
                   f"shows a person and the service has it; {SLOW_MODEL_INTERVAL} with the service's own "
                   "model, MODNet; a frame that moved too much gets the model anyway)")
    p.add_argument("--input-size", type=arg(parse_video_size), metavar="WxH",
                   help="with INPUT -: the raw frames' size, as ffmpeg sends them (-s WxH)")
    p.add_argument("--pix-fmt", choices=PIXEL_FORMATS, default="bgr24",
                   help="with INPUT or OUTPUT -: raw pixel format (default bgr24)")
    p.add_argument("--input-fps", type=float, default=30.0,
                   help="with INPUT -: the frames' rate, for a background video (default 30)")
    p.add_argument("--timeout", type=float, default=120.0, help="seconds per frame (default 120)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.add_argument("-v", "--verbose", action="store_true", help="log more")
    return p


def parse_gradient(text: str) -> tuple[str, str]:
    """``TOP,BOTTOM`` colours (hex or CSS names) -> the two colour strings, checked."""
    parts = [p.strip() for p in text.split(",")]
    if len(parts) != 2:
        raise ValueError(f"bad gradient {text!r}: give two colours, TOP,BOTTOM (0d47a1,90caf9)")
    for part in parts:
        parse_color(part)
    return parts[0], parts[1]


def job_from_args(args: argparse.Namespace) -> VideoJob:
    """A :class:`VideoJob` from parsed arguments."""
    return VideoJob(
        input=args.input, output=args.output, background=args.background, color=args.color,
        gradient=args.gradient, transparent=args.transparent, bg_video_end=args.bg_video_end, size=args.size,
        smooth=args.smooth, alpha_sequence=args.alpha_sequence,
        alpha_video=args.output_alpha_video, jobs=args.jobs, max_frames=args.max_frames,
        audio=not args.no_audio, writer=args.writer, crf=args.crf,
        segmentation=segmentation_options(args), keyframe_interval=args.keyframe_interval,
        server=args.server, timeout=args.timeout, restart=args.restart,
        input_size=args.input_size, pix_fmt=args.pix_fmt, input_fps=args.input_fps,
    )


def main(argv: list[str] | None = None) -> int:
    """Run the video CLI; returns the exit code."""
    parser = build_parser()
    args = parse_command_line(parser, argv)
    try:
        with logging_redirect_tqdm():
            result = process_video(job_from_args(args), progress=not args.quiet)
    except UsageError as exc:
        parser.print_usage(sys.stderr)
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except NotOurFolder as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except (MattingError, VideoError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("interrupted; the frames done are kept (see above): run the same command again "
              "to go on from there", file=sys.stderr)
        return EXIT_INTERRUPTED
    for path in result.outputs:
        print(path, file=sys.stderr if result.writer == "pipe" else sys.stdout)
    resumed = f" (resumed after {result.resumed_from})" if result.resumed_from else ""
    print(f"{result.frames} frames{resumed}, {result.size[0]}x{result.size[1]} at {result.fps:g} fps, "
          f"{result.frames_per_second:.2f} frames/s, writer {result.writer}, "
          f"audio {'copied' if result.audio else 'none'}", file=sys.stderr)
    return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

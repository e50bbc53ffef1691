"""``backdrop-video`` / ``python -m client.video``: replace the background of a video
(:func:`process_video` runs a :class:`VideoJob`; its command line is :mod:`client.video_cli`).

Usage::

    python -m client.video talk.mp4 out.mp4 --color "#1e88e5"
    python -m client.video talk.mp4 out.mp4 --gradient 0d47a1,90caf9 --size 320x240
    python -m client.video talk.mp4 out.mp4 --background beach.jpg --smooth 0   # no smoothing
    python -m client.video talk.mp4 out.mp4 --background clouds.mp4 --bg-video-end hold
    python -m client.video talk.mp4 cutout.mov --transparent           # ProRes 4444 with alpha
    python -m client.video talk.mp4 out.mp4 --color white --alpha-sequence frames/

How it works: frames are decoded with OpenCV, sent to the matting service (``--jobs``
requests in flight, a bounded queue, results taken in order), each answered as a
transparent RGBA image (decontaminated foreground colours + alpha; uncompressed TIFF from a
service on this machine, PNG elsewhere: :mod:`contract.transport`). The people model runs at
:data:`VIDEO_MODEL_SIZE` px for video (``--model-size``; the service refines the edge at full
resolution), which is faster and steadier than its photo size. The client smooths alpha over
time on still pixels (``--smooth``, :data:`DEFAULT_SMOOTH`; see :mod:`client.temporal`),
composites the subject over the background itself (in linear light) and pipes the frames to
the encoder. The people model is chosen once per video from the first frame
(:mod:`client.video_model`): MediaPipe's selfie segmenter on every frame when it shows a person
(a few ms a frame; the service refines its edge at full resolution), else the service's own
model on every third frame (``--keyframe-interval``), the frames between getting the
keyframe's matte carried along the motion, refined against their own colours without the
segmentation hop (:mod:`client.motion`). The service estimates the subject's colour the
fast way (``foreground=fast``).
Requests in flight overlap segmentation and matting: each matting worker serves
``BACKDROP_MATTING_THREADS`` requests at once (one waits for the segmentation service while
another is being matted) and the segmentation service runs ``BACKDROP_SEGMENTATION_THREADS``
side by side (bench/video_throughput.py measures the whole stack against RVM).

Output: the input's frame rate and size (or ``--size WxH``: scaled to cover, centre-cropped).
With the ffmpeg binary of ``imageio-ffmpeg`` (installed with the package): H.264 MP4
(``yuv420p``, plays everywhere; ``.webm`` gives VP9) with the input's audio (re-encoded to
AAC/Opus). Without it: OpenCV's ``mp4v`` MPEG-4, no audio. Alpha for editors: a folder of
RGBA PNGs (``--alpha-sequence DIR``) and/or a video with alpha (``--output-alpha-video``
FILE.mov = ProRes 4444, FILE.webm = VP9 with alpha); ``--transparent`` writes OUTPUT itself
that way.

Failure and resume (with ffmpeg): the videos are written as pieces in ``NAME.EXT.partial/``
beside the first output, with an index of the frames done (:mod:`client.video_resume`).
An error, Ctrl-C or SIGTERM keeps every frame finished (Ctrl-C: no new frame is sent, those
in flight are written; a second Ctrl-C stops at once); running the same command again goes
on from there without redoing them, and the result equals that of an uninterrupted run.
``--restart`` discards an unfinished run; other options than the unfinished run's are
refused (never mixed). Nothing at ``NAME.EXT`` until the whole video is done. Without
ffmpeg (OpenCV's writer) a failed job keeps its part as ``NAME.partial.EXT``, and is not
resumable.

Live (``INPUT`` and ``OUTPUT`` ``-``): raw frames in on standard input, composited raw frames
out on standard output, each written as soon as it is done (:mod:`client.video_pipe`).

Exit codes: 0 done, 1 failed (service, video or encoder error), 2 usage error, 3 the work
folder ``NAME.EXT.partial/`` is not one this client made, 130 Ctrl-C.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import logging
import signal
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError
from tqdm import tqdm

from contract.parse import parse_color
from contract.vocab import SegmentationOptions

from . import video_model
from .api import MattingClient, default_server
from .compositing import composite, fit_cover, solid, to_rgba8, vertical_gradient
from .files import same_file
from .motion import FrameTask, KeyframeMatter, Reuse
from .pipeline import ordered_map
from .temporal import AlphaSmoother
from .video_io import (
    ALPHA_EXTS,
    OPAQUE_EXTS,
    VIDEO_EXTS,
    OpenCVWriter,
    PngSequenceWriter,
    StillBackground,
    VideoBackground,
    VideoError,
    VideoReader,
    ffmpeg_exe,
    has_audio,
)
from .video_matte import FrameMatter, MattedFrame
from .video_model import ModelChoice
from .video_pipe import RawFrameReader, RawFrameWriter
from .video_resume import (
    CHECKPOINT_FRAMES,
    Pieces,
    Progress,
    differences,
    drop_old_states,
    file_identity,
    join,
    load_state,
    remove_folder,
    save_state,
    work_folder,
)

#: The people model's working size for video frames, px (the photo default is 512): at 384
#: a 640 x 480 frame costs 0.6x the model time, and its matte flickers less (bench/video_flicker.py).
VIDEO_MODEL_SIZE = 384
#: ``--smooth``'s default strength (client.temporal). Chosen on asl_again for the selfie
#: segmenter, whose raw matte flickers more than MODNet's (0.50 against 0.33 on asl_again's
#: still pixels): 0.9 / 0.95 / 0.97 gave flicker 0.120 / 0.090 / 0.075 and 25 / 46 / 62 pixels
#: per frame more than 0.2 off the raw matte (2026-12-06); 0.95 halves the gap to RVM without
#: the trail of 0.97. The other dev clips are the report (docs/video.md).
DEFAULT_SMOOTH = 0.95

log = logging.getLogger(__name__)

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


@dataclass
class VideoJob:
    """What to do with one video (the CLI's options).

    Attributes:
        input: the subject video.
        output: the composited video (``.mp4``, ``.mov``, ``.mkv``, ``.webm``); with
            ``transparent`` a video with alpha (``.mov`` ProRes 4444 / ``.webm`` VP9).
            ``None`` when only alpha outputs are wanted.
        background: an image, or a video (by extension, :data:`VIDEO_EXTS`).
        color: a background colour (hex or CSS name, opaque).
        gradient: a vertical gradient background, ``(top colour, bottom colour)``.
        transparent: keep alpha in ``output`` instead of compositing.
        bg_video_end: a background video shorter than the subject: ``loop`` or ``hold``.
        size: output ``(width, height)``; ``None`` keeps the input's.
        smooth: temporal smoothing strength in ``[0, 1)``; 0 is off.
        alpha_sequence: folder for RGBA PNGs (``frame_000000.png``, ...).
        alpha_video: a ``.mov`` (ProRes 4444) or ``.webm`` (VP9 alpha) with alpha.
        jobs: requests in flight.
        max_frames: stop after this many frames (``None``: all).
        audio: copy the input's audio (ffmpeg writer only).
        writer: ``auto`` (ffmpeg when installed, else OpenCV), ``ffmpeg`` or ``opencv``.
        crf: H.264 quality, 0..51 (18: visually lossless).
        segmentation: what every frame's request passes on to the segmentation service
            (:class:`~contract.vocab.SegmentationOptions`: classes, score threshold,
            instances, subject, backend, model size; ``None`` = the service's default).
            Its ``backend`` is the model for every frame (``None``: chosen as
            :mod:`client.video_model` says); its ``model_size`` is the people model's working
            size, :data:`VIDEO_MODEL_SIZE` where it names none (the job fills it in).
        keyframe_interval: the full path (person model, refinement) on every this many
            frames; the frames between get the keyframe's matte carried along the motion,
            refined against their own colours (:mod:`client.motion`); 1 = every frame;
            ``None``: chosen with the people model (:mod:`client.video_model`).
        server: matting service URL (``None``: ``$BACKDROP_SERVER`` or the default).
        timeout: seconds to wait for each frame's answer.
        restart: discard an unfinished earlier run of this job instead of resuming it.
        input_size, pix_fmt, input_fps: with ``input`` ``-``, the raw frames' ``(width,
            height)``, pixel format (``bgr24`` or ``rgb24``, also the output's) and rate
            (:mod:`client.video_pipe`).
    """

    input: Path
    output: Path | None
    background: Path | None = None
    color: str | None = None
    gradient: tuple[str, str] | None = None
    transparent: bool = False
    bg_video_end: str = "loop"
    size: tuple[int, int] | None = None
    smooth: float = DEFAULT_SMOOTH
    alpha_sequence: Path | None = None
    alpha_video: Path | None = None
    jobs: int = 4
    max_frames: int | None = None
    audio: bool = True
    writer: str = "auto"
    crf: int = 18
    segmentation: SegmentationOptions = SegmentationOptions()
    keyframe_interval: int | None = None
    server: str | None = None
    timeout: float = 120.0
    restart: bool = False
    input_size: tuple[int, int] | None = None
    pix_fmt: str = "bgr24"
    input_fps: float = 30.0

    def __post_init__(self) -> None:
        if self.segmentation.model_size is None:
            self.segmentation = dataclasses.replace(self.segmentation, model_size=VIDEO_MODEL_SIZE)


def _seen(matted: MattedFrame) -> tuple[str, str]:
    """What the first frame's answer says: ``(X-Segmentation-Subject, X-Segmentation-Backend)``."""
    return matted.subject, matted.backend


def is_pipe(path: Path | None) -> bool:
    """Whether ``path`` is ``-``: standard input (INPUT) or standard output (OUTPUT)."""
    return path is not None and str(path) == "-"


@dataclass
class VideoResult:
    """What :func:`process_video` did.

    Attributes:
        frames: frames in the outputs (those of earlier runs of a resumed job included).
        resumed_from: frames an earlier, interrupted run had done (0: a fresh job).
        seconds: wall time of the whole run.
        fps: the input's (and output's) frame rate.
        size: output ``(width, height)``.
        no_subject_frames: frames in which the service found no subject (all background).
        writer: ``ffmpeg``, ``opencv`` or ``none``.
        audio: whether audio was copied.
        outputs: files and folders written.
        timing_ms: mean per frame of the service's stages (``segmentation``, ``matting``,
            ...; from ``Server-Timing``) and of ``request`` (the client's wall time per call),
            over this run's frames.
        carried_frames: frames of this run refined from a keyframe's carried matte.
        fallback_frames: frames of this run between keyframes that got the full path
            (large motion, something new in the picture, or a keyframe without a subject).
        model: the people model and keyframe interval the run used, and why
            (:func:`client.video_model.choose`); ``None`` before the first frame.
    """

    frames: int = 0
    resumed_from: int = 0
    seconds: float = 0.0
    fps: float = 0.0
    size: tuple[int, int] = (0, 0)
    no_subject_frames: int = 0
    writer: str = "none"
    audio: bool = False
    outputs: list[Path] = field(default_factory=list)
    timing_ms: dict[str, float] = field(default_factory=dict)
    carried_frames: int = 0
    fallback_frames: int = 0
    model: ModelChoice | None = None

    @property
    def frames_per_second(self) -> float:
        """Processing speed of this run (frames / wall second)."""
        done = self.frames - self.resumed_from
        return done / self.seconds if self.seconds > 0 else 0.0


class UsageError(ValueError):
    """The job's options cannot work together (exit code 2)."""


def validate(job: VideoJob, exe: str | None) -> None:
    """Check a job before any work; raise :class:`UsageError` if it cannot run."""
    try:
        _validate(job, exe)
    except UsageError:
        raise
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _validate(job: VideoJob, exe: str | None) -> None:
    given = [x for x in (job.background, job.color, job.gradient) if x is not None]
    if len(given) + int(job.transparent) > 1:
        raise UsageError("choose one of --background, --color, --gradient and --transparent")
    if job.output is None and job.alpha_sequence is None and job.alpha_video is None:
        raise UsageError("nothing to write: give OUTPUT, --alpha-sequence or --output-alpha-video")
    if job.bg_video_end not in ("loop", "hold"):
        raise UsageError("--bg-video-end must be loop or hold")
    if not 0.0 <= job.smooth < 1.0:
        raise UsageError("--smooth must be in [0, 1)")
    if job.keyframe_interval is not None and job.keyframe_interval < 1:
        raise UsageError(f"--keyframe-interval must be 1 or more (1: the person model on every frame), "
                         f"got {job.keyframe_interval}")
    if job.jobs < 1:
        raise UsageError("--jobs must be at least 1")
    if job.max_frames is not None and job.max_frames < 1:
        raise UsageError("--max-frames must be at least 1")
    if job.writer not in ("auto", "ffmpeg", "opencv"):
        raise UsageError("--writer must be auto, ffmpeg or opencv")
    if job.writer == "ffmpeg" and exe is None:
        raise UsageError("--writer ffmpeg: the ffmpeg binary is missing (pip install imageio-ffmpeg)")
    if is_pipe(job.input) and job.input_size is None:
        raise UsageError("INPUT - reads raw frames from standard input: give their size with "
                         "--input-size WxH (and --pix-fmt, --input-fps as ffmpeg sends them)")
    if not is_pipe(job.input) and not job.input.is_file():
        raise UsageError(f"INPUT {job.input} does not exist")
    for colour in ([job.color] if job.color else []) + list(job.gradient or []):
        if parse_color(colour)[3] != 255:
            raise UsageError("a video has no transparency: give opaque colours (6 hex digits)")
    if job.background is not None and not job.background.is_file():
        raise UsageError(f"--background {job.background} does not exist")
    needs_ffmpeg = []
    if is_pipe(job.output):
        if not (given or job.transparent):
            raise UsageError("OUTPUT - writes raw frames: give --background, --color or --gradient "
                             "(or --transparent for frames with alpha)")
    elif job.output is not None:
        suffix = job.output.suffix.lower()
        if same_file(job.input, job.output):
            raise UsageError("OUTPUT is the input video: it is never overwritten")
        if job.transparent:
            if suffix not in ALPHA_EXTS:
                raise UsageError("--transparent needs OUTPUT .mov (ProRes 4444) or .webm (VP9 alpha)")
            needs_ffmpeg.append("--transparent")
        else:
            if not given:
                raise UsageError(f"{suffix or 'this'} video cannot hold transparency: give "
                                 "--background, --color or --gradient, or --transparent with "
                                 "a .mov/.webm")
            if suffix not in OPAQUE_EXTS:
                raise UsageError(f"cannot write {suffix!r}: name OUTPUT .mp4, .mov, .mkv or .webm")
            if exe is None and suffix == ".webm":
                raise UsageError("OpenCV cannot write .webm here: name OUTPUT .mp4 (or install "
                                 "imageio-ffmpeg)")
    if job.alpha_video is not None:
        if job.alpha_video.suffix.lower() not in ALPHA_EXTS:
            raise UsageError("--output-alpha-video must be .mov (ProRes 4444) or .webm (VP9 alpha)")
        needs_ffmpeg.append("--output-alpha-video")
    if needs_ffmpeg and (exe is None or job.writer == "opencv"):
        raise UsageError(f"{needs_ffmpeg[0]} needs ffmpeg (pip install imageio-ffmpeg); "
                         "OpenCV cannot write alpha")


def load_background(job: VideoJob, size: tuple[int, int], fps) -> StillBackground | VideoBackground | None:
    """The background source of ``job`` at ``size``; ``None`` when transparent."""
    if job.color is not None:
        r, g, b, _ = parse_color(job.color)
        return StillBackground(solid((b, g, r), size))
    if job.gradient is not None:
        (r0, g0, b0, _), (r1, g1, b1, _) = (parse_color(c) for c in job.gradient)
        return StillBackground(vertical_gradient((b0, g0, r0), (b1, g1, r1), size))
    if job.background is None:
        return None
    if job.background.suffix.lower() in VIDEO_EXTS:
        return VideoBackground(job.background, size, fps, end=job.bg_video_end)
    try:
        with Image.open(job.background) as img:
            rgb = np.asarray(ImageOps.exif_transpose(img).convert("RGB"))
    except (OSError, UnidentifiedImageError) as exc:
        raise VideoError(f"cannot read the background image {job.background}: {exc}") from exc
    return StillBackground(fit_cover(np.ascontiguousarray(rgb[..., ::-1]), size))


def process_video(job: VideoJob, *, client: MattingClient | None = None,
                  progress: bool = True) -> VideoResult:
    """Run ``job``: read, matte (``job.jobs`` in flight), smooth, composite, encode.

    With ffmpeg the job is resumable (:mod:`client.video_resume`): a job stopped by an
    error, Ctrl-C or SIGTERM keeps its work in ``NAME.EXT.partial/`` and the same job run
    again goes on from the first frame not done. Without ffmpeg (OpenCV's writer) it is
    not: the part written is kept as ``NAME.partial.EXT``.

    Args:
        job: the options.
        client: a client to use (else one for ``job.server`` is made and closed).
        progress: show a tqdm bar (frames, frames per second, time left) on stderr.

    Returns:
        a :class:`VideoResult`.

    Raises:
        UsageError: the job is inconsistent (a :class:`ValueError`), or an unfinished job
            with other options is in the way.
        VideoError: a video cannot be read or written.
        MattingError: the service failed for a frame (after the client's one retry).
        KeyboardInterrupt: Ctrl-C or SIGTERM (after the frame in progress was kept).
    """
    exe = None if job.writer == "opencv" else ffmpeg_exe()
    validate(job, exe)
    started = time.perf_counter()
    result = VideoResult()
    with contextlib.ExitStack() as stack:
        if is_pipe(job.input):
            assert job.input_size is not None  # validate() checked it
            reader = stack.enter_context(RawFrameReader(sys.stdin.buffer, job.input_size, job.pix_fmt,
                                                        Fraction(job.input_fps).limit_denominator(1001)))
        else:
            reader = stack.enter_context(VideoReader(job.input))
        size = job.size or reader.size
        result.fps, result.size = float(reader.fps), size
        background = load_background(job, size, reader.fps)
        if background is not None:
            stack.callback(background.close)
        if client is None:
            client = stack.enter_context(MattingClient(job.server or default_server(),
                                                       timeout=job.timeout, pool_size=job.jobs))
        client.ready()  # fail fast, with the service's own words, before any file is made
        run = _Run(job, reader, size, background, client, stack, result, progress)
        if is_pipe(job.output):
            run.piped()
        elif exe is None:
            run.direct()
        else:
            run.resumable(exe)
    result.seconds = time.perf_counter() - started
    done_here = max(1, result.frames - result.resumed_from)
    result.timing_ms = {k: v / done_here for k, v in run.totals.items()}
    if result.no_subject_frames:
        log.warning("%d of %d frames had no subject (written as background only)",
                    result.no_subject_frames, result.frames)
    return result


def fingerprint(job: VideoJob) -> dict[str, object]:
    """What decides a job's frames and files: a resumed job must have the same (its
    ``jobs``, ``server``, ``timeout`` and ``writer`` may change)."""
    def where(path: Path | None) -> str | None:
        return None if path is None else str(path.resolve())

    return {
        "input": file_identity(job.input), "output": where(job.output),
        "background": file_identity(job.background), "color": job.color,
        "gradient": list(job.gradient) if job.gradient else None,
        "transparent": job.transparent, "bg_video_end": job.bg_video_end,
        "size": list(job.size) if job.size else None, "smooth": job.smooth,
        "alpha_sequence": where(job.alpha_sequence), "alpha_video": where(job.alpha_video),
        "max_frames": job.max_frames, "audio": job.audio, "crf": job.crf,
        "keyframe_interval": job.keyframe_interval, **dataclasses.asdict(job.segmentation),
    }


#: The CLI options behind :func:`fingerprint`'s keys, for messages.
OPTION_NAMES = {
    "input": "INPUT (or the file changed)", "output": "OUTPUT",
    "background": "--background (or the file changed)", "color": "--color",
    "gradient": "--gradient", "transparent": "--transparent", "bg_video_end": "--bg-video-end",
    "size": "--size", "smooth": "--smooth", "alpha_sequence": "--alpha-sequence",
    "alpha_video": "--output-alpha-video", "max_frames": "--max-frames", "audio": "--no-audio",
    "crf": "--crf", "classes": "--classes", "score_threshold": "--score-threshold",
    "instances": "--instances", "backend": "--backend", "model_size": "--model-size",
    "keyframe_interval": "--keyframe-interval", "subject": "--subject",
}


class _StopRequests:
    """While active (main thread only), Ctrl-C and SIGTERM ask the job to stop after the
    frame in progress instead of interrupting it; a second one stops at once."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: dict[int, object] = {}

    def __enter__(self) -> _StopRequests:
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                self._previous[signum] = signal.signal(signum, self._on_signal)
        return self

    def _on_signal(self, signum: int, frame: object) -> None:  # noqa: ARG002
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        log.warning("stopping after the frame in progress (press Ctrl-C again to stop at once)")

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)  # type: ignore[arg-type]


class _Run:
    """One run of :func:`process_video` once the input, background and client are open."""

    def __init__(self, job: VideoJob, reader: VideoReader, size: tuple[int, int],
                 background: StillBackground | VideoBackground | None, client: MattingClient,
                 stack: contextlib.ExitStack, result: VideoResult, progress: bool) -> None:
        self.job, self.reader, self.size, self.background = job, reader, size, background
        self.client, self.stack, self.result, self.progress = client, stack, result, progress
        self.smoother = AlphaSmoother(job.smooth) if job.smooth > 0 else None
        self.totals: dict[str, float] = {}
        total = reader.frame_count
        if job.max_frames is not None:
            total = min(total, job.max_frames) if total else job.max_frames
        self.total = total or None

    def frames(self, skip: int, stop: _StopRequests | None = None
               ) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
        """``(index, fg, alpha)`` of each frame from ``skip`` on, matted and smoothed; the
        frames before ``skip`` are decoded, not sent. Once ``stop`` is requested no new
        frame is sent: the frames whose request is under way still come out, those queued
        behind them (``--jobs`` and the read-ahead) are dropped, and the output ends there."""
        job = self.job
        options = job.segmentation
        decoded = self.reader.frames(job.max_frames)
        first = next(decoded, None)
        if first is None:
            return
        decoded = itertools.chain([first], decoded)
        choice = video_model.choose(
            backend=options.backend, subject=options.subject, classes=options.classes,
            interval=job.keyframe_interval,
            loaded=lambda: video_model.loaded_backends(self.client.ready()),
            first_frame=lambda: _seen(FrameMatter(self.client, options)(fit_cover(first, self.size))))
        self.result.model = choice
        log.info("people model: %s, keyframe interval %d (%s)", choice.backend or "the service's",
                 choice.keyframe_interval, choice.reason)
        matter = FrameMatter(self.client, dataclasses.replace(options, backend=choice.backend))
        keyed = KeyframeMatter(matter, matter.refine, Reuse(interval=choice.keyframe_interval))
        warm_from = keyed.last_keyframe(skip)
        warm_frame = None
        for index, frame in enumerate(itertools.islice(decoded, skip)):
            if index == warm_from:
                warm_frame = frame  # a resumed job's frames carry this keyframe's matte

        def todo() -> Iterator[FrameTask]:
            if warm_frame is not None and (task := keyed.warm(skip, fit_cover(warm_frame, self.size))):
                yield task
            for index, frame in enumerate(decoded, start=skip):
                if stop is not None and stop.requested:
                    return  # no new frame goes out; those in flight still come back
                yield keyed.plan(index, fit_cover(frame, self.size))

        def call(task: FrameTask) -> tuple[bool, MattedFrame] | None:
            if stop is not None and stop.requested:
                return None  # queued, not started: not sent (None ends the output below)
            return task.prior_only, keyed(task)

        matted = self.stack.enter_context(contextlib.closing(ordered_map(call, todo(), job.jobs)))
        bar = self.stack.enter_context(tqdm(total=self.total, initial=skip, unit="frame",
                                            disable=not self.progress, dynamic_ncols=True,
                                            desc=job.input.name))
        index = skip - 1
        for done in matted:
            if done is None:
                # The pool starts tasks in order and a stop is never withdrawn, so every
                # task after a dropped one was dropped too.
                return
            prior_only, m = done
            if prior_only:
                continue
            index += 1
            self.result.carried_frames, self.result.fallback_frames = keyed.carried, keyed.fallbacks
            fg, alpha = (m.fg, m.alpha) if self.smoother is None else self.smoother(m.frame, m.fg, m.alpha)
            self.result.no_subject_frames += int(m.no_subject)
            for stage, ms in m.timing_ms.items():
                self.totals[stage] = self.totals.get(stage, 0.0) + ms
            yield index, fg, alpha
            bar.update(1)

    def opaque(self, index: int, fg: np.ndarray, alpha: np.ndarray) -> np.ndarray:
        assert self.background is not None
        return composite(fg, alpha, self.background.frame(index))

    def piped(self) -> None:
        """Raw frames to standard output, each written and flushed once it is done
        (:mod:`client.video_pipe`); not resumable (a stream cannot be sought)."""
        job, result = self.job, self.result
        out = self.stack.enter_context(RawFrameWriter(sys.stdout.buffer, job.pix_fmt))
        result.writer = "pipe"
        for index, fg, alpha in self.frames(0):
            out.write(to_rgba8(fg, alpha) if job.transparent else self.opaque(index, fg, alpha))
            result.frames += 1

    def direct(self) -> None:
        """OpenCV's writer (no ffmpeg): one file per output, not resumable."""
        job, result = self.job, self.result
        main_out = None
        if job.output is not None:
            main_out = self.stack.enter_context(OpenCVWriter(job.output, self.size, self.reader.fps))
            log.info("ffmpeg not installed: writing mp4v with OpenCV, without audio or resume")
            result.writer = "opencv"
            result.outputs.append(job.output)
        seq = None
        if job.alpha_sequence is not None:
            seq = self.stack.enter_context(PngSequenceWriter(job.alpha_sequence))
            result.outputs.append(job.alpha_sequence)
        for index, fg, alpha in self.frames(0):
            if main_out is not None:
                main_out.write(self.opaque(index, fg, alpha))
            if seq is not None:
                seq.write(to_rgba8(fg, alpha))
            result.frames += 1
        if result.frames == 0:
            raise VideoError(f"{job.input} has no frames OpenCV can decode")

    def resumable(self, exe: str) -> None:
        """ffmpeg pieces in a work folder (:mod:`client.video_resume`), joined at the end."""
        job, result = self.job, self.result
        primary = job.output or job.alpha_video or job.alpha_sequence
        assert primary is not None  # validate() checked it
        folder = work_folder(primary)
        if job.restart:
            remove_folder(folder)
        wanted = fingerprint(job)
        progress = Progress.load(folder)
        if progress is not None and differences(progress.options, wanted):
            names = ", ".join(OPTION_NAMES[k] for k in differences(progress.options, wanted))
            raise UsageError(f"{folder} holds an unfinished job with other options ({names}); "
                             "run the same command as before to finish it, or add --restart "
                             "to discard it")
        if progress is None:
            progress = Progress(wanted)
        elif progress.frames:
            log.warning("resuming %s after %d frames (%s)", primary.name, progress.frames, folder)
        folder.mkdir(parents=True, exist_ok=True)
        done = result.resumed_from = progress.frames
        if self.smoother is not None and done:
            self.smoother.restore(load_state(folder, progress.state, self.size))
        outputs: dict[str, tuple[Path, bool]] = {}
        if job.output is not None:
            outputs["main"] = (job.output, job.transparent)
        if job.alpha_video is not None:
            outputs["alpha"] = (job.alpha_video, True)
        pieces = Pieces(folder, outputs, self.size, self.reader.fps, exe, job.crf, progress)
        seq = None
        if job.alpha_sequence is not None:
            seq = self.stack.enter_context(PngSequenceWriter(job.alpha_sequence, start=done))

        def checkpoint() -> None:
            if pieces.frames == 0:
                return
            progress.frames += pieces.frames
            pieces.commit()
            state = None if self.smoother is None else self.smoother.state()
            progress.state = save_state(folder, progress.frames, state)
            progress.save(folder)
            drop_old_states(folder, keep=progress.state)

        stop = self.stack.enter_context(_StopRequests())
        try:
            for index, fg, alpha in self.frames(done, stop):
                if "main" in outputs:
                    pieces.write("main", to_rgba8(fg, alpha) if job.transparent
                                 else self.opaque(index, fg, alpha))
                if "alpha" in outputs or seq is not None:
                    bgra = to_rgba8(fg, alpha)
                    if "alpha" in outputs:
                        pieces.write("alpha", bgra)
                    if seq is not None:
                        seq.write(bgra)
                pieces.frames += 1
                if pieces.frames >= CHECKPOINT_FRAMES:
                    checkpoint()
            checkpoint()
            if stop.requested:
                raise KeyboardInterrupt
        except BaseException as exc:
            if pieces.whole(pieces.frames) and not isinstance(exc, VideoError):
                checkpoint()  # stopped between two frames: nothing is lost
            else:
                pieces.discard()  # stopped inside a frame's writes: redo this piece
                progress.save(folder)
            if progress.frames:
                log.warning("stopped after %d frames; the work is kept in %s: run the same "
                            "command again to go on from there", progress.frames, folder)
            else:
                remove_folder(folder)
            raise
        result.frames = progress.frames
        if result.frames == 0:
            remove_folder(folder)
            raise VideoError(f"{job.input} has no frames OpenCV can decode")
        audio_from = job.input if job.audio and has_audio(job.input, exe) else None
        seconds = result.frames / float(self.reader.fps)
        for key, (path, alpha) in outputs.items():
            join(folder, progress.pieces[key], path, exe, alpha=alpha, audio_from=audio_from,
                 seconds=seconds)
            result.outputs.append(path)
        if seq is not None:
            result.outputs.append(job.alpha_sequence)
        result.writer = "ffmpeg"
        result.audio = audio_from is not None and bool(outputs)
        remove_folder(folder)
        log.info("wrote %s (%d frames)", ", ".join(map(str, result.outputs)), result.frames)


if __name__ == "__main__":  # pragma: no cover
    from .video_cli import main

    sys.exit(main())

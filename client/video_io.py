"""Video files in and out for the video client: readers, backgrounds, writers.

Frames are ``H x W x 3`` uint8 **BGR** (alpha frames ``H x W x 4`` BGRA), as OpenCV
reads them. Reading always uses OpenCV. Writing uses the ffmpeg binary shipped by the
``imageio-ffmpeg`` package when it is installed (``pip install backdrop[video]``): raw
frames are piped to it and encoded as H.264 (``.mp4``/``.mov``/``.mkv``, ``yuv420p``, plays
everywhere) or VP9 (``.webm``), with the input's audio re-encoded alongside (AAC / Opus).
Without it, OpenCV's ``VideoWriter`` writes MPEG-4 Part 2 (``mp4v``) without audio.

Every writer encodes into ``NAME.partial.EXT`` and renames it to ``NAME.EXT`` only when the
whole video was written and the encoder closed cleanly. On an error or Ctrl-C the encoder
is still closed (ffmpeg finishes the container, so the part written so far plays) and the
file is **kept as ``NAME.partial.EXT``** so that it never looks complete; it is removed
when not a single frame had been written.
"""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import tempfile
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from types import TracebackType

import cv2
import numpy as np

from .closing import Closing
from .compositing import fit_cover
from .files import atomic_write

log = logging.getLogger(__name__)

#: Extensions treated as videos when given as a background.
VIDEO_EXTS = frozenset({".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".wmv"})
#: Containers the composited (opaque) output may use.
OPAQUE_EXTS = frozenset({".mp4", ".m4v", ".mov", ".mkv", ".webm"})
#: Containers of videos with an alpha channel: ProRes 4444 (.mov) and VP9 with alpha (.webm).
ALPHA_EXTS = frozenset({".mov", ".webm"})


class VideoError(RuntimeError):
    """A video cannot be read or written."""


def ffmpeg_exe() -> str | None:
    """Path of the ffmpeg binary from ``imageio-ffmpeg`` (or ``$IMAGEIO_FFMPEG_EXE``), or
    ``None`` when it is not installed."""
    try:
        import imageio_ffmpeg
    except ImportError:
        return None
    try:
        return imageio_ffmpeg.get_ffmpeg_exe()
    except RuntimeError:
        return None


def has_audio(path: Path, exe: str) -> bool:
    """Whether ``path`` has an audio stream (asks ffmpeg to describe the file)."""
    proc = subprocess.run([exe, "-hide_banner", "-i", str(path)], capture_output=True,
                          text=True, errors="replace", timeout=30, check=False)
    return any("Audio:" in line and "Stream #" in line for line in proc.stderr.splitlines())


def as_fraction(fps: float) -> Fraction:
    """A frame rate as a fraction: 29.97002997 -> 30000/1001, 12.0 -> 12."""
    return Fraction(fps).limit_denominator(1001)


class VideoReader(Closing):
    """Frames of a video file, in order, through OpenCV.

    Attributes:
        fps: frames per second (:class:`~fractions.Fraction`).
        size: ``(width, height)``.
        frame_count: the container's frame count (an estimate; 0 when unknown).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        if not path.is_file():
            raise VideoError(f"{path} does not exist or is not a file")
        self._cap = cv2.VideoCapture(str(path))
        if not self._cap.isOpened():
            raise VideoError(f"OpenCV cannot open {path} as a video")
        fps = float(self._cap.get(cv2.CAP_PROP_FPS) or 0.0)
        if not fps > 0:
            log.warning("%s does not state its frame rate; assuming 25 fps", path)
            fps = 25.0
        self.fps = as_fraction(fps)
        self.size = (int(self._cap.get(cv2.CAP_PROP_FRAME_WIDTH)),
                     int(self._cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))
        self.frame_count = max(0, int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0))

    def read(self) -> np.ndarray | None:
        """The next ``H x W x 3`` uint8 BGR frame, or ``None`` at the end."""
        ok, frame = self._cap.read()
        return frame if ok else None

    def frames(self, limit: int | None = None) -> Iterator[np.ndarray]:
        """Yield ``H x W x 3`` uint8 BGR frames, at most ``limit`` of them."""
        count = 0
        while limit is None or count < limit:
            frame = self.read()
            if frame is None:
                return
            count += 1
            yield frame

    def close(self) -> None:
        self._cap.release()


# --- backgrounds -------------------------------------------------------------------------


class StillBackground:
    """The same ``H x W x 3`` uint8 BGR frame behind every frame."""

    def __init__(self, frame: np.ndarray) -> None:
        self._frame = frame

    def frame(self, index: int) -> np.ndarray:  # noqa: ARG002 - same for every index
        return self._frame

    def close(self) -> None:
        """Nothing to release."""


class VideoBackground:
    """Frames of a background video, matched to the subject video by time.

    Subject frame ``i`` (at ``i / subject_fps`` s) gets background frame
    ``floor(i * bg_fps / subject_fps)``. A background longer than the subject is simply
    not read to its end; a shorter one is looped (``end="loop"``) or holds its last frame
    (``end="hold"``), so the subject video is never cut.

    Args:
        path: the background video.
        size: output ``(width, height)``; frames are scaled to cover it and centre-cropped.
        subject_fps: the subject video's frame rate.
        end: ``"loop"`` or ``"hold"``.
    """

    def __init__(self, path: Path, size: tuple[int, int], subject_fps: Fraction,
                 end: str = "loop") -> None:
        if end not in ("loop", "hold"):
            raise ValueError(f"end must be 'loop' or 'hold', not {end!r}")
        self.path, self.size, self.end = path, size, end
        self._reader = VideoReader(path)
        self._ratio = self._reader.fps / subject_fps
        self.length: int | None = None  # known once the end was reached
        self._pos = 0  # index of the next frame the reader returns
        self._last: np.ndarray | None = None

    def _wrap(self, index: int) -> int:
        if self.length is None:
            return index
        return index % self.length if self.end == "loop" else min(index, self.length - 1)

    def _rewind(self) -> None:
        self._reader.close()
        self._reader = VideoReader(self.path)
        self._pos = 0

    def frame(self, index: int) -> np.ndarray:
        """The ``H x W x 3`` uint8 BGR background for subject frame ``index`` (call with
        increasing indices for sequential reading)."""
        target = self._wrap(int(index * self._ratio))
        if target < self._pos - 1:
            self._rewind()
        while self._pos <= target:
            img = self._reader.read()
            if img is None:
                if self._pos == 0:
                    raise VideoError(f"background video {self.path} has no frames")
                self.length = self._pos
                target = self._wrap(target)
                if target < self._pos - 1:
                    self._rewind()
                    continue
                break
            self._last = fit_cover(img, self.size)
            self._pos += 1
        assert self._last is not None
        return self._last

    def close(self) -> None:
        self._reader.close()


# --- writers ---------------------------------------------------------------------------


def partial_path(path: Path) -> Path:
    """Where ``path`` is written until it is complete: ``NAME.partial.EXT``."""
    return path.with_name(f"{path.stem}.partial{path.suffix}")


class _OutputFile:
    """Base of the video writers: the ``.partial`` name, commit or keep on exit."""

    kind = "video"

    def __init__(self, path: Path) -> None:
        self.path = path
        self.tmp = partial_path(path)
        self.frames = 0
        path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            self.tmp.unlink()  # a leftover of an earlier failed run

    def write(self, frame: np.ndarray) -> None:
        raise NotImplementedError

    def _close(self) -> None:
        """Finish the container; raise :class:`VideoError` when the encoder failed."""
        raise NotImplementedError

    def __enter__(self):
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        try:
            self._close()
        except Exception:
            if exc_type is None:
                self._keep_partial()
                raise
            log.exception("closing %s after an error failed", self.tmp)
        if exc_type is None:
            os.replace(self.tmp, self.path)
            log.info("wrote %s (%d frames)", self.path, self.frames)
        else:
            self._keep_partial()

    def _keep_partial(self) -> None:
        if self.frames == 0:
            with contextlib.suppress(FileNotFoundError):
                self.tmp.unlink()
            log.warning("no frame was written; %s removed", self.tmp)
        elif self.tmp.exists():
            log.warning("incomplete output kept as %s (%d frames)", self.tmp, self.frames)


def _codec_args(suffix: str, alpha: bool, crf: int) -> tuple[list[str], list[str]]:
    """(video codec args, audio codec args) for an output extension."""
    if alpha and suffix == ".mov":
        return (["-c:v", "prores_ks", "-profile:v", "4444", "-pix_fmt", "yuva444p10le"],
                ["-c:a", "pcm_s16le"])
    if alpha and suffix == ".webm":
        return (["-c:v", "libvpx-vp9", "-pix_fmt", "yuva420p", "-crf", str(crf + 12), "-b:v", "0",
                 "-row-mt", "1", "-deadline", "good", "-cpu-used", "4", "-auto-alt-ref", "0"],
                ["-c:a", "libopus"])
    if alpha:
        raise VideoError(f"a video with alpha must be .mov (ProRes 4444) or .webm (VP9), not {suffix}")
    if suffix == ".webm":
        return (["-c:v", "libvpx-vp9", "-pix_fmt", "yuv420p", "-crf", str(crf + 12), "-b:v", "0",
                 "-row-mt", "1", "-deadline", "good", "-cpu-used", "4"],
                ["-c:a", "libopus"])
    if suffix in OPAQUE_EXTS:
        video = ["-c:v", "libx264", "-pix_fmt", "yuv420p", "-crf", str(crf), "-preset", "veryfast"]
        if suffix in (".mp4", ".m4v", ".mov"):
            video += ["-movflags", "+faststart"]
        return video, ["-c:a", "aac", "-b:a", "160k"]
    raise VideoError(f"cannot write {suffix!r} videos: use .mp4, .mov, .mkv or .webm")


class FFmpegWriter(_OutputFile):
    """Pipe raw frames to ffmpeg.

    Args:
        path: output file; its extension picks the codec (see module doc).
        size: ``(width, height)`` of the frames written.
        fps: frame rate.
        exe: the ffmpeg binary (:func:`ffmpeg_exe`).
        alpha: frames are BGRA and the output keeps alpha (ProRes 4444 / VP9 alpha).
        audio_from: copy the audio of this file (re-encoded for the container), if any.
        audio_seconds: cut that audio after so many seconds (when only part of the
            video is processed).
        crf: H.264 quality (lower is better; 18 is visually lossless); VP9 uses ``crf+12``.
    """

    def __init__(self, path: Path, size: tuple[int, int], fps: Fraction, exe: str, *,
                 alpha: bool = False, audio_from: Path | None = None,
                 audio_seconds: float | None = None, crf: int = 18) -> None:
        super().__init__(path)
        self.kind = "ffmpeg"
        self.size = size
        self.channels = 4 if alpha else 3
        video_args, audio_args = _codec_args(path.suffix.lower(), alpha, crf)
        w, h = size
        cmd = [exe, "-hide_banner", "-loglevel", "error", "-nostdin", "-y",
               "-f", "rawvideo", "-pix_fmt", "bgra" if alpha else "bgr24",
               "-s", f"{w}x{h}", "-framerate", str(fps), "-i", "pipe:0"]
        if audio_from is not None:
            if audio_seconds is not None:
                cmd += ["-t", f"{audio_seconds:.3f}"]
            cmd += ["-i", str(audio_from), "-map", "0:v:0", "-map", "1:a:0?"] + audio_args
        needs_even = "yuv420p" in video_args or "yuva420p" in video_args
        if needs_even and (w % 2 or h % 2):
            log.warning("%dx%d is odd; 4:2:0 video needs even sizes: padding 1 px", w, h)
            cmd += ["-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2"]
        cmd += video_args + ["-f", _container(path.suffix.lower()), str(self.tmp)]
        log.debug("ffmpeg: %s", " ".join(cmd))
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 - closed in _close
        self._proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=self._stderr,
            start_new_session=True,  # Ctrl-C reaches us, not ffmpeg: we close it cleanly
        )

    def _error_text(self) -> str:
        self._stderr.seek(0)
        text = self._stderr.read().decode("utf-8", "replace").strip()
        return text[-800:] or "no message"

    def write(self, frame: np.ndarray) -> None:
        """Append one ``H x W x 3`` BGR (or ``x 4`` BGRA) uint8 frame of the writer's size."""
        h, w = frame.shape[:2]
        if (w, h) != self.size or frame.ndim != 3 or frame.shape[2] != self.channels:
            raise ValueError(f"frame {frame.shape} does not fit {self.size} x {self.channels}")
        assert self._proc.stdin is not None
        try:
            self._proc.stdin.write(np.ascontiguousarray(frame, dtype=np.uint8).tobytes())
        except (BrokenPipeError, OSError) as exc:
            self._proc.wait()
            raise VideoError(f"ffmpeg stopped while writing {self.path}: {self._error_text()}") from exc
        self.frames += 1

    def _close(self) -> None:
        try:
            if self._proc.stdin is not None and not self._proc.stdin.closed:
                with contextlib.suppress(BrokenPipeError, OSError):
                    self._proc.stdin.close()
            try:
                code = self._proc.wait(timeout=300)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
                raise VideoError(f"ffmpeg did not finish {self.path} in time") from None
            if code != 0:
                raise VideoError(f"ffmpeg failed writing {self.path} (exit {code}): {self._error_text()}")
        finally:
            self._stderr.close()


def _container(suffix: str) -> str:
    return {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska", ".webm": "webm"}[suffix]


class OpenCVWriter(_OutputFile):
    """OpenCV's ``VideoWriter`` with the ``mp4v`` codec (no audio), the fallback when
    ffmpeg is not installed. Takes ``H x W x 3`` uint8 BGR frames."""

    def __init__(self, path: Path, size: tuple[int, int], fps: Fraction) -> None:
        super().__init__(path)
        self.kind = "opencv"
        self.size = size
        if path.suffix.lower() not in (".mp4", ".m4v", ".mov", ".avi", ".mkv"):
            raise VideoError(f"OpenCV writes .mp4/.mov/.avi/.mkv here, not {path.suffix!r} "
                             "(install imageio-ffmpeg for more)")
        self._writer = cv2.VideoWriter(str(self.tmp), cv2.VideoWriter.fourcc(*"mp4v"),
                                       float(fps), size)
        if not self._writer.isOpened():
            raise VideoError(f"OpenCV cannot write {self.tmp} with the mp4v codec")

    def write(self, frame: np.ndarray) -> None:
        """Append one ``H x W x 3`` uint8 BGR frame of the writer's size."""
        h, w = frame.shape[:2]
        if (w, h) != self.size or frame.ndim != 3 or frame.shape[2] != 3:
            raise ValueError(f"frame {frame.shape} does not fit {self.size} x 3")
        self._writer.write(frame)
        self.frames += 1

    def _close(self) -> None:
        self._writer.release()


class PngSequenceWriter:
    """Numbered RGBA PNGs (``frame_000000.png``, ...) in a folder, for editors.

    Each file is written atomically; on failure the frames written so far stay (each one
    complete) and the folder holds fewer frames than the video.
    """

    kind = "png-sequence"

    def __init__(self, folder: Path, pattern: str = "frame_{:06d}.png", start: int = 0) -> None:
        self.folder = folder
        self.pattern = pattern
        self.frames = start  # the number of the next file (a resumed job starts further on)
        folder.mkdir(parents=True, exist_ok=True)

    def write(self, bgra: np.ndarray) -> None:
        """Write one ``H x W x 4`` uint8 BGRA frame (straight, not premultiplied alpha)."""
        ok, buf = cv2.imencode(".png", bgra, [cv2.IMWRITE_PNG_COMPRESSION, 3])
        if not ok:
            raise VideoError(f"cannot encode frame {self.frames} as PNG")
        atomic_write(self.folder / self.pattern.format(self.frames), buf.tobytes())
        self.frames += 1

    def __enter__(self) -> PngSequenceWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        if exc_type is not None:
            log.warning("alpha sequence in %s is incomplete (%d frames)", self.folder, self.frames)

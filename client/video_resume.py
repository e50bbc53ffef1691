"""Resumable video jobs: the work folder of an unfinished job, its index, its pieces.

A job with ffmpeg writes its videos as **pieces** in a work folder beside the first output,
``NAME.EXT.partial/``: every :data:`CHECKPOINT_FRAMES` frames (and when the job stops for
any reason between two frames: an error, Ctrl-C, SIGTERM) the current pieces are closed,
the temporal smoother's state is saved, and ``index.json`` records how many frames are done
and which pieces hold them. Running the same command again reads the index, skips the
frames done (they are decoded, not sent), restores the smoother and goes on with new
pieces, so the result equals that of an uninterrupted run. When the last frame is written
the pieces are joined (ffmpeg's concat demuxer, streams copied, not re-encoded), the input's
audio is added, each output is renamed into place and the folder is removed.

A crash between two checkpoints (power cut, ``kill -9``) loses the frames since the last
one: its pieces are not in the index and are redone. A folder from a job with other
options is never mixed in: the command stops and says which options differ (``--restart``
discards it). ``index.json`` (format :data:`INDEX_VERSION`)::

    {"version": 1, "frames": 412, "options": {...}, "pieces": {"main": ["main_000.mp4", ...]},
     "state": "smoother_0000412.npz"}
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from .files import atomic_write
from .video_io import FFmpegWriter, VideoError, _codec_args, _container, partial_path

log = logging.getLogger(__name__)

#: Frames between two checkpoints: at most this many are redone after a crash.
CHECKPOINT_FRAMES = 300
#: Format of ``index.json``.
INDEX_VERSION = 1
INDEX_NAME = "index.json"


def work_folder(primary: Path) -> Path:
    """The work folder of a job whose first output is ``primary``: ``NAME.EXT.partial``."""
    return primary.with_name(primary.name + ".partial")


def file_identity(path: Path | None) -> list[Any] | None:
    """What tells a file apart from an edited one: resolved path, size, modification time."""
    if path is None:
        return None
    stat = path.stat()
    return [str(path.resolve()), stat.st_size, stat.st_mtime_ns]


@dataclass
class Progress:
    """The index of a work folder.

    Attributes:
        options: what decides the job's pixels and files (see ``client.video``); a
            resumed job must have the same.
        frames: frames done, in every output.
        pieces: output key (``main``, ``alpha``) -> its piece files, in order.
        state: the file of the temporal smoother's state after ``frames`` frames, if any.
    """

    options: dict[str, Any]
    frames: int = 0
    pieces: dict[str, list[str]] = field(default_factory=dict)
    state: str | None = None

    def save(self, folder: Path) -> None:
        data = {"version": INDEX_VERSION, "frames": self.frames, "options": self.options,
                "pieces": self.pieces, "state": self.state}
        atomic_write(folder / INDEX_NAME, json.dumps(data, indent=1).encode())

    @classmethod
    def load(cls, folder: Path) -> Progress | None:
        """The index in ``folder``; ``None`` when there is none.

        Raises:
            VideoError: the index cannot be read (the message says what to do).
        """
        path = folder / INDEX_NAME
        if not path.is_file():
            return None
        try:
            data = json.loads(path.read_text())
            if data.get("version") != INDEX_VERSION:
                raise ValueError(f"format {data.get('version')!r}, not {INDEX_VERSION}")
            progress = cls(dict(data["options"]), int(data["frames"]),
                           {k: list(v) for k, v in data["pieces"].items()}, data.get("state"))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise VideoError(f"the unfinished job in {folder} cannot be read ({exc}); add "
                             "--restart to discard it and start over") from exc
        needed = [name for names in progress.pieces.values() for name in names]
        missing = [name for name in needed + [progress.state or INDEX_NAME]
                   if not (folder / name).is_file()]
        if missing:
            raise VideoError(f"the unfinished job in {folder} lacks {', '.join(missing)}; add "
                             "--restart to discard it and start over")
        return progress


def differences(saved: dict[str, Any], wanted: dict[str, Any]) -> list[str]:
    """The option names whose values differ between two fingerprints."""
    return sorted(k for k in set(saved) | set(wanted) if saved.get(k) != wanted.get(k))


def save_state(folder: Path, frames: int, state: dict[str, np.ndarray] | None) -> str | None:
    """Keep the smoother's state after ``frames`` frames (``None``: none to keep); returns
    the file's name, which the index then records."""
    if state is None:
        return None
    name = f"smoother_{frames:07d}.npz"
    tmp = folder / f".{name}.tmp"
    with open(tmp, "wb") as fh:
        np.savez(fh, **state)
    os.replace(tmp, folder / name)
    return name


def load_state(folder: Path, name: str | None) -> dict[str, np.ndarray] | None:
    """The state :func:`save_state` kept as ``name`` (``None``: none)."""
    if name is None:
        return None
    with np.load(folder / name) as data:
        return {k: data[k] for k in data.files}


def drop_old_states(folder: Path, keep: str | None) -> None:
    """Remove the states the index no longer names."""
    for path in folder.glob("smoother_*.npz"):
        if path.name != keep:
            path.unlink(missing_ok=True)


class Pieces:
    """The piece being written of each video output, in a work folder.

    Args:
        folder: the work folder.
        outputs: key -> ``(final path, alpha)``: the videos to write.
        size, fps, exe, crf: as :class:`~client.video_io.FFmpegWriter` takes them.
        progress: the index (its ``pieces`` lists grow as pieces are committed).
    """

    def __init__(self, folder: Path, outputs: dict[str, tuple[Path, bool]], size: tuple[int, int],
                 fps: Fraction, exe: str, crf: int, progress: Progress) -> None:
        self.folder, self.outputs, self.size, self.fps = folder, outputs, size, fps
        self.exe, self.crf, self.progress = exe, crf, progress
        self.writers: dict[str, FFmpegWriter] = {}
        self.frames = 0  # frames in the current pieces

    def write(self, key: str, frame: np.ndarray) -> None:
        """Append ``frame`` to output ``key``'s current piece (opened on the first frame)."""
        writer = self.writers.get(key)
        if writer is None:
            path, alpha = self.outputs[key]
            number = len(self.progress.pieces.get(key, []))
            name = f"{key}_{number:03d}{path.suffix.lower()}"
            writer = FFmpegWriter(self.folder / name, self.size, self.fps, self.exe, alpha=alpha,
                                  crf=self.crf)
            self.writers[key] = writer
        writer.write(frame)

    def commit(self) -> None:
        """Close the current pieces and add them to the index (all of them hold
        :attr:`frames` frames); then the next :meth:`write` starts new ones."""
        writers, self.writers = self.writers, {}
        for key, writer in writers.items():
            writer.__exit__(None, None, None)  # renamed into place: complete
            self.progress.pieces.setdefault(key, []).append(writer.path.name)
        self.frames = 0

    def discard(self) -> None:
        """Close and delete the current pieces (their frames are redone next time)."""
        writers, self.writers = self.writers, {}
        for writer in writers.values():
            with contextlib.suppress(Exception):
                writer.__exit__(VideoError, VideoError("discarded"), None)
            for path in (writer.path, partial_path(writer.path)):
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
        self.frames = 0

    def whole(self, frames_per_writer: int) -> bool:
        """Whether every current piece holds ``frames_per_writer`` frames (a job stopped in
        the middle of a frame's writes must not keep that frame in one output only)."""
        return all(w.frames == frames_per_writer for w in self.writers.values())


def join(folder: Path, names: list[str], final: Path, exe: str, *, alpha: bool,
         audio_from: Path | None, seconds: float) -> None:
    """Join the pieces ``names`` of ``folder`` into ``final`` (streams copied), with the audio
    of ``audio_from`` (re-encoded for the container, cut to ``seconds``) when given.

    Raises:
        VideoError: ffmpeg failed (the pieces stay).
    """
    listing = folder / f"{final.name}.concat.txt"
    listing.write_text("".join(f"file '{name}'\n" for name in names))
    suffix = final.suffix.lower()
    video_args, audio_args = _codec_args(suffix, alpha, 18)
    tmp = partial_path(final)
    cmd = [exe, "-hide_banner", "-loglevel", "error", "-nostdin", "-y",
           "-f", "concat", "-safe", "0", "-i", str(listing)]
    if audio_from is not None:
        cmd += ["-t", f"{seconds:.3f}", "-i", str(audio_from), "-map", "0:v:0", "-map", "1:a:0?"]
        cmd += audio_args
    cmd += ["-c:v", "copy"]
    if suffix in (".mp4", ".m4v", ".mov") and "-movflags" in video_args:
        cmd += ["-movflags", "+faststart"]
    cmd += ["-f", _container(suffix), str(tmp)]
    proc = subprocess.run(cmd, capture_output=True, text=True, errors="replace", check=False,
                          timeout=3600)
    if proc.returncode != 0:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise VideoError(f"ffmpeg could not join the pieces of {final} (exit {proc.returncode}): "
                         f"{proc.stderr.strip()[-800:] or 'no message'}; they stay in {folder}")
    os.replace(tmp, final)
    listing.unlink()


def remove_folder(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)

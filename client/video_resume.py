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

Nothing in the folder is trusted, since anyone who can write beside the output could have
made or changed it: the folder must be a real folder of this user (not a symbolic link);
the index is checked value by value (:meth:`Progress.load`: types, ranges, the names this
client gives its pieces and states, so no name can point outside the folder); every file it
names must be a regular file, not a link; the smoother's state is checked before it is
used (:func:`load_state`). A folder that fails is refused with :class:`NotOurFolder` (exit
code :data:`EXIT_NOT_OURS` of the video client) and a sentence, and is never removed unless
it is this user's (``--restart``). Nothing is written through a symbolic link: states, the
concat listing and the joined videos go to new files (``O_EXCL``) that are then renamed
into place, so a link planted in the folder or beside the output is replaced, never
followed.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import stat
import subprocess
import zipfile
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from .files import atomic_write, new_file
from .video_io import FFmpegWriter, VideoError, _codec_args, _container, partial_path

log = logging.getLogger(__name__)

#: Frames between two checkpoints: at most this many are redone after a crash.
CHECKPOINT_FRAMES = 300
#: Format of ``index.json``.
INDEX_VERSION = 1
INDEX_NAME = "index.json"
#: Exit code of the video client when a work folder is not one it made (:class:`NotOurFolder`).
EXIT_NOT_OURS = 3
#: The most frames an index may claim done (a day of video at over 1,000 frames per second).
MAX_FRAMES = 100_000_000
#: The largest ``index.json`` read (a real one is a few kB).
MAX_INDEX_BYTES = 1 << 20
#: The largest frame a saved smoother state may hold, in pixels.
MAX_STATE_PIXELS = 100_000_000
#: The outputs a job writes in pieces, and the extensions of their pieces.
OUTPUT_KEYS = ("main", "alpha")
PIECE_EXTS = (".mp4", ".m4v", ".mov", ".mkv", ".webm")
#: The arrays of a smoother state and their kinds of number, unsigned or float (see
#: :meth:`client.temporal.AlphaSmoother.state`).
STATE_ARRAYS = {"frame": "u", "alpha": "f", "premult": "f"}

_INDEX_KEYS = frozenset({"version", "frames", "options", "pieces", "state"})
_ELSEWHERE = "move it away or name another output (--restart only removes a folder of your own)"
_RESTART = "add --restart to discard it and start over"


class NotOurFolder(VideoError):
    """A work folder that this client did not make, or whose contents it did not write
    (a link, another user's folder, an index or state that fails its checks): refused.

    Attributes:
        exit_code: :data:`EXIT_NOT_OURS`, for the command line.
    """

    exit_code = EXIT_NOT_OURS


def check_folder(folder: Path) -> None:
    """Refuse a work folder that is not a real folder of this user (when it exists).

    Raises:
        NotOurFolder: ``folder`` is a symbolic link, not a folder, or another user's.
    """
    try:
        st = os.lstat(folder)
    except FileNotFoundError:
        return
    if stat.S_ISLNK(st.st_mode):
        raise NotOurFolder(f"{folder} is a symbolic link, not a work folder this client made: "
                           f"{_ELSEWHERE}")
    if not stat.S_ISDIR(st.st_mode):
        raise NotOurFolder(f"{folder} is in the way of this job's work folder and is not a folder: "
                           f"{_ELSEWHERE}")
    if hasattr(os, "geteuid") and st.st_uid != os.geteuid():
        raise NotOurFolder(f"{folder} belongs to another user (uid {st.st_uid}), so this client "
                           f"did not make it: {_ELSEWHERE}")


def _regular(folder: Path, name: str) -> bool:
    """Whether ``folder/name`` is a regular file itself (not a link to one); raises
    :class:`NotOurFolder` when it is something else."""
    try:
        st = os.lstat(folder / name)
    except FileNotFoundError:
        return False
    if not stat.S_ISREG(st.st_mode):
        what = "a symbolic link" if stat.S_ISLNK(st.st_mode) else "not a regular file"
        raise NotOurFolder(f"{folder / name} is {what}; this client only writes regular files "
                           f"there, so the unfinished job in {folder} is not its own: {_RESTART}")
    return True


def _read_regular(path: Path, limit: int) -> bytes:
    """The bytes of ``path``, opened without following a link (``O_NOFOLLOW``), at most
    ``limit`` of them (:class:`ValueError` beyond)."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    with os.fdopen(fd, "rb") as fh:
        if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
            raise ValueError("it is not a regular file")
        data = fh.read(limit + 1)
    if len(data) > limit:
        raise ValueError(f"it is larger than {limit} bytes")
    return data


def piece_name(key: str, number: int, suffix: str) -> str:
    """The file name of piece ``number`` of output ``key``: ``main_000.mp4``."""
    return f"{key}_{number:03d}{suffix.lower()}"


def state_name(frames: int) -> str:
    """The file name of the smoother's state after ``frames`` frames."""
    return f"smoother_{frames:07d}.npz"


def _check_name(name: str, expected: str, what: str) -> None:
    if name == expected:
        return
    if "/" in name or "\\" in name or name in ("", ".", "..") or "\0" in name or os.path.isabs(name):
        raise ValueError(f"{what} {name!r} points outside the folder")
    raise ValueError(f"{what} {name!r} is not the name this client gives it ({expected!r})")


def _kind(value: object) -> str:
    return "null" if value is None else {dict: "an object", list: "a list", str: "a string",
                                         bool: "a boolean"}.get(type(value), "a number")


def _parse_index(data: object) -> tuple[dict[str, Any], int, dict[str, list[str]], str | None]:
    """Check an index value by value; ``(options, frames, pieces, state)``.

    Raises:
        ValueError: with what is wrong, in a few words.
    """
    if not isinstance(data, dict):
        raise ValueError(f"it holds {_kind(data)}, not an object")
    if set(data) != _INDEX_KEYS:
        odd = sorted(set(data) ^ _INDEX_KEYS)
        raise ValueError(f"its keys differ from this client's ({', '.join(map(repr, odd))})")
    version = data["version"]
    if type(version) is not int or version != INDEX_VERSION:
        raise ValueError(f"format {version!r}, not {INDEX_VERSION}")
    frames = data["frames"]
    if type(frames) is not int:
        raise ValueError(f"frames is {_kind(frames)}, not a whole number")
    if not 0 <= frames <= MAX_FRAMES:
        raise ValueError(f"frames is {frames}, outside 0..{MAX_FRAMES}")
    options = data["options"]
    if not isinstance(options, dict):
        raise ValueError(f"options is {_kind(options)}, not an object")
    pieces = data["pieces"]
    if not isinstance(pieces, dict):
        raise ValueError(f"pieces is {_kind(pieces)}, not an object")
    counts = set()
    for key, names in pieces.items():
        if key not in OUTPUT_KEYS:
            raise ValueError(f"pieces names an output {key!r}; this client has {', '.join(OUTPUT_KEYS)}")
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise ValueError(f"pieces of {key!r} are not a list of file names")
        suffix = os.path.splitext(names[0])[1] if names else ""
        if names and suffix not in PIECE_EXTS:
            suffix = PIECE_EXTS[0]  # the name check below says what is wrong
        for number, name in enumerate(names):
            _check_name(name, piece_name(key, number, suffix), "piece")
        counts.add(len(names))
    if len(counts) > 1:
        raise ValueError("its outputs have different numbers of pieces")
    count = counts.pop() if counts else 0
    if (frames == 0) != (count == 0) or count > frames:
        raise ValueError(f"{count} piece(s) cannot hold {frames} frames")
    state = data["state"]
    if state is not None:
        if not isinstance(state, str):
            raise ValueError(f"state is {_kind(state)}, not a file name")
        if frames == 0:
            raise ValueError("a state is named before any frame is done")
        _check_name(state, state_name(frames), "state")
    return options, frames, {k: list(v) for k, v in pieces.items()}, state


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
        """The index in ``folder``; ``None`` when there is none (no folder, or a folder of
        this user's without an index).

        Raises:
            NotOurFolder: the folder is not this user's real folder, or its index fails a
                check (not an object, a value of the wrong type or out of range, a name
                that is not one this client gives, a link where a file should be).
            VideoError: a file the index names is missing (the message says what to do).
        """
        check_folder(folder)
        path = folder / INDEX_NAME
        if not os.path.lexists(path):
            return None
        try:
            data = json.loads(_read_regular(path, MAX_INDEX_BYTES))
            options, frames, pieces, state = _parse_index(data)
        except (OSError, ValueError, RecursionError) as exc:
            why = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
            if isinstance(exc, OSError) and os.path.islink(path):
                why = "it is a symbolic link"
            raise NotOurFolder(f"the unfinished job in {folder} is not one this client wrote: its "
                               f"{INDEX_NAME} cannot be used ({why}); {_RESTART}") from exc
        needed = [name for names in pieces.values() for name in names] + ([state] if state else [])
        missing = [name for name in needed if not _regular(folder, name)]
        if missing:
            raise VideoError(f"the unfinished job in {folder} lacks {', '.join(missing)}; {_RESTART}")
        return cls(options, frames, pieces, state)


def differences(saved: dict[str, Any], wanted: dict[str, Any]) -> list[str]:
    """The option names whose values differ between two fingerprints: the keys of
    ``wanted`` (keys that only ``saved`` has decide nothing in this client)."""
    return sorted(k for k in wanted if saved.get(k) != wanted.get(k))


def save_state(folder: Path, frames: int, state: dict[str, np.ndarray] | None) -> str | None:
    """Keep the smoother's state after ``frames`` frames (``None``: none to keep); returns
    the file's name, which the index then records. The file is written new and renamed into
    place (a link planted under its name is replaced, not followed)."""
    if state is None:
        return None
    name = state_name(frames)
    fd, tmp = new_file(folder, name)
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, **state)
        os.replace(tmp, folder / name)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    return name


def _array_header(archive: zipfile.ZipFile, key: str) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and type of array ``key`` of an ``.npz``, from its header (nothing loaded)."""
    with archive.open(f"{key}.npy") as fh:
        version = np.lib.format.read_magic(fh)
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(fh)
        elif version == (2, 0):
            shape, _, dtype = np.lib.format.read_array_header_2_0(fh)
        else:
            raise ValueError(f"array format {version}")
    return shape, dtype


def load_state(folder: Path, name: str | None,
               size: tuple[int, int] | None = None) -> dict[str, np.ndarray] | None:
    """The state :func:`save_state` kept as ``name`` (``None``: none), checked: the three
    arrays of :data:`STATE_ARRAYS` with their kinds of number and matching shapes (frames of ``size``,
    ``(width, height)``, when given), read without following a link.

    Raises:
        NotOurFolder: the file is not such a state.
    """
    if name is None:
        return None
    path = folder / name
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
        with os.fdopen(fd, "rb") as fh:
            if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
                raise ValueError("it is not a regular file")
            with zipfile.ZipFile(fh) as archive:
                names = sorted(n.removesuffix(".npy") for n in archive.namelist())
                if names != sorted(STATE_ARRAYS):
                    raise ValueError(f"it holds {', '.join(names) or 'nothing'}, not "
                                     f"{', '.join(sorted(STATE_ARRAYS))}")
                headers = {key: _array_header(archive, key) for key in STATE_ARRAYS}
                _check_state(headers, size)
            fh.seek(0)
            with np.load(fh, allow_pickle=False) as data:
                return {key: data[key] for key in STATE_ARRAYS}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise NotOurFolder(f"the smoother state {path} is not one this client wrote ({why}); "
                           f"{_RESTART}") from exc


def _check_state(headers: dict[str, tuple[tuple[int, ...], np.dtype]],
                 size: tuple[int, int] | None) -> None:
    for key, (_, dtype) in headers.items():
        if dtype.kind != STATE_ARRAYS[key] or dtype.itemsize > 8 or dtype.hasobject:
            raise ValueError(f"{key} holds {dtype}, not {'bytes' if STATE_ARRAYS[key] == 'u' else 'floats'}")
    frame = headers["frame"][0]
    if len(frame) != 3 or frame[2] != 3 or not 0 < frame[0] * frame[1] <= MAX_STATE_PIXELS:
        raise ValueError(f"its frame has the shape {frame}")
    if headers["premult"][0] != frame or headers["alpha"][0] != frame[:2]:
        raise ValueError("its arrays do not have the same size")
    if size is not None and (frame[1], frame[0]) != tuple(size):
        raise ValueError(f"its frames are {frame[1]}x{frame[0]}, the job's {size[0]}x{size[1]}")


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
            name = piece_name(key, len(self.progress.pieces.get(key, [])), path.suffix)
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

    The listing of the pieces and the joined video are new files (:func:`client.files.new_file`:
    the listing in ``folder``, the video beside ``final``); the video is then renamed over
    ``final``, so nothing is written through a link planted in the folder or beside the
    output, and a link at ``final`` is replaced, not followed. ffmpeg reads the listing in its
    safe mode: plain names in the folder only.

    Raises:
        VideoError: ffmpeg failed (the pieces stay).
    """
    fd, listing = new_file(folder, f"{final.name}.concat", ".txt")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write("".join(f"file '{name}'\n" for name in names))
        fd, tmp = new_file(final.parent, final.name, ".part")
        os.close(fd)
        try:
            _concat(listing, tmp, final, exe, alpha=alpha, audio_from=audio_from, seconds=seconds,
                    folder=folder)
            os.replace(tmp, final)
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise
    finally:
        with contextlib.suppress(OSError):
            listing.unlink()


def _concat(listing: Path, tmp: Path, final: Path, exe: str, *, alpha: bool,
            audio_from: Path | None, seconds: float, folder: Path) -> None:
    suffix = final.suffix.lower()
    video_args, audio_args = _codec_args(suffix, alpha, 18)
    cmd = [exe, "-hide_banner", "-loglevel", "error", "-nostdin", "-y",
           "-f", "concat", "-safe", "1", "-i", str(listing)]
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
        raise VideoError(f"ffmpeg could not join the pieces of {final} (exit {proc.returncode}): "
                         f"{proc.stderr.strip()[-800:] or 'no message'}; they stay in {folder}")


def remove_folder(folder: Path) -> None:
    """Remove a work folder of this user's; one that is not (a link, another user's) is
    left as it is, with a warning (:meth:`Progress.load` refuses it)."""
    try:
        check_folder(folder)
    except NotOurFolder as exc:
        log.warning("not removed: %s", exc)
        return
    shutil.rmtree(folder, ignore_errors=True)

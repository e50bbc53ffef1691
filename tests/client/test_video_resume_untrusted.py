"""The video client's resume folder is not trusted (issue 24, item 13).

``OUTPUT.partial/`` and what lies beside the output may have been made or changed by
someone else. Crafted indexes (wrong types, values out of range, names that point outside
the folder), links in place of the folder or of its files, another user's folder and bad
smoother states are refused with :class:`NotOurFolder` and a sentence; links planted where
the client writes (the concat listing, ``NAME.partial.EXT`` beside the output, the output
itself) are replaced, never written through. The end-to-end runs use a fake matting service
(an opaque RGBA PNG for every frame) and real folders in ``tmp_path``.
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from httpfake import FakeServer, Reply, Request
from PIL import Image
from videotools import CLIP_SIZE, read_all

from client.video_cli import main
from client.video_io import FFmpegWriter, VideoError, ffmpeg_exe
from client.video_resume import (
    EXIT_NOT_OURS,
    MAX_FRAMES,
    NotOurFolder,
    Progress,
    join,
    load_state,
    remove_folder,
    save_state,
)

needs_ffmpeg = pytest.mark.skipif(ffmpeg_exe() is None, reason="needs the ffmpeg of imageio-ffmpeg")

VALID = {"version": 1, "frames": 4, "options": {"color": "red"},
         "pieces": {"main": ["main_000.mp4", "main_001.mp4"]}, "state": "smoother_0000004.npz"}


def _folder(tmp_path: Path, index: object = VALID, raw: bytes | None = None,
            files: tuple[str, ...] = ("main_000.mp4", "main_001.mp4", "smoother_0000004.npz")) -> Path:
    """A work folder with ``index`` (or ``raw`` bytes) as its index and ``files`` in it."""
    folder = tmp_path / "out.mp4.partial"
    folder.mkdir()
    (folder / "index.json").write_bytes(raw if raw is not None else json.dumps(index).encode())
    for name in files:
        (folder / name).write_bytes(b"piece")
    return folder


def _with(**changes: object) -> dict[str, object]:
    return {**VALID, **changes}


def test_a_valid_index_loads(tmp_path: Path):
    progress = Progress.load(_folder(tmp_path))
    assert progress is not None
    assert (progress.frames, progress.pieces, progress.state) == (4, VALID["pieces"], VALID["state"])


@pytest.mark.parametrize(("index", "words"), [
    ([1, 2], "holds a list, not an object"),
    (None, "holds null, not an object"),
    ("index", "holds a string"),
    (_with(frames=-1), "frames is -1, outside"),
    (_with(frames=10**12), f"frames is 1000000000000, outside 0..{MAX_FRAMES}"),
    (_with(frames="4"), "frames is a string"),
    (_with(frames=4.0), "frames is a number, not a whole number"),
    (_with(frames=True), "frames is a boolean"),
    (_with(frames=None), "frames is null"),
    (_with(version="1"), "format '1'"),
    (_with(version=2), "format 2"),
    ({k: v for k, v in VALID.items() if k != "state"}, "keys differ"),
    (_with(extra=1), "keys differ"),
    (_with(options=["color"]), "options is a list"),
    (_with(options=None), "options is null"),
    (_with(pieces=["main_000.mp4"]), "pieces is a list"),
    (_with(pieces={"main": "main_000.mp4"}), "not a list of file names"),
    (_with(pieces={"main": [0, 1]}), "not a list of file names"),
    (_with(pieces={"evil": ["evil_000.mp4"]}), "names an output 'evil'"),
    (_with(pieces={"main": []}), "0 piece(s) cannot hold 4 frames"),
    (_with(frames=1), "2 piece(s) cannot hold 1 frames"),
    (_with(pieces={"main": ["main_000.mp4", "main_000.mp4"]}), "not the name this client gives"),
    (_with(pieces={"main": ["main_000.mp4"], "alpha": ["alpha_000.mov", "alpha_001.mov"]}),
     "different numbers of pieces"),
    (_with(state=5), "state is a number"),
    (_with(state="smoother_0000003.npz"), "not the name this client gives"),
    (_with(frames=0, pieces={}), "a state is named before any frame"),
], ids=lambda v: v if isinstance(v, str) and " " not in v else None)
def test_crafted_values_are_refused_with_a_sentence(tmp_path: Path, index, words):
    with pytest.raises(NotOurFolder) as err:
        Progress.load(_folder(tmp_path, index))
    message = str(err.value)
    assert words in message, message
    assert "is not one this client wrote" in message and "--restart" in message
    assert err.value.exit_code == EXIT_NOT_OURS


@pytest.mark.parametrize("name", ["../other.mp4", "/abs/other.mp4", "sub/main_000.mp4", "..",
                                  "", "main_000.mp4/..", "..\\main_000.mp4", "main_000.mp4\0"])
@pytest.mark.parametrize("where", ["pieces", "state"])
def test_names_cannot_point_outside_the_folder(tmp_path: Path, name: str, where: str):
    index = (_with(pieces={"main": [name, "main_001.mp4"]}) if where == "pieces"
             else _with(state=name))
    with pytest.raises(NotOurFolder, match="points outside the folder|not the name this client gives"):
        Progress.load(_folder(tmp_path, index))


@pytest.mark.parametrize(("raw", "words"), [
    (b"{", "Expecting"),
    (b"\x80{}", "codec"),
    (b"[" * 100_000 + b"]" * 100_000, "recursion"),
    (b" " * (2 << 20), "larger than"),
])
def test_an_index_that_is_not_json_is_refused(tmp_path: Path, raw: bytes, words: str):
    with pytest.raises(NotOurFolder, match=words):
        Progress.load(_folder(tmp_path, raw=raw))


def test_a_missing_piece_is_named(tmp_path: Path):
    with pytest.raises(VideoError, match="lacks main_001.mp4.*--restart") as err:
        Progress.load(_folder(tmp_path, files=("main_000.mp4", "smoother_0000004.npz")))
    assert not isinstance(err.value, NotOurFolder)


@pytest.mark.parametrize("name", ["index.json", "main_001.mp4", "smoother_0000004.npz"])
def test_links_in_the_folder_are_refused(tmp_path: Path, name: str):
    """A link where the index or a file it names should be (to another user's video, say)."""
    folder = _folder(tmp_path)
    other = tmp_path / "other.mp4"
    other.write_bytes((folder / name).read_bytes())
    (folder / name).unlink()
    (folder / name).symlink_to(other)
    with pytest.raises(NotOurFolder, match="symbolic link"):
        Progress.load(folder)
    assert other.read_bytes() == (folder / name).read_bytes()


def test_a_folder_that_is_a_link_is_refused_and_never_removed(tmp_path: Path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "index.json").write_text(json.dumps(VALID))
    (elsewhere / "keep.txt").write_text("someone's file")
    folder = tmp_path / "out.mp4.partial"
    folder.symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(NotOurFolder, match="is a symbolic link, not a work folder this client made"):
        Progress.load(folder)
    remove_folder(folder)  # what --restart does first
    assert folder.is_symlink() and (elsewhere / "keep.txt").read_text() == "someone's file"


def test_a_file_in_the_way_is_refused(tmp_path: Path):
    folder = tmp_path / "out.mp4.partial"
    folder.write_text("not a folder")
    with pytest.raises(NotOurFolder, match="is not a folder"):
        Progress.load(folder)


def test_another_users_folder_is_refused_and_never_removed(tmp_path: Path, monkeypatch):
    folder = _folder(tmp_path)
    monkeypatch.setattr(os, "geteuid", lambda: os.lstat(folder).st_uid + 1)
    with pytest.raises(NotOurFolder, match=r"belongs to another user \(uid \d+\)"):
        Progress.load(folder)
    remove_folder(folder)
    assert (folder / "index.json").is_file()


def test_a_folder_without_an_index_is_new_work(tmp_path: Path):
    folder = tmp_path / "out.mp4.partial"
    assert Progress.load(folder) is None
    folder.mkdir()
    assert Progress.load(folder) is None


# --- the smoother's state --------------------------------------------------------------


def _state(h: int = 48, w: int = 64) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {"frame": rng.integers(0, 255, (h, w, 3), dtype=np.uint8),
            "alpha": rng.random((h, w), dtype=np.float32),
            "premult": rng.random((h, w, 3), dtype=np.float32)}


def test_state_round_trip_and_a_planted_link_is_replaced(tmp_path: Path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    (tmp_path / "smoother_0000004.npz").symlink_to(victim)
    name = save_state(tmp_path, 4, _state())
    assert name == "smoother_0000004.npz" and not (tmp_path / name).is_symlink()
    assert victim.read_text() == "precious"
    loaded = load_state(tmp_path, name, size=CLIP_SIZE)
    assert loaded is not None
    assert all(np.array_equal(loaded[k], v) for k, v in _state().items())


def _npz(path: Path, **arrays: np.ndarray) -> None:
    with open(path, "wb") as fh:
        np.savez(fh, **arrays)


def _huge_header_npz(path: Path) -> None:
    """An npz whose frame header claims 100,000 x 100,000 x 3 (and holds no data)."""
    with zipfile.ZipFile(path, "w") as archive:
        for key, shape, dtype in (("frame", (100_000, 100_000, 3), "|u1"),
                                  ("alpha", (100_000, 100_000), "<f4"),
                                  ("premult", (100_000, 100_000, 3), "<f4")):
            buf = io.BytesIO()
            np.lib.format.write_array_header_1_0(buf, {"descr": dtype, "fortran_order": False,
                                                       "shape": shape})
            archive.writestr(f"{key}.npy", buf.getvalue())


@pytest.mark.parametrize(("make", "words"), [
    (lambda p: p.write_bytes(b"not a zip at all"), "File is not a zip file"),
    (lambda p: _npz(p, frame=_state()["frame"]), "it holds frame, not alpha, frame, premult"),
    (lambda p: _npz(p, **{**_state(), "alpha": np.array([{"pickle": 1}] * 4, dtype=object)}),
     "alpha holds object"),
    (lambda p: _npz(p, **{**_state(), "frame": _state()["frame"].astype(np.float64)}),
     "frame holds float64, not bytes"),
    (lambda p: _npz(p, **{**_state(), "alpha": np.zeros((4, 4), np.float32)}), "not have the same size"),
    (lambda p: _npz(p, **_state(24, 32)), "its frames are 32x24, the job's 64x48"),
    (lambda p: _npz(p, **_state(0, 64)), "its frame has the shape (0, 64, 3)"),
    (_huge_header_npz, "its frame has the shape (100000, 100000, 3)"),
], ids=["garbage", "missing-arrays", "pickled-object", "float-frame", "mismatched", "other-size",
        "empty", "huge-header"])
def test_bad_states_are_refused(tmp_path: Path, make, words):
    make(tmp_path / "smoother_0000004.npz")
    with pytest.raises(NotOurFolder, match="is not one this client wrote") as err:
        load_state(tmp_path, "smoother_0000004.npz", size=CLIP_SIZE)
    assert words in str(err.value)


# --- joining pieces: no link is written through ----------------------------------------


def _plant(link: Path, tmp_path: Path) -> Path:
    victim = tmp_path / f"victim-{link.name}"
    victim.write_text("precious")
    link.symlink_to(victim)
    return victim


@needs_ffmpeg
def test_join_writes_through_no_planted_link(tmp_path: Path):
    """Links at the concat listing's old name, at ``out.partial.mp4`` beside the output and at
    the output itself: each victim keeps its bytes, the output becomes a real file."""
    folder = tmp_path / "out.mp4.partial"
    folder.mkdir()
    frame = np.full((48, 64, 3), 90, np.uint8)
    names = []
    for number in range(2):
        with FFmpegWriter(folder / f"main_{number:03d}.mp4", CLIP_SIZE, Fraction(12), ffmpeg_exe()) as w:
            w.write(frame)
            w.write(frame)
        names.append(f"main_{number:03d}.mp4")
    out = tmp_path / "out.mp4"
    victims = [_plant(link, tmp_path)
               for link in (folder / "out.mp4.concat.txt", tmp_path / "out.partial.mp4", out)]
    join(folder, names, out, ffmpeg_exe(), alpha=False, audio_from=None, seconds=4 / 12)
    assert [v.read_text() for v in victims] == ["precious"] * 3
    assert not out.is_symlink() and len(read_all(out)[0]) == 4
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.mp4.")]  # no temp left


@needs_ffmpeg
def test_a_failed_join_leaves_no_temporary_file(tmp_path: Path):
    folder = tmp_path / "out.mp4.partial"
    folder.mkdir()
    (folder / "main_000.mp4").write_bytes(b"not a video")
    with pytest.raises(VideoError, match="could not join"):
        join(folder, ["main_000.mp4"], tmp_path / "out.mp4", ffmpeg_exe(), alpha=False,
             audio_from=None, seconds=1.0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4.partial"]
    assert [p.name for p in folder.iterdir()] == ["main_000.mp4"]


# --- the whole client, against a fake service -------------------------------------------


def _rgba_png() -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.full((CLIP_SIZE[1], CLIP_SIZE[0], 4), 255, np.uint8), "RGBA").save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture
def service() -> Iterator[FakeServer]:
    """A matting service that finds the whole frame to be the subject."""
    png = _rgba_png()

    def answer(request: Request) -> Reply:
        if request.path == "/readyz":
            return Reply.json(200, {"status": "ready"})
        return Reply(200, png, "image/png")

    with FakeServer(answer) as server:
        yield server


def _main(clip: Path, out: Path, service: FakeServer, *extra: str) -> int:
    return main([str(clip), str(out), "--color", "red", "--jobs", "1", "-q", "--server", service.url,
                 *extra])


@needs_ffmpeg
def test_planted_links_survive_a_whole_run(subject_clip: Path, tmp_path: Path, service: FakeServer,
                                           capsys):
    """A work folder of ours, empty but for a planted listing link; links beside the output
    and at the output: the run succeeds and no victim is touched."""
    out = tmp_path / "out.mp4"
    folder = tmp_path / "out.mp4.partial"
    folder.mkdir()
    victims = [_plant(link, tmp_path)
               for link in (folder / "out.mp4.concat.txt", tmp_path / "out.partial.mp4", out)]
    assert _main(subject_clip, out, service) == 0, capsys.readouterr().err
    assert [v.read_text() for v in victims] == ["precious"] * 3
    assert not out.is_symlink() and len(read_all(out)[0]) == 6
    assert not folder.exists()


@needs_ffmpeg
@pytest.mark.parametrize("index", [
    _with(pieces={"main": ["/abs/other.mp4"]}, frames=1, state=None),
    _with(pieces={"main": ["../other.mp4"]}, frames=1, state=None),
    _with(frames=10**12),
    [],
    None,
], ids=["absolute-piece", "parent-piece", "huge-frames", "list", "null"])
def test_a_crafted_folder_ends_the_run_with_a_sentence(subject_clip: Path, tmp_path: Path,
                                                       service: FakeServer, capsys, index):
    """``"pieces": {"main": ["/abs/other.mp4"]}`` made the client exit 0 with somebody else's
    video as its output; now it stops before any frame, and nothing is written."""
    other = tmp_path / "other.mp4"
    other.write_bytes(b"somebody else's video")
    out = tmp_path / "out.mp4"
    folder = _folder(tmp_path, index)
    code = _main(subject_clip, out, service)
    err = capsys.readouterr().err
    assert code != 0 and "Traceback" not in err
    assert "is not one this client wrote" in err and "--restart" in err
    assert not out.exists() and other.read_bytes() == b"somebody else's video"
    assert (folder / "index.json").is_file()  # left for the user to look at
    assert service.count == 1  # /readyz only: no frame was sent


@needs_ffmpeg
def test_restart_never_removes_a_folder_that_is_a_link(subject_clip: Path, tmp_path: Path,
                                                       service: FakeServer, capsys):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "keep.txt").write_text("someone's file")
    out = tmp_path / "out.mp4"
    (tmp_path / "out.mp4.partial").symlink_to(elsewhere, target_is_directory=True)
    code = _main(subject_clip, out, service, "--restart")
    err = capsys.readouterr().err
    assert code != 0 and "Traceback" not in err and "symbolic link" in err
    assert sorted(p.name for p in elsewhere.iterdir()) == ["keep.txt"]
    assert not out.exists()


@needs_ffmpeg
def test_a_folder_that_is_not_ours_has_its_own_exit_code(subject_clip: Path, tmp_path: Path,
                                                         service: FakeServer):
    _folder(tmp_path, [])
    assert _main(subject_clip, tmp_path / "out.mp4", service) == EXIT_NOT_OURS

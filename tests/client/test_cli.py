"""The image CLI (``python -m client``) against the real services (offline backends)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from client.cli import main
from service_common.config import REPO_ROOT
from service_common.serve import free_port


@pytest.fixture
def photo(tmp_path: Path, sample_photo_bytes: bytes) -> Path:
    path = tmp_path / "in" / "astronaut.png"
    path.parent.mkdir()
    path.write_bytes(sample_photo_bytes)
    return path


@pytest.fixture
def small_photo_png(sample_photo: np.ndarray, encode_png) -> bytes:
    """The sample photo at 128 x 128, to keep folder runs fast."""
    return encode_png(sample_photo[::4, ::4].copy())


def test_single_file_format_from_extension(offline_services, photo: Path, tmp_path: Path, capsys):
    out = tmp_path / "result.jpg"
    code = main([str(photo), str(out), "--server", offline_services[1].url, "--color", "skyblue",
                 "--size", "200"])
    assert code == 0
    assert capsys.readouterr().out.strip() == str(out)
    with Image.open(out) as img:
        assert img.format == "JPEG" and max(img.size) == 200


def test_default_output_name_next_to_input(offline_services, photo: Path, capsys):
    code = main([str(photo), "--server", offline_services[1].url, "--transparent", "--size", "128"])
    assert code == 0
    expected = photo.with_name("astronaut.out.png")
    assert capsys.readouterr().out.strip() == str(expected)
    with Image.open(expected) as img:
        assert img.format == "PNG" and img.mode == "RGBA"
        alpha = np.asarray(img)[..., 3]
    assert alpha.min() == 0 and alpha.max() == 255  # a subject and a background
    assert photo.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"  # the input is untouched


def test_cli_as_a_subprocess(offline_services, photo: Path, tmp_path: Path):
    out = tmp_path / "matte.webp"
    env = {**os.environ, "BACKDROP_SERVER": offline_services[1].url}
    proc = subprocess.run(
        [sys.executable, "-m", "client", str(photo), str(out), "--alpha", "--size", "160"],
        capture_output=True, text=True, env=env, cwd=REPO_ROOT, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str(out)
    with Image.open(out) as img:
        assert img.format == "WEBP" and max(img.size) == 160


def test_folder_with_a_broken_file_then_resume(offline_services, tmp_path: Path,
                                               small_photo_png: bytes, capsys):
    src, dst = tmp_path / "photos", tmp_path / "results"
    (src / "sub").mkdir(parents=True)
    (src / "one.png").write_bytes(small_photo_png)
    (src / "sub" / "two.png").write_bytes(small_photo_png)
    (src / "broken.jpg").write_text("this is a text file posing as a JPEG\n")
    (src / "readme.txt").write_text("not an image: ignored")
    args = [str(src), str(dst), "--server", offline_services[1].url, "--jobs", "2",
            "--format", "png", "--color", "#ffcc00", "-q"]

    assert main(args) == 1
    err = capsys.readouterr().err
    assert "2 written, 0 skipped (already done), 1 failed" in err
    report = err.split("failed files:")[1]
    assert "broken.jpg" in report and "invalid_image" in report and "HTTP 400" in report
    outputs = sorted(p.relative_to(dst).as_posix() for p in dst.rglob("*") if p.is_file())
    assert outputs == ["one.png", "sub/two.png"]
    for name in outputs:
        with Image.open(dst / name) as img:
            assert img.size == (128, 128) and img.format == "PNG"

    stamp = (dst / "one.png").stat().st_mtime_ns
    (dst / "sub" / "two.png").unlink()  # as if the run had been interrupted before it
    assert main([*args, "--skip-existing"]) == 1
    err = capsys.readouterr().err
    assert "1 written, 1 skipped (already done), 1 failed" in err
    assert (dst / "one.png").stat().st_mtime_ns == stamp
    assert (dst / "sub" / "two.png").is_file()


def test_api_error_of_a_single_file(offline_services, tmp_path: Path, capsys):
    bad = tmp_path / "bad.jpg"
    bad.write_text("not a picture")
    assert main([str(bad), str(tmp_path / "o.png"), "--server", offline_services[1].url]) == 1
    err = capsys.readouterr().err
    assert "invalid_image" in err and "HTTP 400" in err and str(bad) in err
    assert not (tmp_path / "o.png").exists()


def test_unreachable_service(photo: Path, tmp_path: Path, capsys):
    url = f"http://127.0.0.1:{free_port()}"
    assert main([str(photo), str(tmp_path / "o.png"), "--server", url]) == 1
    err = capsys.readouterr().err
    assert "service_unreachable" in err and "make serve" in err


@pytest.mark.parametrize(("argv", "message"), [
    (["{missing}", "o.png"], "does not exist"),
    (["{photo}", "o.jpg", "--format", "png"], "contradicts"),
    (["{photo}", "o.gif"], ".gif"),
    (["{photo}", "{photo}"], "never overwritten"),
    (["{photo}", "o.png", "--crop-margin", "5%"], "only applies with --crop"),
    (["{folder}"], "OUTPUT folder"),
    (["{folder}", "{folder}"], "another folder"),
])
def test_usage_errors_exit_2(photo: Path, tmp_path: Path, capsys, argv, message):
    names = {"photo": str(photo), "missing": str(tmp_path / "nope.png"), "folder": str(photo.parent)}
    args = [a.format(**names) if a.startswith("{") else str(tmp_path / a) if a.startswith("o.")
            else a for a in argv]
    assert main([*args, "--server", "http://127.0.0.1:9"]) == 2
    assert message in capsys.readouterr().err


def test_argparse_errors_exit_2(photo: Path, capsys):
    with pytest.raises(SystemExit) as exc:
        main([str(photo), "--color", "red", "--transparent"])
    assert exc.value.code == 2
    with pytest.raises(SystemExit) as exc:
        main([str(photo), "--color", "notacolour"])
    assert exc.value.code == 2
    assert "argument --color: 'notacolour' is not a colour" in capsys.readouterr().err


def test_given_trimap_is_used(offline_services, photo: Path, tmp_path: Path):
    trimap = np.zeros((512, 512), np.uint8)
    trimap[100:420, 150:370] = 128
    trimap[140:380, 190:330] = 255
    Image.fromarray(trimap).save(tmp_path / "trimap.png")
    out = tmp_path / "alpha.png"
    code = main([str(photo), str(out), "--server", offline_services[1].url, "--alpha",
                 "--trimap", str(tmp_path / "trimap.png")])
    assert code == 0
    alpha = np.asarray(Image.open(out).convert("L"))
    assert alpha.shape == (512, 512)
    assert np.all(alpha[trimap == 0] == 0) and np.all(alpha[trimap == 255] == 255)


def test_folder_trimaps_must_match(tmp_path: Path, small_photo_png: bytes, capsys):
    src, trimaps = tmp_path / "photos", tmp_path / "trimaps"
    src.mkdir()
    trimaps.mkdir()
    (src / "a.png").write_bytes(small_photo_png)
    code = main([str(src), str(tmp_path / "out"), "--trimap", str(trimaps), "-q",
                 "--server", "http://127.0.0.1:9"])
    assert code == 1
    assert "missing_trimap" in capsys.readouterr().err


def test_folder_stops_sending_when_the_service_is_unreachable(tmp_path: Path,
                                                              small_photo_png: bytes, capsys):
    src = tmp_path / "photos"
    src.mkdir()
    for i in range(3):
        (src / f"{i}.png").write_bytes(small_photo_png)
    code = main([str(src), str(tmp_path / "out"), "--jobs", "1", "-q",
                 "--server", f"http://127.0.0.1:{free_port()}"])
    assert code == 1
    err = capsys.readouterr().err
    # the file that failed stops the batch; the one already in the worker may fail too
    counts = re.search(r"0 written, 0 skipped \(already done\), (\d) failed, (\d) not sent", err)
    assert counts, err
    assert int(counts[1]) + int(counts[2]) == 3 and int(counts[2]) >= 1
    assert "make serve" in err and "--skip-existing" in err

"""scripts/video_sheet.py: rows of input, result and alpha per run, from real files."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import cv2
import numpy as np
import pytest

from service_common.config import REPO_ROOT

spec = importlib.util.spec_from_file_location("video_sheet", REPO_ROOT / "scripts" / "video_sheet.py")
video_sheet = importlib.util.module_from_spec(spec)
spec.loader.exec_module(video_sheet)


def _clip(path: Path, n: int = 3) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    for i in range(n):
        writer.write(np.full((48, 64, 3), 40 * i, np.uint8))
    writer.release()
    return path


def _run(folder: Path, value: int, n: int = 3) -> Path:
    folder.mkdir()
    for i in range(n):
        rgba = np.zeros((48, 64, 4), np.uint8)
        rgba[10:30, 20:40] = (255, 255, 255, value)
        cv2.imwrite(str(folder / f"frame_{i:06d}.png"), rgba)
    return folder


def test_sheet_has_a_row_per_frame_and_two_tiles_per_run(tmp_path):
    clip = _clip(tmp_path / "clip.avi")
    a, b = _run(tmp_path / "a", 255), _run(tmp_path / "b", 128)
    out = tmp_path / "sheet.png"
    assert video_sheet.main([str(clip), str(a), str(b), "--frames", "0,2", "--scale", "1",
                             "-o", str(out)]) == 0
    sheet = cv2.imread(str(out))
    assert sheet.shape == (2 * 48, 5 * 64, 3)
    # run b's alpha tile holds its alpha (128) where the square is, below the label band
    assert abs(int(sheet[27, 4 * 64 + 30, 0]) - 128) <= 1


def test_a_frame_the_clip_lacks_is_refused(tmp_path):
    clip = _clip(tmp_path / "clip.avi")
    a = _run(tmp_path / "a", 255)
    with pytest.raises(SystemExit):
        video_sheet.main([str(clip), str(a), "--frames", "7", "-o", str(tmp_path / "s.png")])


def test_the_delivered_video_goes_after_the_input(tmp_path):
    clip = _clip(tmp_path / "clip.avi")
    delivered = tmp_path / "out.avi"
    writer = cv2.VideoWriter(str(delivered), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    for _ in range(3):
        writer.write(np.full((48, 64, 3), (0, 0, 200), np.uint8))  # red in BGR
    writer.release()
    a = _run(tmp_path / "a", 255)
    out = tmp_path / "sheet.png"
    assert video_sheet.main([str(clip), str(a), "--video", str(delivered), "--frames", "1",
                             "--scale", "1", "-o", str(out)]) == 0
    sheet = cv2.imread(str(out))
    assert sheet.shape == (48, 4 * 64, 3)
    assert sheet[40, 64 + 30, 2] > 150 and sheet[40, 64 + 30, 0] < 60  # the red result tile

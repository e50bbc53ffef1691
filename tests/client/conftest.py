"""Fixtures of the client tests: tiny generated clips (see videotools.py)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from videotools import BG_COLOURS, CLIP_FPS, CLIP_SIZE, disk_frames, write_clip


@pytest.fixture
def subject_clip(tmp_path: Path) -> Path:
    """6 frames, 64 x 48, 12 fps: the moving disk."""
    return write_clip(tmp_path / "subject.mp4", disk_frames(), CLIP_FPS)


@pytest.fixture
def make_bg_clip(tmp_path: Path) -> Callable[..., Path]:
    """``make_bg_clip(n=3, fps=12) -> Path``: solid frames cycling through BG_COLOURS."""

    def make(n: int = 3, fps: float = CLIP_FPS, name: str = "bg.mp4") -> Path:
        w, h = CLIP_SIZE
        frames = [np.full((h, w, 3), BG_COLOURS[i % len(BG_COLOURS)], np.uint8) for i in range(n)]
        return write_clip(tmp_path / name, frames, fps)

    return make

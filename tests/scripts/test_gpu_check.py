"""The prepared GPU check's CPU part (what it does on a machine without CUDA)."""

from __future__ import annotations

import importlib.util
import sys

import pytest

from service_common.config import REPO_ROOT

torch = pytest.importorskip("torch")


def _gpu_check():
    spec = importlib.util.spec_from_file_location("gpu_check", REPO_ROOT / "scripts" / "gpu_check.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_without_cuda_it_says_so_runs_the_cpu_part_and_exits_0(monkeypatch, capsys):
    gpu_check = _gpu_check()
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert gpu_check.main(["--repeats", "1"]) == 0
    out = capsys.readouterr().out
    assert "CUDA is not available here" in out
    lines = [line for line in out.splitlines() if line.startswith("| ")]
    assert lines[0].startswith("| model | device | precision |")
    assert lines[1].startswith("| FBA Matting | cpu | fp32 |") and lines[1].endswith("| reference |")
    assert lines[2].startswith("| Mask R-CNN | cpu | fp32 |")


def test_the_scene_has_an_unknown_band():
    rgb, trimap = _gpu_check().scene(64)
    assert rgb.shape == (64, 64, 3) and rgb.min() >= 0 and rgb.max() <= 1
    unknown = (trimap[..., 0] == 0) & (trimap[..., 1] == 0)
    assert 0 < unknown.mean() < 0.3 and trimap[..., 1].any() and trimap[..., 0].any()

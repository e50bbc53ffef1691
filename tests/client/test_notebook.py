"""client/video.ipynb runs top to bottom against the running services on a tiny clip."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from videotools import CLIP_SIZE, read_all

from service_common.config import REPO_ROOT

NOTEBOOK = REPO_ROOT / "client" / "video.ipynb"

# the `notebook` extra of pyproject.toml: pip install -e '.[notebook]'
nbformat = pytest.importorskip("nbformat")
NotebookClient = pytest.importorskip("nbclient").NotebookClient


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_notebook_executes(offline_services, subject_clip: Path, tmp_path: Path, monkeypatch):
    out = tmp_path / "notebook.mp4"
    monkeypatch.setenv("BACKDROP_SERVER", offline_services[1].url)
    monkeypatch.setenv("BACKDROP_VIDEO_INPUT", str(subject_clip))
    monkeypatch.setenv("BACKDROP_VIDEO_OUTPUT", str(out))
    monkeypatch.setenv("BACKDROP_VIDEO_MAX_FRAMES", "3")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    assert not any(c.get("outputs") for c in nb.cells if c.cell_type == "code"), \
        "commit the notebook without outputs"
    NotebookClient(nb, timeout=120, kernel_name="python3",
                   resources={"metadata": {"path": str(NOTEBOOK.parent)}}).execute()
    assert len(read_all(out)[0]) == 3
    last = nb.cells[-1]
    [png] = [o["data"]["image/png"] for o in last.outputs if "image/png" in o.get("data", {})]
    sheet = np.asarray(Image.open(io.BytesIO(base64.b64decode(png))))
    width, height = CLIP_SIZE
    assert sheet.shape[:2] == (3 * height, 2 * width)  # frames 0, 1, 2: before | after
    before, after = sheet[:, :width].astype(int), sheet[:, width:].astype(int)
    assert np.abs(before - after).mean() > 20  # the background was replaced
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs
              if o.output_type == "error"]
    assert errors == []

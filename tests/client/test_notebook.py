"""client/video.ipynb runs top to bottom against the running services on a tiny clip: through
nbclient's Python API, and as docs/notebook.md's unattended command (``jupyter execute``)."""

from __future__ import annotations

import base64
import io
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from videotools import CLIP_SIZE, read_all

from service_common.config import REPO_ROOT

NOTEBOOK = REPO_ROOT / "client" / "video.ipynb"
DOCS = REPO_ROOT / "docs" / "notebook.md"

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


def _documented_command() -> str:
    """The shell block of docs/notebook.md that runs the notebook (its exports and command)."""
    blocks = re.findall(r"```sh\n(.*?)```", DOCS.read_text(encoding="utf-8"), re.S)
    [block] = [b for b in blocks if "jupyter execute" in b]
    return block


def test_the_documented_command_names_what_the_notebook_reads():
    block = _documented_command()
    assert re.search(r"^\.venv/bin/jupyter execute client/video\.ipynb\b", block, re.M)
    source = NOTEBOOK.read_text(encoding="utf-8")
    for variable in re.findall(r"export (BACKDROP_\w+)=", block):
        assert variable in source, f"docs/notebook.md sets {variable}, which the notebook does not read"
    documented = set(re.findall(r"`(BACKDROP_\w+)`", DOCS.read_text(encoding="utf-8")))
    assert documented == set(re.findall(r"\b(BACKDROP_\w+)\b", source)), \
        "docs/notebook.md's table and the notebook's settings differ"


def test_the_documented_unattended_command_runs(offline_services, subject_clip: Path, tmp_path: Path):
    """docs/notebook.md's block through bash, as written, with this test's service, clip and
    output put in place of the documented ones."""
    jupyter = Path(sys.executable).parent / "jupyter"
    if not (jupyter.exists() and shutil.which("jupyter-execute", path=str(jupyter.parent))):
        pytest.skip("jupyter execute is not installed (pip install -e '.[notebook]')")
    out = tmp_path / "notebook.mp4"
    block = (_documented_command()
             .replace("http://127.0.0.1:5000", offline_services[1].url)
             .replace('"$PWD/videos/asl_thanks_gradient.mp4"', f'"{subject_clip}"')
             .replace('"$PWD/thanks-blue.mp4"', f'"{out}"')
             .replace('"$PWD/video-run"', f'"{tmp_path / "video-run"}"')
             .replace(".venv/bin/jupyter", str(jupyter)))
    assert str(subject_clip) in block and str(out) in block and str(tmp_path / "video-run") in block
    env = {**os.environ, "BACKDROP_VIDEO_MAX_FRAMES": "3"}
    done = subprocess.run(["bash", "-euc", block], cwd=REPO_ROOT, env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert len(read_all(out)[0]) == 3
    executed = nbformat.read(tmp_path / "video-run.ipynb", as_version=4)
    outputs = [o for c in executed.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert any("image/png" in o.get("data", {}) for o in executed.cells[-1].outputs)
    assert not list(NOTEBOOK.parent.glob("video-run*")), "the run wrote into client/"


def test_a_failing_run_exits_non_zero_and_names_the_error(tmp_path: Path):
    """The services not running: status 1 and the error, not a silent success."""
    jupyter = Path(sys.executable).parent / "jupyter"
    if not jupyter.exists():
        pytest.skip("jupyter is not installed (pip install -e '.[notebook]')")
    from service_common.serve import free_port

    env = {**os.environ, "BACKDROP_SERVER": f"http://127.0.0.1:{free_port()}",
           "BACKDROP_VIDEO_INPUT": str(tmp_path / "none.mp4"),
           "BACKDROP_VIDEO_OUTPUT": str(tmp_path / "none-out.mp4")}
    done = subprocess.run([str(jupyter), "execute", str(NOTEBOOK)], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode != 0
    assert "Error" in done.stderr

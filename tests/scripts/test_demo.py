"""scripts/demo.py (``make demo``): it says where the result is once, and leaves no
``backdrop-demo-*`` folder in the temporary folder unless something failed (issue 25).

The fast tests run the demo's own code with the services and the client replaced by fakes
(what they print and return is what the real ones do); the slow one runs the real demo.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from types import SimpleNamespace

import pytest

from service_common.config import REPO_ROOT
from service_common.serve import ServiceError

DEMO = REPO_ROOT / "scripts" / "demo.py"


def _demo():
    spec = importlib.util.spec_from_file_location("demo", DEMO)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class _Service:
    """What the demo reads of a service: its name and URL; it writes its log where told."""

    def __init__(self, name: str, port: int, *, log_path: Path, **_kwargs) -> None:
        self.name, self.url, self.log_path = name, f"http://127.0.0.1:{port}", log_path


def _fake(monkeypatch, tmp_path: Path, *, client_exit: int = 0, start_error: BaseException | None = None):
    """The demo module with fake services and client, its temporary folder ``tmp_path/tmp``."""
    demo = _demo()
    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    monkeypatch.setattr(demo, "Service", _Service)

    @contextlib.contextmanager
    def running(*services):
        for svc in services:
            svc.log_path.write_text(f"{svc.name} log\n")
        if start_error is not None:
            raise start_error
        yield services

    def client(cmd, **kwargs):
        # the image client prints the path it wrote on stdout, as client/cli.py does: into
        # the pipe when the demo captures it, else onto the demo's own output
        output = Path(cmd[cmd.index("-m") + 3])
        printed = ""
        if client_exit == 0:
            output.write_bytes(b"jpeg")
            printed = f"{output}\n"
        captured = kwargs.get("stdout") == subprocess.PIPE or kwargs.get("capture_output")
        if not captured:
            sys.stdout.write(printed)
        return subprocess.CompletedProcess(cmd, client_exit, stdout=printed if captured else None)

    monkeypatch.setattr(demo, "running", running)
    ready = SimpleNamespace(json=lambda: {"backend": "modnet"})
    monkeypatch.setattr(demo.requests, "get", lambda *_a, **_k: ready)
    monkeypatch.setattr(demo.subprocess, "run", client)
    return demo, temp


def _leftovers(temp: Path) -> list[Path]:
    return sorted(temp.glob("backdrop-demo-*"))


def test_it_prints_the_result_once_and_removes_its_folder(monkeypatch, tmp_path, capsys):
    demo, temp = _fake(monkeypatch, tmp_path)
    output = tmp_path / "out.jpg"
    assert demo.main(["--output", str(output)]) == 0
    out = capsys.readouterr().out
    assert out.count(str(output.resolve())) == 1, out
    assert f"result: {output.resolve()}" in out
    assert "backends used: segmentation = modnet" in out and "services stopped" in out
    assert _leftovers(temp) == []


def test_a_failed_client_keeps_the_logs_and_names_them(monkeypatch, tmp_path, capsys):
    demo, temp = _fake(monkeypatch, tmp_path, client_exit=1)
    assert demo.main(["--output", str(tmp_path / "out.jpg")]) == 1
    out = capsys.readouterr().out
    [kept] = _leftovers(temp)
    assert f"service logs kept in {kept}" in out and "result:" not in out
    assert (kept / "matting.log").read_text() == "matting log\n"


def test_a_service_that_does_not_start_keeps_the_logs(monkeypatch, tmp_path, capsys):
    demo, temp = _fake(monkeypatch, tmp_path, start_error=ServiceError("port 5000 is busy"))
    assert demo.main(["--output", str(tmp_path / "out.jpg")]) == 1
    err = capsys.readouterr()
    [kept] = _leftovers(temp)
    assert f"service logs kept in {kept}" in err.err and "segmentation log" in err.out


def test_ctrl_c_removes_the_folder(monkeypatch, tmp_path, capsys):
    demo, temp = _fake(monkeypatch, tmp_path, start_error=KeyboardInterrupt())
    assert demo.main(["--output", str(tmp_path / "out.jpg")]) == 130
    assert "interrupted" in capsys.readouterr().err
    assert _leftovers(temp) == []


@pytest.mark.slow
def test_the_real_demo(tmp_path):
    """``make demo``'s command with its temporary folder in ``tmp_path``: both services, the
    client, the result (a minute or two on 2 cores)."""
    temp = tmp_path / "tmp"
    temp.mkdir()
    output = tmp_path / "astronaut.result.jpg"
    env = {**os.environ, "TMPDIR": str(temp)}
    done = subprocess.run([sys.executable, str(DEMO), "--output", str(output)], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count(str(output.resolve())) == 1, done.stdout
    assert output.stat().st_size > 0
    assert _leftovers(temp) == []

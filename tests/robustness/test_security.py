"""Security: no server-side URL fetching, safe checkpoint loading, no debug mode, request ids.

Through the real gunicorn services where a user would see it (``stack``), in-process where
the property is the app's configuration.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from apierrors import assert_api_error, assert_no_leak
from httpfake import FakeServer, Reply
from robust_checks import check_removebg_error
from robust_inputs import photo_png, trimap_png

from service_common.config import REPO_ROOT, Settings

PHOTO = photo_png(64, 48, seed=9)
TRI = trimap_png(64, 48)


# ------------------------------------------------------------------ no URL fetching


@pytest.fixture(scope="module")
def trap() -> Iterator[FakeServer]:
    """A local HTTP server that would answer a real photo to any request (it must get none)."""
    with FakeServer(lambda request: Reply(200, PHOTO, "image/png")) as server:
        yield server


@pytest.mark.parametrize("field", ["image_url", "bg_image_url"])
@pytest.mark.parametrize("where", ["form", "query"])
@pytest.mark.parametrize("with_image", [True, False])
def test_urls_are_refused_and_never_fetched(stack, trap, field, where, with_image):
    """remove.bg clients may send ``image_url``/``bg_image_url``: a clear 400 naming the field
    on both endpoints, and the URL (a server that would answer a real photo) is not touched."""
    for path, image_field in (("/v1/matte", "image"), ("/v1.0/removebg", "image_file")):
        files = {image_field: ("p.png", PHOTO)} if with_image else None
        if path == "/v1/matte" and with_image:
            files["trimap"] = ("t.png", TRI)
        fields = {field: trap.url + "/photo.png"}
        response = requests.post(stack.mat.url + path, files=files, timeout=30,
                                 data=fields if where == "form" else None,
                                 params=fields if where == "query" else None)
        if path == "/v1/matte":
            error = assert_api_error(response, 400, "invalid_parameter")
            assert error["field"] == field and "URL" in error["message"]
        else:
            error = check_removebg_error(response, 400, "invalid_parameter")
            assert error["source"] == {"parameter": field}
    assert trap.received == []


# ------------------------------------------------------------------ checkpoints


def _python_files() -> list[Path]:
    """Every Python file of the repository (not of the virtualenv)."""
    skip = {".venv", "venv", ".git", "build", "node_modules", "models", "videos"}
    top = [p for p in REPO_ROOT.iterdir() if p.name not in skip and not p.name.startswith(".")]
    return [f for p in top for f in ([p] if p.suffix == ".py" else p.rglob("*.py") if p.is_dir() else [])]


def _keyword_is(node: ast.Call, name: str, value: object) -> bool:
    return any(k.arg == name and isinstance(k.value, ast.Constant) and k.value.value is value
               for k in node.keywords)


def _unsafe_loads(path: Path) -> list[str]:
    """``torch.load(...)`` calls without ``weights_only=True``, pickle loads, and
    ``np.load(..., allow_pickle=<not False>)`` in ``path``."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    torch_load_names = {"torch.load"} | ({"load"} if _imported_from_torch(tree) else set())
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name = ast.unparse(node.func)
        if name in torch_load_names:
            unsafe = not _keyword_is(node, "weights_only", True)
        elif name in ("np.load", "numpy.load"):
            unsafe = any(k.arg == "allow_pickle" for k in node.keywords) and not _keyword_is(
                node, "allow_pickle", False)
        else:
            unsafe = name in ("pickle.load", "pickle.loads", "torch.jit.load", "dill.load")
        if unsafe:
            found.append(f"{path.relative_to(REPO_ROOT)}:{node.lineno}: {name}(...)")
    return found


def _imported_from_torch(tree: ast.Module) -> bool:
    """``from torch import load`` somewhere in the module."""
    return any(isinstance(n, ast.ImportFrom) and n.module == "torch"
               and any(a.name == "load" for a in n.names) for n in ast.walk(tree))


def test_checkpoints_are_loaded_only_with_weights_only():
    files = _python_files()
    assert len(files) > 50 and any(p.name == "checkpoint.py" for p in files)
    calls = sum(p.read_text(encoding="utf-8").count("torch.load(") for p in files)
    assert calls >= 3  # the scan sees the real calls (FBA, Mask R-CNN, weights check)
    unsafe = [hit for p in files for hit in _unsafe_loads(p)]
    assert unsafe == [], "unsafe deserialisation:\n" + "\n".join(unsafe)


def test_the_scan_catches_an_unsafe_load(tmp_path, monkeypatch):
    """The checker itself: it flags what it must flag (so that its silence above means
    something)."""
    bad = tmp_path / "bad.py"
    bad.write_text("import torch\nfrom torch import load\n"
                   "a = torch.load('x.pth')\nb = torch.load('x', weights_only=False)\n"
                   "c = load('y')\nd = torch.load('z', map_location='cpu', weights_only=True)\n")
    monkeypatch.setattr("test_security.REPO_ROOT", tmp_path)
    assert [hit.split(": ")[0] for hit in _unsafe_loads(bad)] == ["bad.py:3", "bad.py:4", "bad.py:5"]


# ------------------------------------------------------------------ no debug mode


@pytest.fixture
def debug_env(monkeypatch) -> None:
    monkeypatch.setenv("FLASK_DEBUG", "1")
    monkeypatch.setenv("FLASK_ENV", "development")


def _assert_not_debug(app) -> None:
    assert app.debug is False and app.config["DEBUG"] is False
    assert not app.config.get("PROPAGATE_EXCEPTIONS")

    @app.get("/__boom")
    def _boom():
        raise RuntimeError("secret internals at /work/main/x.py")

    response = app.test_client().get("/__boom")
    assert_api_error(response, 500, "internal_error")  # no traceback, no /work/ path
    assert "secret" not in response.get_data(as_text=True)


def test_segmentation_app_has_no_debug_mode(debug_env, models_dir):
    from segmentation_api import create_app

    _assert_not_debug(create_app(Settings(models_dir=models_dir, segmentation_backend="u2netp",
                                          log_level="ERROR")))


def test_matting_app_has_no_debug_mode(debug_env):
    from matting_api import create_app
    from matting_api.backends.closed_form import ClosedFormBackend

    _assert_not_debug(create_app(Settings(matting_backend="closed_form", log_level="ERROR"),
                                 matting_backend=ClosedFormBackend()))


def test_gunicorn_services_with_flask_debug_set_answer_plain_json(stack):
    """``stack`` runs with FLASK_DEBUG=1 in its environment: errors stay JSON, no debugger."""
    for url in (stack.seg.url, stack.mat.url):
        for response in (requests.get(url + "/nowhere", timeout=10),
                         requests.put(url + "/healthz", timeout=10),
                         requests.get(url + "/console", timeout=10)):  # werkzeug's debugger
            assert response.status_code in (404, 405)
            assert response.headers["Content-Type"] == "application/json"
            assert_no_leak(response)


# ------------------------------------------------------------------ request ids


def test_request_id_comes_back_and_reaches_both_logs(stack):
    rid = "trace-7f3a-robustness"
    ok = requests.post(stack.mat.url + "/v1/matte", files={"image": ("p.png", PHOTO)},
                       headers={"X-Request-Id": rid}, timeout=60)
    assert ok.status_code == 200 and ok.headers["X-Request-Id"] == rid
    bad = requests.post(stack.mat.url + "/v1/matte", data={"bg_mode": "sepia"},
                        files={"image": ("p.png", PHOTO)}, headers={"X-Request-Id": rid + "-2"},
                        timeout=30)
    assert assert_api_error(bad, 400, "invalid_parameter")["request_id"] == rid + "-2"
    seg = requests.post(stack.seg.url + "/v1/trimap", files={"image": ("t.txt", b"text")},
                        headers={"X-Request-Id": rid + "-3"}, timeout=30)
    assert assert_api_error(seg, 400, "invalid_image")["request_id"] == rid + "-3"
    mat_log = stack.mat_log.read_text(errors="replace")
    seg_log = stack.seg_log.read_text(errors="replace")
    assert f"[{rid}]" in mat_log and f"[{rid}-2]" in mat_log
    assert f"[{rid}]" in seg_log, "the matting service forwards the id to the segmentation service"
    assert f"[{rid}-3]" in seg_log


@pytest.mark.parametrize("given", ["x" * 65, "a b", "id\u00e9", "<script>", "a;b"])
def test_unsafe_request_ids_are_replaced(stack, given):
    """An id that could forge log lines or headers is not echoed: a fresh one is made."""
    response = requests.get(stack.seg.url + "/nowhere",
                            headers={"X-Request-Id": given.encode("utf-8")}, timeout=10)
    error = assert_api_error(response, 404, "not_found")
    assert error["request_id"] != given and 8 <= len(error["request_id"]) <= 64

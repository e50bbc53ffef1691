"""The clients are thin: they need requests, numpy, Pillow, OpenCV and tqdm, nothing of the
services (no Flask, no torch, no onnxruntime, no pymatting, no SciPy).

The check runs in a fresh interpreter whose imports of any other third-party package fail, as
they would in an environment where only those five are installed (``pip install requests
numpy pillow opencv-python-headless tqdm``): every client module and both command lines'
``--help`` must work there.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

from service_common.config import REPO_ROOT

#: Top-level packages a thin client may import: the five it needs and what they need, and
#: the repository's shared, service-free packages.
ALLOWED = ("requests", "urllib3", "certifi", "charset_normalizer", "idna", "numpy", "PIL", "cv2",
           "tqdm", "client", "contract", "render", "trimap")

PROGRAM = textwrap.dedent("""
    import importlib, importlib.abc, pathlib, sys
    allowed = set(sys.argv[1].split(",")) | set(sys.stdlib_module_names)
    refused = []

    class OnlyThinDependencies(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            top = name.split(".")[0]
            if top not in allowed and not top.startswith("_"):
                refused.append(name)
                raise ModuleNotFoundError(f"No module named {name!r} (not installed here)")
            return None

    sys.meta_path.insert(0, OnlyThinDependencies())
    names = sorted(p.stem for p in pathlib.Path("client").glob("*.py") if p.stem != "__main__")
    assert {"api", "cli", "video", "video_cli", "video_io"} <= set(names), names
    for module in [f"client.{n}".removesuffix(".__init__") for n in names] + sys.argv[2:]:
        importlib.import_module(module)
    from client import cli, video_cli
    for main in (cli.main, video_cli.main):
        try:
            main(["--help"])
        except SystemExit as exc:
            assert exc.code == 0, exc.code
    # the five try optional speed-ups (brotli, simplejson, ...): refused and fine; but nothing
    # may even try a package of the services
    services = {"flask", "werkzeug", "gunicorn", "torch", "torchvision", "onnxruntime",
                "pymatting", "numba", "scipy", "matting_api", "segmentation_api", "service_common"}
    assert not [n for n in refused if n.split(".")[0] in services], refused
    print("thin")
""")


def test_client_imports_nothing_of_the_services():
    proc = subprocess.run([sys.executable, "-c", PROGRAM, ",".join(ALLOWED)], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().endswith("thin")
    assert "usage: backdrop" in proc.stdout and "usage: backdrop-video" in proc.stdout


def test_the_blocker_would_catch_a_service_import():
    """The check can fail: importing a service module under it is refused."""
    proc = subprocess.run([sys.executable, "-c", PROGRAM, ",".join(ALLOWED), "matting_api.pipeline"],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0 and "not installed here" in proc.stderr

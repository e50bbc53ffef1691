"""``pip install backdrop`` serves the offline defaults: pyproject.toml's dependencies cover
every third-party module the shipped packages import.

Static, nothing is installed: every ``import`` statement of the packages that
``pip install .`` ships (pyproject's ``packages.find``), at module level or inside a
function, is compared with the distributions ``[project].dependencies`` declares. torch and
torchvision are the one exception: they are the ``torch`` extra's (Mask R-CNN, DeepLabV3,
FBA Matting), and the slim install must not need them. A new third-party import without its
dependency fails here, before a user's plain install crashes with ``ModuleNotFoundError``.
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from collections import defaultdict
from fnmatch import fnmatch
from pathlib import Path

import pytest

from service_common.config import REPO_ROOT

PYPROJECT = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
PROJECT = PYPROJECT["project"]
SETUPTOOLS = PYPROJECT["tool"]["setuptools"]

#: The modules only the torch models import; the ``torch`` extra brings them.
TORCH_ONLY = {"torch", "torchvision"}
#: Import names whose distribution is spelt otherwise on PyPI.
DISTRIBUTION = {
    "cv2": "opencv-python-headless",
    "PIL": "pillow",
    "imageio_ffmpeg": "imageio-ffmpeg",
    "yaml": "pyyaml",
}
#: Modules that are part of a declared dependency's own API (Flask is built on Werkzeug and
#: requires it; requests on urllib3): the import is covered by that dependency.
COMES_WITH = {"werkzeug": "flask", "urllib3": "requests"}


def _requirement_name(spec: str) -> str:
    """``"flask>=3.0,<4"`` -> ``"flask"`` (normalised as PyPI does)."""
    name = re.split(r"[<>=!~ ;\[]", spec, maxsplit=1)[0]
    return re.sub(r"[-_.]+", "-", name).lower()


def _shipped_packages() -> list[str]:
    """The top-level packages ``pip install .`` ships, from pyproject's include patterns."""
    patterns = SETUPTOOLS["packages"]["find"]["include"]
    return sorted(p.parent.name for p in REPO_ROOT.glob("*/__init__.py")
                  if any(fnmatch(p.parent.name, pattern) for pattern in patterns))


SHIPPED = _shipped_packages()


def _third_party_imports() -> dict[str, set[str]]:
    """Top-level name of every absolute import in the shipped packages that is neither the
    standard library nor one of them -> the files importing it."""
    found: dict[str, set[str]] = defaultdict(set)
    for package in SHIPPED:
        for path in sorted((REPO_ROOT / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    top = name.split(".")[0]
                    if top not in sys.stdlib_module_names and top not in SHIPPED:
                        found[top].add(str(path.relative_to(REPO_ROOT)))
    return found


IMPORTS = _third_party_imports()


def _distribution(module: str) -> str:
    return _requirement_name(DISTRIBUTION.get(module, module))


def test_the_shipped_packages_are_the_project_packages():
    assert SHIPPED == ["client", "contract", "matting_api", "render", "segmentation_api",
                       "service_common", "trimap"]


def test_the_scan_sees_what_the_offline_backends_import():
    """The scan finds the imports the plain install used to miss (numba, onnxruntime,
    pymatting: they were extras) and those inside functions (torch, in the builders)."""
    assert {"numba", "onnxruntime", "pymatting", "cv2", "flask", "numpy", "torch"} <= set(IMPORTS)
    assert any(path.startswith("matting_api/backends/") for path in IMPORTS["numba"])


def test_the_dependencies_cover_every_import_of_the_slim_services_and_clients():
    declared = {_requirement_name(spec) for spec in PROJECT["dependencies"]}
    missing = {
        module: sorted(paths) for module, paths in IMPORTS.items()
        if module not in TORCH_ONLY
        and _distribution(COMES_WITH.get(module, module)) not in declared
    }
    assert not missing, (
        "imported by the shipped packages but not in pyproject.toml's [project] dependencies "
        f"(add the distribution there, or to DISTRIBUTION here if PyPI spells it otherwise): {missing}")


def test_torch_stays_an_extra():
    declared = {_requirement_name(spec) for spec in PROJECT["dependencies"]}
    assert not declared & TORCH_ONLY, "torch and torchvision belong to the torch extra only"
    torch_extra = {_requirement_name(spec) for spec in PROJECT["optional-dependencies"]["torch"]}
    assert torch_extra >= TORCH_ONLY
    assert TORCH_ONLY & set(IMPORTS), "no torch import found: is the scan still right?"


@pytest.mark.parametrize("module", sorted(COMES_WITH))
def test_modules_taken_from_a_dependency_are_still_imported(module):
    """An entry of COMES_WITH that nothing imports any more is stale: remove it."""
    assert module in IMPORTS


def test_the_old_slim_extras_add_nothing():
    """``segmentation``, ``matting`` and ``video`` stay as names (older commands, environment-*.yml,
    older container builds' EXTRAS) but bring nothing: the package's dependencies are the slim set."""
    extras = PROJECT["optional-dependencies"]
    for name in ("segmentation", "matting", "video"):
        assert extras.get(name) == [], name


def test_the_console_scripts_exist():
    for command, target in PROJECT["scripts"].items():
        module, function = target.split(":")
        path = REPO_ROOT / Path(*module.split("."))
        path = path / "__init__.py" if path.is_dir() else path.with_suffix(".py")
        tree = ast.parse(path.read_text(encoding="utf-8"))
        defined = {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}
        assert function in defined, f"{command}: {target} does not exist"
        assert module.split(".")[0] in SHIPPED, command


def test_the_page_files_are_package_data():
    """``pip install .`` (not editable) ships the web page: every file of matting_api/static
    matches a package-data pattern."""
    patterns = SETUPTOOLS["package-data"]["matting_api"]
    static = REPO_ROOT / "matting_api" / "static"
    for path in static.iterdir():
        relative = str(path.relative_to(REPO_ROOT / "matting_api"))
        assert any(fnmatch(relative, pattern) for pattern in patterns), relative

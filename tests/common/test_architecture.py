"""ARCHITECTURE.md's import rules, checked on the sources (static: every import statement)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from service_common.config import REPO_ROOT

PACKAGES = ("contract", "trimap", "render", "service_common", "segmentation_api", "matting_api", "client")

#: package -> first-party packages it must not import.
FORBIDDEN = {
    "contract": {"trimap", "render", "service_common", "segmentation_api", "matting_api", "client"},
    "trimap": {"render", "service_common", "segmentation_api", "matting_api", "client"},
    "render": {"trimap", "service_common", "segmentation_api", "matting_api", "client"},
    "client": {"service_common", "segmentation_api", "matting_api"},
    "service_common": {"client"},
    "segmentation_api": {"matting_api", "client"},
    "matting_api": {"segmentation_api", "client"},
}
#: Third-party packages the pure packages must not import.
HEAVY = {"flask", "werkzeug", "torch", "torchvision", "onnxruntime", "pymatting", "gunicorn"}


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", PACKAGES)
def test_import_rules(package):
    for path in sorted((REPO_ROOT / package).rglob("*.py")):
        imported = _imports(path)
        assert not imported & FORBIDDEN[package], (path, imported & FORBIDDEN[package])
        if package in ("contract", "trimap", "render", "client"):
            assert not imported & HEAVY, (path, imported & HEAVY)


def test_only_torch_runtime_imports_torch_in_service_common():
    for path in (REPO_ROOT / "service_common").glob("*.py"):
        if path.name != "torch_runtime.py":
            assert "torch" not in _imports(path), path


def test_the_page_names_every_package_and_the_tree_has_no_other():
    page = (REPO_ROOT / "ARCHITECTURE.md").read_text()
    for package in PACKAGES:
        assert f"`{package}/`" in page, package
    on_disk = {p.parent.name for p in REPO_ROOT.glob("*/__init__.py")}
    assert on_disk == {*PACKAGES, "bench"}, on_disk


@pytest.mark.parametrize("package", PACKAGES)
def test_nothing_shipped_imports_the_benches(package):
    """bench/ measures peers (RVM's GPL model among them): the services and clients never
    import it."""
    for path in sorted((REPO_ROOT / package).rglob("*.py")):
        assert "bench" not in _imports(path), path

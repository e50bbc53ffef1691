"""The model registry: what the model modules declare, and everything that reads it."""

from __future__ import annotations

import subprocess
import sys
import typing

import pytest

from contract.vocab import MASK_KINDS, MATTING_BACKENDS, SEGMENTATION_BACKENDS
from service_common import registry, weights
from service_common.config import REPO_ROOT


def test_the_contract_names_are_the_registered_ones() -> None:
    """The clients' names (``contract.vocab``) are the registry's, ``auto`` first."""
    assert SEGMENTATION_BACKENDS[0] == MATTING_BACKENDS[0] == "auto"
    assert set(SEGMENTATION_BACKENDS[1:]) == set(registry.names("segmentation"))
    assert set(MATTING_BACKENDS[1:]) == set(registry.names("matting"))
    assert len(set(SEGMENTATION_BACKENDS)) == len(SEGMENTATION_BACKENDS)


def test_discovery_imports_no_torch_and_no_onnxruntime() -> None:
    code = ("import sys; from service_common import registry; r = registry.all_models(); "
            "assert len(r) == 9, r; "
            "assert 'torch' not in sys.modules and 'onnxruntime' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, check=True)


@pytest.mark.parametrize("entry", registry.models("segmentation").values(), ids=lambda e: e.name)
def test_each_segmentation_model_declares_what_its_backend_is(entry: registry.ModelEntry) -> None:
    assert entry.mask_kind in MASK_KINDS and entry.classes and entry.weights is not None
    backend_class = typing.get_type_hints(entry.loader)["return"]
    assert backend_class.mask_kind == entry.mask_kind
    assert entry.module.startswith("segmentation_api.backends.")


def test_auto_roles_and_torch() -> None:
    roles = {(e.service, e.auto): e.name for e in registry.all_models() if e.auto}
    assert roles == {("segmentation", "preferred"): "maskrcnn", ("segmentation", "people"): "modnet",
                     ("segmentation", "other"): "u2netp", ("matting", "preferred"): "fba",
                     ("matting", "fallback"): "closed_form", ("segmentation", "video"): "selfie"}
    torch_models = {e.name for e in registry.all_models() if e.torch}
    assert torch_models == {"maskrcnn", "maskrcnn_v2", "deeplabv3", "deeplabv3_mobilenet", "fba"}


def test_the_weights_command_reads_the_registry() -> None:
    files = weights.registry()
    assert set(files) == {e.weights.key for e in registry.all_models() if e.weights is not None}
    assert len({w.filename for w in files.values()}) == len(files)
    offline = ("u2netp", "modnet", "selfie")
    assert weights.defaults() == (offline, (*offline, "maskrcnn", "fba"))


def test_openapi_lists_the_registered_matting_models() -> None:
    from matting_api.openapi import build_openapi

    ready = build_openapi()["components"]["schemas"]["Ready"]["properties"]
    assert set(ready["backend"]["enum"]) == set(registry.names("matting"))


def test_register_model_refuses_clashes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "_ENTRIES", dict(registry._ENTRIES))

    def other_loader(settings: object, name: str) -> None:
        return None

    kwargs = {"weights": None, "torch": False, "title": "t", "what": "w"}
    with pytest.raises(ValueError, match="registered twice"):
        registry.register_model("matting", "fba", **kwargs)(other_loader)
    with pytest.raises(ValueError, match="auto role"):
        registry.register_model("matting", "new_one", auto="fallback", **kwargs)(other_loader)
    with pytest.raises(ValueError, match="mask_kind"):
        registry.register_model("segmentation", "new_one", **kwargs)(other_loader)
    with pytest.raises(ValueError, match="unknown service"):
        registry.register_model("video", "new_one", **kwargs)(other_loader)
    assert registry.register_model("matting", "new_one", **kwargs)(other_loader) is other_loader
    assert registry.entry("matting", "new_one") is not None

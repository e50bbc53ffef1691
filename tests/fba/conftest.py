"""Fixtures for the FBA Matting tests.

Reference data in ``tests/fba/data`` (copied from the shared FBA reference material; the official
implementation produced the arrays with the synthetic weights described below):

* ``manifest.json``: the 197 official checkpoint keys in state-dict order with shapes.
* ``weights_checksums.json``: per-key ``sum``/``abs_sum``/``first4`` of the synthetic weights.
* ``case_a.npz`` (64×80) / ``case_c.npz`` (61×83): inputs, network inputs, stages and outputs.
  ``case_a`` keeps only the first output channel of the standardised ``conv_up1.0`` weight.
* ``fusion_ref.npz``: a standalone check of the fusion step.

Synthetic weights (the recipe of the reference material, :mod:`bench.generated_weights`): for entry ``i`` of
the manifest, a fresh CPU generator seeded with ``1234 + i`` draws ``randn(shape) * 0.05``
(float32). ``num_batches_tracked``/``running_var`` rules exist in the recipe but never apply to
FBA (no buffers).

Building and loading the model takes ~2 s, so the model and the case-a stages are
session-scoped and shared; tests must not modify them.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from bench.generated_weights import fba_state_dict, fba_weight
from matting_api.backends.fba.build import build_model
from matting_api.backends.fba.model import FBAMatting

DATA = Path(__file__).parent / "data"

NET_INPUT_KEYS = ("net_image", "net_two_chan_trimap", "net_image_n", "net_trimap_transformed")


def synthetic_weight(index: int, shape: list[int], key: str) -> torch.Tensor:
    """The recipe's deterministic tensor for manifest entry ``index``."""
    return fba_weight(index, shape, key)


def make_synthetic_state_dict(entries: list[dict[str, Any]]) -> OrderedDict[str, torch.Tensor]:
    """The full synthetic state dict, in manifest order."""
    return fba_state_dict(entries)


@pytest.fixture(scope="session")
def fba_data_dir() -> Path:
    return DATA


@pytest.fixture(scope="session")
def manifest_entries() -> list[dict[str, Any]]:
    with (DATA / "manifest.json").open() as fh:
        return json.load(fh)["entries"]


@pytest.fixture(scope="session")
def weights_checksums() -> dict[str, dict[str, Any]]:
    with (DATA / "weights_checksums.json").open() as fh:
        return json.load(fh)


@pytest.fixture(scope="session")
def synthetic_state_dict(
    manifest_entries: list[dict[str, Any]],
) -> OrderedDict[str, torch.Tensor]:
    return make_synthetic_state_dict(manifest_entries)


@pytest.fixture(scope="session")
def fba_model(synthetic_state_dict: OrderedDict[str, torch.Tensor]) -> FBAMatting:
    """FBA with the synthetic weights, eval mode, CPU (shared: do not modify)."""
    return build_model(synthetic_state_dict, device="cpu")


@pytest.fixture(scope="session")
def load_case() -> Callable[[str], dict[str, np.ndarray]]:
    cache: dict[str, dict[str, np.ndarray]] = {}

    def load(name: str) -> dict[str, np.ndarray]:
        if name not in cache:
            with np.load(DATA / f"{name}.npz") as npz:
                cache[name] = {k: npz[k] for k in npz.files}
        return cache[name]

    return load


@pytest.fixture(scope="session")
def case_a(load_case: Callable[[str], dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    return load_case("case_a")


@pytest.fixture(scope="session")
def case_c(load_case: Callable[[str], dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    return load_case("case_c")


def _net_inputs(case: dict[str, np.ndarray]) -> list[torch.Tensor]:
    return [torch.from_numpy(case[k]) for k in NET_INPUT_KEYS]


@pytest.fixture(scope="session")
def net_inputs() -> Callable[[dict[str, np.ndarray]], list[torch.Tensor]]:
    """``net_inputs(case)``: the reference forward arguments (image, two_chan_trimap, image_n,
    trimap_transformed) of a case as (1, C, H8, W8) float32 tensors."""
    return _net_inputs


#: Reference stage name -> the submodule whose output it is (read with forward hooks).
STAGE_MODULES = {
    "enc_conv1": "encoder.relu",
    "enc_layer1": "encoder.layer1",
    "enc_layer2": "encoder.layer2",
    "enc_layer3": "encoder.layer3",
    "enc_layer4": "encoder.layer4",
    "dec_conv_up1": "decoder.conv_up1",
    "dec_conv_up2": "decoder.conv_up2",
    "dec_conv_up3": "decoder.conv_up3",
    "dec_raw_logits": "decoder.conv_up4",
}


def forward_stages(model: FBAMatting, *inputs: torch.Tensor) -> dict[str, torch.Tensor]:
    """The model's output (``net_out``) and every stage of :data:`STAGE_MODULES`, recorded by
    forward hooks on the production forward pass (the model itself records nothing)."""
    seen: dict[str, torch.Tensor] = {}
    modules = dict(model.named_modules())
    hooks = [modules[path].register_forward_hook(
        lambda _m, _i, out, name=name: seen.__setitem__(name, out.detach().clone()))
        for name, path in STAGE_MODULES.items()]
    try:
        seen["net_out"] = model(*inputs)
    finally:
        for hook in hooks:
            hook.remove()
    return seen


@pytest.fixture(scope="session")
def stages_of() -> Callable[..., dict[str, torch.Tensor]]:
    """``stages_of(model, *inputs)``: :func:`forward_stages`."""
    return forward_stages


@pytest.fixture(scope="session")
def case_a_stages(fba_model: FBAMatting, case_a: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Every stage of the model on case a's reference network inputs, as numpy."""
    inputs = _net_inputs(case_a)
    with torch.inference_mode():
        stages = forward_stages(fba_model, *inputs)
    return {k: v.numpy() for k, v in stages.items()}

"""Synthetic weights, key layout and strict loading."""

from __future__ import annotations

import math
from collections import OrderedDict
from typing import Any

import numpy as np
import pytest
import torch

from matting_api.backends.fba.layers import WSConv2d
from matting_api.backends.fba.model import FBAMatting


def test_synthetic_weights_match_recipe_checksums(
    synthetic_state_dict: OrderedDict[str, torch.Tensor],
    weights_checksums: dict[str, dict[str, Any]],
) -> None:
    assert list(synthetic_state_dict) == list(weights_checksums)
    for key, ref in weights_checksums.items():
        values = synthetic_state_dict[key].numpy().astype(np.float64).ravel()
        assert values[:4].tolist() == ref["first4"], key
        assert math.isclose(values.sum(), ref["sum"], rel_tol=1e-9, abs_tol=1e-9), key
        assert math.isclose(np.abs(values).sum(), ref["abs_sum"], rel_tol=1e-9), key


def test_recipe_spot_values(synthetic_state_dict: OrderedDict[str, torch.Tensor]) -> None:
    first = synthetic_state_dict["encoder.conv1.weight"].ravel()[:4].tolist()
    assert first == pytest.approx([-0.0055859284, -0.0248295050, 0.0081536854, -0.0440843888])
    assert sum(t.numel() for t in synthetic_state_dict.values()) == 34_693_031


def test_state_dict_keys_and_order_match_manifest(
    fba_model: FBAMatting, manifest_entries: list[dict[str, Any]]
) -> None:
    state = fba_model.state_dict()
    assert list(state) == [e["key"] for e in manifest_entries]
    for entry in manifest_entries:
        assert list(state[entry["key"]].shape) == entry["shape"], entry["key"]
        assert state[entry["key"]].dtype == torch.float32
    assert sum(1 for _ in fba_model.buffers()) == 0


def test_module_types_and_conv_geometry_match_manifest(
    fba_model: FBAMatting, manifest_entries: list[dict[str, Any]]
) -> None:
    modules = dict(fba_model.named_modules())
    for entry in manifest_entries:
        module = modules[entry["key"].rsplit(".", 1)[0]]
        kind = entry["module_type"]
        if kind == "GroupNorm":
            cfg = entry["groupnorm"]
            assert isinstance(module, torch.nn.GroupNorm), entry["key"]
            assert (module.num_groups, module.num_channels, module.eps) == (
                cfg["num_groups"],
                cfg["num_channels"],
                cfg["eps"],
            )
            continue
        conv = entry["conv"]
        assert isinstance(module, torch.nn.Conv2d), entry["key"]
        assert isinstance(module, WSConv2d) == (kind == "Conv2d_WS"), entry["key"]
        assert list(module.kernel_size) == conv["kernel"], entry["key"]
        assert list(module.stride) == conv["stride"], entry["key"]
        assert list(module.padding) == conv["padding"], entry["key"]
        assert list(module.dilation) == conv["dilation"], entry["key"]
        assert (module.bias is not None) == conv["bias"], entry["key"]
    ws_count = sum(isinstance(m, WSConv2d) for m in fba_model.modules())
    assert ws_count == 61


def test_strict_load_round_trip(
    fba_model: FBAMatting, synthetic_state_dict: OrderedDict[str, torch.Tensor]
) -> None:
    state = fba_model.state_dict()
    for key, tensor in synthetic_state_dict.items():
        assert torch.equal(state[key], tensor), key
    # The stored parameters stay raw: standardisation happens on the fly, never in place.
    assert fba_model.training is False

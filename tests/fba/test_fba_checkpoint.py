"""Checkpoint loading: the happy path and clear, safe failures."""

from __future__ import annotations

import os
import pickle
from collections import OrderedDict
from pathlib import Path

import pytest
import torch

from matting_api.backends.fba.build import build_model
from matting_api.backends.fba.checkpoint import (
    check_state_dict,
    load_into,
    load_state_dict_file,
    unwrap_state_dict,
)
from matting_api.backends.fba.model import FBAMatting
from service_common.weights import ModelError

HINT = "github.com/MarcoForte/FBA_Matting"


@pytest.fixture(scope="module")
def expected_shapes(fba_model: FBAMatting) -> dict[str, torch.Size]:
    return {k: v.shape for k, v in fba_model.state_dict().items()}


@pytest.fixture(scope="module")
def checkpoint_file(
    tmp_path_factory: pytest.TempPathFactory,
    synthetic_state_dict: OrderedDict[str, torch.Tensor],
) -> Path:
    path = tmp_path_factory.mktemp("ckpt") / "FBA.pth"
    torch.save(synthetic_state_dict, path)
    return path


def _check_message(exc: pytest.ExceptionInfo[ModelError], *parts: str) -> None:
    message = str(exc.value)
    assert HINT in message and "models/FBA.pth" in message and "make weights" in message
    for part in parts:
        assert part in message, (part, message)


def test_build_model_from_path_matches_in_memory(
    checkpoint_file: Path, fba_model: FBAMatting, case_a, net_inputs
) -> None:
    model = build_model(checkpoint_file, device="cpu")
    assert isinstance(model, FBAMatting) and not model.training
    inputs = net_inputs(case_a)
    with torch.inference_mode():
        assert torch.equal(model(*inputs), fba_model(*inputs))


def test_load_state_dict_file_returns_flat_cpu_dict(checkpoint_file: Path) -> None:
    state = load_state_dict_file(checkpoint_file)
    assert len(state) == 197
    assert all(t.device.type == "cpu" for t in state.values())


def test_wrapped_state_dict_is_unwrapped(tmp_path: Path, expected_shapes) -> None:
    inner = {k: torch.zeros(s) for k, s in list(expected_shapes.items())[:3]}
    path = tmp_path / "wrapped.pth"
    torch.save({"state_dict": inner, "epoch": 3}, path)
    state = load_state_dict_file(path)
    assert list(state) == list(inner)


def test_missing_and_unexpected_keys_are_named(
    synthetic_state_dict: OrderedDict[str, torch.Tensor], expected_shapes
) -> None:
    state = dict(synthetic_state_dict)
    del state["decoder.conv_up4.4.bias"]
    state["decoder.extra.weight"] = torch.zeros(1)
    with pytest.raises(ModelError) as exc:
        check_state_dict(expected_shapes, state)
    _check_message(exc, "1 missing keys: decoder.conv_up4.4.bias", "decoder.extra.weight")


def test_many_missing_keys_are_counted(expected_shapes) -> None:
    state = {"encoder.conv1.weight": torch.zeros(64, 11, 7, 7)}
    with pytest.raises(ModelError) as exc:
        check_state_dict(expected_shapes, state)
    _check_message(exc, "196 missing keys", "(and 191 more)")


def test_module_prefix_gets_a_hint(
    synthetic_state_dict: OrderedDict[str, torch.Tensor], expected_shapes
) -> None:
    state = {f"module.{k}": v for k, v in synthetic_state_dict.items()}
    with pytest.raises(ModelError) as exc:
        check_state_dict(expected_shapes, state)
    _check_message(exc, "197 unexpected keys", "'module.'")


def test_shape_mismatch_is_named(
    synthetic_state_dict: OrderedDict[str, torch.Tensor], expected_shapes
) -> None:
    state = dict(synthetic_state_dict)
    state["encoder.conv1.weight"] = torch.zeros(64, 3, 7, 7)  # a 3-channel ImageNet stem
    with pytest.raises(ModelError) as exc:
        check_state_dict(expected_shapes, state)
    _check_message(exc, "1 shape mismatches", "encoder.conv1.weight", "(64, 3, 7, 7)")


def test_load_into_does_not_touch_model_on_error(fba_model: FBAMatting) -> None:
    before = fba_model.encoder.conv1.weight.detach().clone()
    with pytest.raises(ModelError):
        load_into(fba_model, {"encoder.conv1.weight": torch.ones(64, 11, 7, 7)})
    assert torch.equal(fba_model.encoder.conv1.weight.detach(), before)


def test_build_model_with_wrong_keys_raises(tmp_path: Path) -> None:
    path = tmp_path / "other.pth"
    torch.save({"fc.weight": torch.zeros(2, 2)}, path)
    with pytest.raises(ModelError) as exc:
        build_model(path)
    _check_message(exc, "197 missing keys", "1 unexpected keys: fc.weight")


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ModelError) as exc:
        load_state_dict_file(tmp_path / "nope.pth")
    _check_message(exc, "does not exist")


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.pth"
    path.write_bytes(b"")
    with pytest.raises(ModelError) as exc:
        load_state_dict_file(path)
    _check_message(exc, "empty")


def test_truncated_file(tmp_path: Path) -> None:
    full = tmp_path / "full.pth"
    torch.save({"a": torch.arange(10_000, dtype=torch.float32)}, full)
    data = full.read_bytes()
    for cut in (len(data) // 2, len(data) - 10):
        path = tmp_path / f"cut{cut}.pth"
        path.write_bytes(data[:cut])
        with pytest.raises(ModelError) as exc:
            load_state_dict_file(path)
        _check_message(exc, "truncated")


def test_non_checkpoint_files(tmp_path: Path) -> None:
    for name, payload in {
        "html.pth": b"<!DOCTYPE html><html>Google Drive quota exceeded</html>",
        "png.pth": b"\x89PNG\r\n\x1a\n" + bytes(100),
    }.items():
        path = tmp_path / name
        path.write_bytes(payload)
        with pytest.raises(ModelError) as exc:
            load_state_dict_file(path)
        _check_message(exc, "not a torch checkpoint")


class _Exploit:
    """Unpickling this would create a directory (a harmless stand-in for arbitrary code)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (str(self.marker),))


@pytest.mark.parametrize("writer", ["torch.save", "pickle.dump"])
def test_arbitrary_pickle_is_refused_without_executing(tmp_path: Path, writer: str) -> None:
    marker = tmp_path / "executed"
    path = tmp_path / "evil.pth"
    payload = {"encoder.conv1.weight": _Exploit(marker)}
    if writer == "torch.save":
        torch.save(payload, path)
    else:
        with path.open("wb") as fh:
            pickle.dump(payload, fh, protocol=2)
    with pytest.raises(ModelError) as exc:
        load_state_dict_file(path)
    _check_message(exc, "refused")
    assert not marker.exists()


def test_non_state_dict_objects_are_refused(tmp_path: Path) -> None:
    for name, obj in {"list": [torch.zeros(2)], "nested": {"a": {"b": torch.zeros(1)}}}.items():
        path = tmp_path / f"{name}.pth"
        torch.save(obj, path)
        with pytest.raises(ModelError) as exc:
            load_state_dict_file(path)
        _check_message(exc)
    with pytest.raises(ModelError, match="not a state dict"):
        unwrap_state_dict(torch.zeros(3))

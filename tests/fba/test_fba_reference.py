"""Numerical agreement with the official implementation (reference arrays in tests/fba/data).

Tolerances are those of the reference spec: 1e-6 for pre-processing tensors, 1e-5 for every
stage and output (identical official runs differ by up to ~7e-7 on intermediates). The stages
matter: leaving out WS or applying it twice shows on the stages (3e-4 … 0.5) far more than on
the outputs (~2e-6).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from matting_api.backends.fba.fusion import fba_fusion
from matting_api.backends.fba.layers import standardize_weight
from matting_api.backends.fba.model import FBAMatting
from matting_api.backends.fba.predict import predict
from matting_api.backends.fba.transforms import normalise_image, scale_input, trimap_transform

STAGES = (
    "enc_conv1",
    "enc_layer1",
    "enc_layer2",
    "enc_layer3",
    "enc_layer4",
    "dec_conv_up1",
    "dec_conv_up2",
    "dec_conv_up3",
    "dec_raw_logits",
    "net_out",
)


def _nchw(array: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(array.transpose(2, 0, 1)[None], dtype=np.float32)


@pytest.mark.parametrize("case_name", ["case_a", "case_c"])
def test_preprocessing_matches_official(load_case, case_name: str) -> None:
    case = load_case(case_name)
    image_s = scale_input(case["image"])
    trimap_s = scale_input(case["trimap"])
    np.testing.assert_allclose(_nchw(image_s), case["net_image"], rtol=0, atol=1e-6)
    np.testing.assert_allclose(_nchw(trimap_s), case["net_two_chan_trimap"], rtol=0, atol=1e-6)
    np.testing.assert_allclose(_nchw(normalise_image(image_s)), case["net_image_n"], rtol=0, atol=1e-6)
    np.testing.assert_allclose(
        trimap_transform(trimap_s)[None], case["net_trimap_transformed"], rtol=0, atol=1e-6
    )


def test_case_c_exercises_the_quirks(case_c: dict[str, np.ndarray]) -> None:
    """Case c's resized trimap overshoots [0, 1], so the uint8 wrap quirk is exercised."""
    trimap_s = scale_input(case_c["trimap"])
    assert trimap_s.min() < -0.2 and trimap_s.max() > 1.2
    assert case_c["image"].shape[:2] == (61, 83)
    assert case_c["net_image"].shape[-2:] == (64, 88)


def test_weight_standardisation(fba_model: FBAMatting, case_a: dict[str, np.ndarray]) -> None:
    with torch.inference_mode():
        stem = fba_model.encoder.conv1.standardized_weight().numpy()
        up1 = fba_model.decoder.conv_up1[0].standardized_weight()[:1].numpy()
    np.testing.assert_allclose(stem, case_a["ws_encoder_conv1_weight"], rtol=0, atol=1e-6)
    np.testing.assert_allclose(up1, case_a["ws_decoder_conv_up1_0_weight_first1"], rtol=0, atol=1e-6)
    # The raw parameter is untouched (WS is never applied in place, so never twice).
    raw = fba_model.encoder.conv1.weight.detach()
    assert float(raw.abs().max()) < 0.5
    np.testing.assert_allclose(
        standardize_weight(raw).numpy(), case_a["ws_encoder_conv1_weight"], rtol=0, atol=1e-6
    )


@pytest.mark.parametrize("stage", STAGES)
def test_case_a_stages(
    case_a_stages: dict[str, np.ndarray], case_a: dict[str, np.ndarray], stage: str
) -> None:
    assert case_a_stages[stage].shape == case_a[stage].shape
    np.testing.assert_allclose(case_a_stages[stage], case_a[stage], rtol=0, atol=1e-5)


def test_forward_equals_the_hooked_forward_and_repeat_eval(
    fba_model: FBAMatting,
    case_a: dict[str, np.ndarray],
    case_a_stages: dict[str, np.ndarray],
    net_inputs,
) -> None:
    inputs = net_inputs(case_a)
    fba_model.eval()  # a second eval() must not standardise again (the official one would)
    with torch.inference_mode():
        out = fba_model(*inputs)
    assert out.shape == (1, 7, 64, 80) and out.dtype == torch.float32
    np.testing.assert_allclose(out.numpy(), case_a_stages["net_out"], rtol=0, atol=1e-6)
    np.testing.assert_allclose(out.numpy(), case_a["net_out"], rtol=0, atol=1e-5)
    assert float(out.min()) >= 0 and float(out.max()) <= 1


def test_ws_cache_matches_uncached(fba_model: FBAMatting, case_a: dict[str, np.ndarray], net_inputs) -> None:
    inputs = net_inputs(case_a)
    with torch.no_grad():  # not inference mode: exercises reuse of the cached tensors
        cached = fba_model(*inputs)
    fba_model.set_ws_cache(False)
    try:
        with torch.no_grad():
            uncached = fba_model(*inputs)
    finally:
        fba_model.set_ws_cache(True)
    assert torch.equal(cached, uncached)


def test_forward_rejects_sizes_not_multiple_of_8(fba_model: FBAMatting) -> None:
    args = [torch.zeros(1, c, 60, 64) for c in (3, 2, 3, 6)]
    with pytest.raises(ValueError, match="multiples of 8"):
        fba_model(*args)


@pytest.mark.parametrize("case_name", ["case_a", "case_c"])
def test_predict_end_to_end(fba_model: FBAMatting, load_case, case_name: str) -> None:
    """Through ``predict``: Lanczos up-resize, wrap quirk, bilinear back (case c), known regions."""
    case = load_case(case_name)
    fg, bg, alpha = predict(fba_model, case["image"], case["trimap"])
    h, w = case["image"].shape[:2]
    assert fg.shape == (h, w, 3) and bg.shape == (h, w, 3) and alpha.shape == (h, w)
    assert fg.dtype == bg.dtype == alpha.dtype == np.float32
    np.testing.assert_allclose(fg, case["fg"], rtol=0, atol=1e-5)
    np.testing.assert_allclose(bg, case["bg"], rtol=0, atol=1e-5)
    np.testing.assert_allclose(alpha, case["alpha"], rtol=0, atol=1e-5)


def test_fusion_reference(fba_data_dir) -> None:
    with np.load(fba_data_dir / "fusion_ref.npz") as ref:
        alpha, fg, bg = fba_fusion(
            torch.from_numpy(ref["alpha_in"]),
            torch.from_numpy(ref["img"]),
            torch.from_numpy(ref["F_in"]),
            torch.from_numpy(ref["B_in"]),
        )
        np.testing.assert_allclose(alpha.numpy(), ref["alpha_out"], rtol=0, atol=1e-6)
        np.testing.assert_allclose(fg.numpy(), ref["F_out"], rtol=0, atol=1e-6)
        np.testing.assert_allclose(bg.numpy(), ref["B_out"], rtol=0, atol=1e-6)


def test_case_c_network_outputs(fba_model: FBAMatting, case_c: dict[str, np.ndarray], net_inputs,
                                stages_of) -> None:
    with torch.inference_mode():
        stages = stages_of(fba_model, *net_inputs(case_c))
    for key in ("dec_raw_logits", "net_out"):
        np.testing.assert_allclose(stages[key].numpy(), case_c[key], rtol=0, atol=1e-5)


def test_ws_cache_is_invalidated_by_weight_changes() -> None:
    from matting_api.backends.fba.layers import WSConv2d

    torch.manual_seed(0)
    conv = WSConv2d(4, 8, kernel_size=3, padding=1)
    conv.set_cache(True)
    x = torch.randn(1, 4, 8, 8)
    with torch.inference_mode():
        first = conv.standardized_weight()
        assert conv.standardized_weight() is first  # reused
    with torch.no_grad():
        conv.weight.mul_(2).add_(1)  # in place: version counter changes
    with torch.inference_mode():
        second = conv.standardized_weight()
        assert second is not first
        assert torch.equal(second, standardize_weight(conv.weight.detach()))
    conv.weight = torch.nn.Parameter(torch.randn_like(conv.weight))  # a new parameter object
    with torch.inference_mode():
        assert torch.equal(conv.standardized_weight(), standardize_weight(conv.weight.detach()))
        out = conv(x)
    conv.set_cache(False)
    with torch.inference_mode():
        assert torch.equal(conv(x), out)
    # With autograd on, the cache is bypassed and gradients reach the raw weight.
    conv.set_cache(True)
    conv(x).sum().backward()
    assert conv.weight.grad is not None

"""The FBA matting network: encoder + decoder, with the official forward signature."""

from __future__ import annotations

import torch
from torch import nn

from .decoder import FBADecoder
from .encoder import ResNet50Encoder
from .layers import WSConv2d

#: Input height and width must be multiples of this (the encoder's output stride).
SIZE_MULTIPLE: int = 8


class FBAMatting(nn.Module):
    """FBA Matting (Forte & Pitié 2020), state-dict compatible with the official ``FBA.pth``.

    The module has exactly two children, ``encoder`` and ``decoder``, so checkpoint keys start
    with ``encoder.`` / ``decoder.`` (197 keys, no buffers). Train and eval mode compute the same
    thing (no BatchNorm, no dropout; WS is applied on the fly).
    """

    def __init__(self) -> None:
        super().__init__()
        self.encoder = ResNet50Encoder()
        self.decoder = FBADecoder()

    def set_ws_cache(self, enabled: bool) -> None:
        """Turn the standardised-weight cache of every WS conv on or off (see
        :meth:`matting_api.backends.fba.layers.WSConv2d.set_cache`); also drops cached copies."""
        for module in self.modules():
            if isinstance(module, WSConv2d):
                module.set_cache(enabled)

    @staticmethod
    def _check_inputs(
        image: torch.Tensor,
        two_chan_trimap: torch.Tensor,
        image_n: torch.Tensor,
        trimap_transformed: torch.Tensor,
    ) -> None:
        expected = {"image": 3, "two_chan_trimap": 2, "image_n": 3, "trimap_transformed": 6}
        tensors = {
            "image": image,
            "two_chan_trimap": two_chan_trimap,
            "image_n": image_n,
            "trimap_transformed": trimap_transformed,
        }
        n, _, h, w = image.shape
        for name, t in tensors.items():
            if t.dim() != 4 or tuple(t.shape) != (n, expected[name], h, w):
                raise ValueError(
                    f"{name} must have shape (N, {expected[name]}, H, W) = "
                    f"({n}, {expected[name]}, {h}, {w}); got {tuple(t.shape)}"
                )
        if h % SIZE_MULTIPLE or w % SIZE_MULTIPLE:
            raise ValueError(
                f"H and W must be multiples of {SIZE_MULTIPLE}; got {h}x{w} "
                "(predict() resizes the input for you)"
            )

    def forward(
        self,
        image: torch.Tensor,
        two_chan_trimap: torch.Tensor,
        image_n: torch.Tensor,
        trimap_transformed: torch.Tensor,
    ) -> torch.Tensor:
        """Predict α, F and B.

        Args:
            image: ``(N, 3, H, W)`` float32 RGB in [0, 1]; H, W multiples of 8.
            two_chan_trimap: ``(N, 2, H, W)`` float32, channel 0 = definite BG, 1 = definite FG
                (values outside {0, 1} from the demo's Lanczos resize are used as is).
            image_n: ``(N, 3, H, W)`` float32, ImageNet-normalised ``image``.
            trimap_transformed: ``(N, 6, H, W)`` float32 distance-transform Gaussians
                (see :func:`matting_api.backends.fba.transforms.trimap_transform`).

        Returns:
            ``(N, 7, H, W)`` float32 in [0, 1]: channel 0 = α, 1–3 = F (RGB), 4–6 = B (RGB),
            after the fusion step.
        """
        self._check_inputs(image, two_chan_trimap, image_n, trimap_transformed)
        # Encoder input: 11 channels in the official order.
        x = torch.cat((image_n, trimap_transformed, two_chan_trimap), dim=1)
        feats = self.encoder(x)
        del x
        return self.decoder(feats, image, two_chan_trimap, image_n)

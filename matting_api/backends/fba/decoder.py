"""FBA decoder: pyramid pooling + U-Net style upsampling to 7 channels, then fusion.

``nn.Sequential`` indices reproduce the official checkpoint keys; activations (and the pooling
in each PPM branch) sit at indices without keys:

* ``ppm.i``: 0 adaptive avg-pool, 1 WS conv 2048→256 (bias), 2 GN, 3 LeakyReLU
* ``conv_up1``: 0 WS conv, 1 GN, 2 LReLU, 3 WS conv, 4 GN, 5 LReLU
* ``conv_up2`` / ``conv_up3``: 0 WS conv, 1 GN, 2 LReLU
* ``conv_up4``: 0 conv, 1 LReLU, 2 conv, 3 LReLU, 4 conv (plain convs, no WS, no norm)
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from .encoder import EncoderFeatures
from .fusion import fba_fusion
from .layers import WSConv2d, group_norm, leaky_relu, upsample2x

#: Output sizes of the pyramid pooling branches.
PPM_SCALES: tuple[int, ...] = (1, 2, 3, 6)


def _ws_conv_gn_lrelu(in_ch: int, out_ch: int, kernel_size: int) -> list[nn.Module]:
    return [
        WSConv2d(in_ch, out_ch, kernel_size=kernel_size, padding=kernel_size // 2, bias=True),
        group_norm(out_ch),
        leaky_relu(),
    ]


class FBADecoder(nn.Module):
    """Decoder from the encoder features (+ the raw network inputs) to α, F, B."""

    def __init__(self) -> None:
        super().__init__()
        self.ppm = nn.ModuleList(
            nn.Sequential(nn.AdaptiveAvgPool2d(scale), *_ws_conv_gn_lrelu(2048, 256, 1))
            for scale in PPM_SCALES
        )
        self.conv_up1 = nn.Sequential(
            *_ws_conv_gn_lrelu(2048 + len(PPM_SCALES) * 256, 256, 3),
            *_ws_conv_gn_lrelu(256, 256, 3),
        )
        self.conv_up2 = nn.Sequential(*_ws_conv_gn_lrelu(256 + 256, 256, 3))
        self.conv_up3 = nn.Sequential(*_ws_conv_gn_lrelu(256 + 64, 64, 3))
        self.conv_up4 = nn.Sequential(
            nn.Conv2d(64 + 3 + 3 + 2, 32, kernel_size=3, padding=1, bias=True),
            leaky_relu(),
            nn.Conv2d(32, 16, kernel_size=3, padding=1, bias=True),
            leaky_relu(),
            nn.Conv2d(16, 7, kernel_size=1, padding=0, bias=True),
        )

    @staticmethod
    def activate(logits: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        """Output activations + fusion: ``(N, 7, H, W)`` logits (``conv_up4``'s output) →
        ``(N, 7, H, W)`` in [0, 1].

        α is a hard clamp of logit 0 (not a sigmoid), F and B are sigmoids, then one
        :func:`~matting_api.backends.fba.fusion.fba_fusion` step with the raw image.
        """
        alpha = torch.clamp(logits[:, 0:1], 0, 1)
        fg = torch.sigmoid(logits[:, 1:4])
        bg = torch.sigmoid(logits[:, 4:7])
        alpha, fg, bg = fba_fusion(alpha, image, fg, bg)
        return torch.cat((alpha, fg, bg), dim=1)

    def forward(
        self,
        feats: EncoderFeatures,
        image: torch.Tensor,
        two_chan_trimap: torch.Tensor,
        image_n: torch.Tensor,
    ) -> torch.Tensor:
        """α, F and B from the encoder features and the raw inputs: the 7-channel logits of
        the last conv (``conv_up4``), then :meth:`activate`. Each stage is a submodule
        (``conv_up1`` … ``conv_up4``), so a forward hook on ``conv_up4`` sees the raw logits.

        Args:
            feats: encoder features for an ``(N, ·, H, W)`` input.
            image: ``(N, 3, H, W)`` raw RGB in [0, 1].
            two_chan_trimap: ``(N, 2, H, W)`` [BG, FG] trimap (may hold Lanczos overshoot).
            image_n: ``(N, 3, H, W)`` ImageNet-normalised image (the first 3 encoder inputs).

        Returns:
            ``(N, 7, H, W)`` in [0, 1]: 0 = α, 1–3 = F, 4–6 = B.
        """
        x4 = feats.layer4
        size = x4.shape[-2:]
        pyramid = [x4]
        for branch in self.ppm:
            pyramid.append(F.interpolate(branch(x4), size=size, mode="bilinear", align_corners=False))
        x = self.conv_up1(torch.cat(pyramid, dim=1))
        del pyramid
        x = self.conv_up2(torch.cat((upsample2x(x), feats.layer1), dim=1))
        x = self.conv_up3(torch.cat((upsample2x(x), feats.conv1), dim=1))
        # Official order of the skip inputs: x, image_n (= encoder input[:, :3]), image, trimap.
        x = torch.cat((upsample2x(x), image_n, image, two_chan_trimap), dim=1)
        return self.activate(self.conv_up4(x), image)

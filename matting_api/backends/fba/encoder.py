"""FBA encoder: ResNet-50 (v1.5) with GroupNorm + Weight Standardisation, dilated to stride 8.

Attribute names reproduce the official checkpoint keys (``encoder.conv1.weight``,
``encoder.bn1.*``, ``encoder.layerL.N.convK.weight``, ``encoder.layerL.N.bnK.*``,
``encoder.layerL.0.downsample.{0,1}.*``); the ``bnK`` names are kept even though every norm is a
GroupNorm(32). The classification head (``avgpool``/``fc``) of the base ResNet does not exist.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from .layers import WSConv2d, group_norm

#: Number of input channels: normalised image (3) + trimap Gaussians (6) + two-channel trimap (2).
IN_CHANNELS: int = 11

#: Bottleneck expansion factor of ResNet-50.
EXPANSION: int = 4


class EncoderFeatures(NamedTuple):
    """The encoder outputs the decoder needs.

    Attributes:
        conv1: stem output after ReLU, before max-pool, ``(N, 64, H/2, W/2)`` float.
        layer1: ``(N, 256, H/4, W/4)``.
        layer4: ``(N, 2048, H/8, W/8)``.
    """

    conv1: torch.Tensor
    layer1: torch.Tensor
    layer4: torch.Tensor


class Bottleneck(nn.Module):
    """ResNet bottleneck (stride on the 3×3 conv), GN + WS, optional dilation.

    ``(N, C_in, H, W)`` → ``(N, 4*width, H/stride, W/stride)``.
    """

    def __init__(
        self,
        in_channels: int,
        width: int,
        *,
        stride: int = 1,
        dilation: int = 1,
        downsample: nn.Module | None = None,
    ) -> None:
        super().__init__()
        out_channels = width * EXPANSION
        # Registration order = state_dict order: conv1, bn1, conv2, bn2, conv3, bn3, downsample.
        self.conv1 = WSConv2d(in_channels, width, kernel_size=1, bias=False)
        self.bn1 = group_norm(width)
        self.conv2 = WSConv2d(
            width,
            width,
            kernel_size=3,
            stride=stride,
            padding=dilation,
            dilation=dilation,
            bias=False,
        )
        self.bn2 = group_norm(width)
        self.conv3 = WSConv2d(width, out_channels, kernel_size=1, bias=False)
        self.bn3 = group_norm(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the block; see the class docstring for shapes."""
        shortcut = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + shortcut)


def _make_layer(
    in_channels: int,
    width: int,
    blocks: int,
    *,
    stride: int,
    first_dilation: int,
    dilation: int,
) -> nn.Sequential:
    """One ResNet stage: the first block gets ``stride``/``first_dilation``, the rest ``dilation``.

    This reproduces the official "no-stride dilate" surgery: in layer3 the first 3×3 conv keeps
    dilation 1 and the rest use 2; in layer4 the first uses 2 and the rest 4 (padding = dilation,
    strides removed, downsample stride 1).
    """
    out_channels = width * EXPANSION
    downsample = nn.Sequential(
        WSConv2d(in_channels, out_channels, kernel_size=1, stride=stride, bias=False),
        group_norm(out_channels),
    )
    layers: list[nn.Module] = [
        Bottleneck(in_channels, width, stride=stride, dilation=first_dilation, downsample=downsample)
    ]
    layers += [Bottleneck(out_channels, width, dilation=dilation) for _ in range(blocks - 1)]
    return nn.Sequential(*layers)


class ResNet50Encoder(nn.Module):
    """ResNet-50 GN+WS encoder with 11 input channels and output stride 8.

    Input: ``(N, 11, H, W)`` float32, H and W multiples of 8, channels in the order
    ``image_n`` (3), ``trimap_transformed`` (6), ``two_chan_trimap`` (2).
    """

    def __init__(self, in_channels: int = IN_CHANNELS) -> None:
        super().__init__()
        self.conv1 = WSConv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = group_norm(64)
        self.relu = nn.ReLU(inplace=True)
        # The official max-pool returns indices (for an unused unpool); only the values matter.
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = _make_layer(64, 64, 3, stride=1, first_dilation=1, dilation=1)
        self.layer2 = _make_layer(256, 128, 4, stride=2, first_dilation=1, dilation=1)
        self.layer3 = _make_layer(512, 256, 6, stride=1, first_dilation=1, dilation=2)
        self.layer4 = _make_layer(1024, 512, 3, stride=1, first_dilation=2, dilation=4)

    def forward(self, x: torch.Tensor) -> EncoderFeatures:
        """Run the encoder (each stage is a submodule, so forward hooks see its output:
        ``relu`` gives conv1's, ``layer1`` … ``layer4`` theirs).

        Args:
            x: ``(N, 11, H, W)`` float tensor, H and W multiples of 8.

        Returns:
            :class:`EncoderFeatures` (conv1 at H/2, layer1 at H/4, layer4 at H/8).
        """
        conv1 = self.relu(self.bn1(self.conv1(x)))
        layer1 = self.layer1(self.maxpool(conv1))
        layer2 = self.layer2(layer1)
        layer3 = self.layer3(layer2)
        del layer2  # free it before layer4 runs (matters at high resolution)
        layer4 = self.layer4(layer3)
        del layer3
        return EncoderFeatures(conv1=conv1, layer1=layer1, layer4=layer4)

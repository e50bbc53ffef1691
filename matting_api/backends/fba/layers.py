"""Building blocks shared by the FBA encoder and decoder.

* :class:`WSConv2d`: a ``Conv2d`` with Weight Standardisation (Qiao et al. 2019) applied on the
  fly in every forward pass, computed from the raw (stored) weight.
* :func:`group_norm`: the GroupNorm(32) that replaces every BatchNorm in FBA.
"""

from __future__ import annotations

import weakref

import torch
from torch import nn
from torch.nn import functional as F

#: eps of the official weight standardisation; it sits *inside* the square root.
WS_EPS: float = 1e-5

#: Number of groups of every GroupNorm in FBA.
GN_GROUPS: int = 32

#: Negative slope of the decoder's LeakyReLUs.
LRELU_SLOPE: float = 0.01


def standardize_weight(weight: torch.Tensor, eps: float = WS_EPS) -> torch.Tensor:
    """Weight-standardise a conv weight, per output channel.

    For every output channel ``o`` the ``n = C_in*kh*kw`` values are centred and divided by
    ``sqrt(var + eps)``, where ``var`` is the *population* (biased, divide by ``n``) variance.
    This is the formula of the official code at HEAD (a training-mode batch norm over the weight
    reshaped to ``(1, C_out, n)``); the pre-2021 ``unbiased std + 1e-5`` formula is *not* used.

    Args:
        weight: float tensor ``(C_out, C_in, kh, kw)``, any value range.
        eps: added to the variance inside the square root.

    Returns:
        A new tensor of the same shape and dtype: zero mean and (almost) unit population
        variance per output channel. The input is not modified.
    """
    flat = weight.reshape(weight.shape[0], -1)
    mean = flat.mean(dim=1, keepdim=True)
    var = flat.var(dim=1, unbiased=False, keepdim=True)
    return ((flat - mean) * torch.rsqrt(var + eps)).reshape_as(weight)


class WSConv2d(nn.Conv2d):
    """``nn.Conv2d`` whose weight is standardised in every forward pass.

    The parameter ``weight`` always holds the *raw* weight as stored in the checkpoint (the
    official ``FBA.pth`` stores un-standardised weights). The official model instead standardises
    its weight *in place* whenever ``train()``/``eval()`` is called, which is why calling
    ``eval()`` twice there applies WS twice (a ~3e-4 drift of the stage features). Doing it on
    the fly from the raw weight gives the same numbers as the demo's single ``eval()`` and can
    never be applied twice; it is independent of ``train``/``eval`` mode. The bias (when
    present) is not standardised.

    Input/output shapes are those of ``nn.Conv2d``.
    """

    #: Reuse the standardised weight between forwards when autograd is off (see
    #: :meth:`set_cache`). Off by default; :func:`matting_api.backends.fba.build.build_model` turns it on.
    cache_standardized: bool = False

    def set_cache(self, enabled: bool) -> None:
        """Enable/disable caching of the standardised weight (and drop any cached copy).

        Standardising all 61 FBA weights costs ~0.15 s per forward on 2 CPU cores; the cache
        trades that for one extra copy of the weights (~136 MB for the whole model). The cache
        is only used while autograd is off (``torch.no_grad``/``torch.inference_mode``) and is
        keyed on the raw weight object, its storage, device, dtype and version counter, so any
        in-place change of the raw weight (``load_state_dict``, ``copy_``), a replaced parameter
        or ``.to()`` invalidates it.
        It can therefore never serve a stale or doubly-standardised weight.
        """
        self.cache_standardized = enabled
        self._ws_cache: tuple[weakref.ref[torch.Tensor], tuple[object, ...], torch.Tensor] | None = None

    def standardized_weight(self) -> torch.Tensor:
        """The weight actually used by :meth:`forward`, shape ``(C_out, C_in/groups, kh, kw)``."""
        if not (self.cache_standardized and not torch.is_grad_enabled()):
            return standardize_weight(self.weight)
        w = self.weight
        key = (w.data_ptr(), w.device, w.dtype, w._version, tuple(w.shape))
        cached = getattr(self, "_ws_cache", None)
        if cached is not None and cached[0]() is w and cached[1] == key:
            return cached[2]
        std = standardize_weight(w)
        self._ws_cache = (weakref.ref(w), key, std)
        return std

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102 (same as nn.Conv2d)
        return self._conv_forward(x, self.standardized_weight(), self.bias)


def group_norm(num_channels: int) -> nn.GroupNorm:
    """GroupNorm with 32 groups, eps 1e-5 and affine parameters, as every FBA norm layer."""
    return nn.GroupNorm(GN_GROUPS, num_channels, eps=1e-5, affine=True)


def leaky_relu() -> nn.LeakyReLU:
    """The decoder's activation: LeakyReLU with slope 0.01 (no parameters, no state-dict keys)."""
    return nn.LeakyReLU(LRELU_SLOPE)


def upsample2x(x: torch.Tensor) -> torch.Tensor:
    """Bilinear ×2 upsampling with ``align_corners=False`` as in the official decoder.

    ``(N, C, H, W)`` → ``(N, C, 2H, 2W)``, same dtype.
    """
    return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)

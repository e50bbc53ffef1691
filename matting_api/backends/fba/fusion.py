"""The FBA fusion step (Forte & Pitié 2020, §3.3): one refinement of α, F and B."""

from __future__ import annotations

import torch

#: Regulariser λ of the fusion; it appears in the numerator and the denominator of α.
FUSION_LAMBDA: float = 0.1


def fba_fusion(
    alpha: torch.Tensor,
    img: torch.Tensor,
    fg: torch.Tensor,
    bg: torch.Tensor,
    lam: float = FUSION_LAMBDA,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One iteration of the FBA fusion, sequenced exactly as the official code.

    Args:
        alpha: ``(N, 1, H, W)`` initial α in [0, 1] (the clamped logit).
        img: ``(N, 3, H, W)`` raw RGB image in [0, 1] (not normalised).
        fg: ``(N, 3, H, W)`` initial foreground in [0, 1] (sigmoid output).
        bg: ``(N, 3, H, W)`` initial background in [0, 1] (sigmoid output).
        lam: the regulariser λ (0.1 in the official code).

    Returns:
        ``(alpha, fg, bg)`` with the same shapes, all clamped to [0, 1].
    """
    one_minus = 1 - alpha
    fg = alpha * img + (1 - alpha**2) * fg - alpha * one_minus * bg
    # Official sequencing quirk: the B update uses the *already updated, not yet clamped* F,
    # not the network's F.
    bg = one_minus * img + (2 * alpha - alpha**2) * bg - alpha * one_minus * fg
    fg = torch.clamp(fg, 0, 1)
    bg = torch.clamp(bg, 0, 1)
    diff = fg - bg
    # α uses the clamped F and B and the *un-updated* α; sums run over the colour channels.
    alpha = (alpha * lam + torch.sum((img - bg) * diff, dim=1, keepdim=True)) / (
        torch.sum(diff * diff, dim=1, keepdim=True) + lam
    )
    alpha = torch.clamp(alpha, 0, 1)
    return alpha, fg, bg

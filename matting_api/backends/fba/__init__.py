"""FBA Matting (Forte & Pitié 2020), all of it: network, weights, builder, inference, backend.

* the network, one module per part: :mod:`.layers` (weight-standardised convolutions,
  GroupNorm), :mod:`.encoder` (ResNet-50 GN+WS, 11 input channels, output stride 8),
  :mod:`.decoder` (pyramid pooling to alpha, F and B), :mod:`.fusion` (the F/B fusion step)
  and :mod:`.model` (:class:`~.model.FBAMatting`, which only wires encoder and decoder);
* :data:`FBA`: the weights file (``models/FBA.pth``; non-commercial licence; no published
  checksum, so a downloaded file is checked by :func:`~.checkpoint.check_file`);
* :mod:`.build`: :func:`~.build.build_model`, the network in eval
  mode with those weights;
* :mod:`.checkpoint`: safe, strict loading of the state dict;
* :mod:`.transforms` and :mod:`.predict`: the official pre/post-processing and
  :func:`~.predict.predict` (numpy in, numpy out);
* :mod:`.backend`: :class:`~.backend.FBABackend`, what the matting service calls.

Importing this package does not import torch (the registry reads :func:`load`'s entry);
its submodules do.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from service_common.config import Settings
from service_common.registry import register_model
from service_common.weights import WeightsFile

if TYPE_CHECKING:
    from .backend import FBABackend


def _check(path: Path) -> None:
    from .checkpoint import check_file

    check_file(path)


FBA = WeightsFile(
    key="fba",
    filename="FBA.pth",
    used_by="matting: FBA Matting (Forte & Pitie 2020)",
    source="the official FBA_Matting README (github.com/MarcoForte/FBA_Matting), "
    "Google Drive file 1T_oiKDE_biWf2kqexMEN7ObWqtXAzbB1",
    licence="NON-COMMERCIAL ONLY: trained on the Adobe Deep Image Matting dataset, "
    "whose licence forbids commercial use of the weights",
    url="https://drive.usercontent.google.com/download?id=1T_oiKDE_biWf2kqexMEN7ObWqtXAzbB1"
    "&export=download&confirm=t",
    sha256_env="BACKDROP_FBA_SHA256",
    approx_size=138_800_000,
    input_rule="image RGB in [0, 1] and ImageNet-normalised, a two-channel trimap (background, "
    "foreground) and its six distance-transform Gaussians; sides multiples of 8",
    check=_check,
)


@register_model("matting", "fba", weights=FBA, torch=True, title="FBA Matting", what="Forte & Pitie 2020",
                auto="preferred")
def load(settings: Settings, name: str) -> FBABackend:
    """FBA Matting under ``settings``, torch's threads set (once, at app start)."""
    from service_common.torch_runtime import set_threads  # local: imports torch

    from .backend import FBABackend

    set_threads(settings.torch_threads)
    return FBABackend.from_settings(settings)

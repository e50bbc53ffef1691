"""FBA Matting (Forte & Pitié 2020): the network, one module per part.

* :mod:`.layers`: weight-standardised convolutions, GroupNorm, activations;
* :mod:`.encoder`: the ResNet-50 GN+WS encoder (11 input channels, output stride 8);
* :mod:`.decoder`: the pyramid pooling decoder to alpha, F and B;
* :mod:`.fusion`: the F/B fusion step;
* :mod:`.model`: :class:`~.model.FBAMatting`, which only wires encoder and decoder.

Weights, building and inference live with the backend (:mod:`matting_api.backends.fba`);
the public entry points are re-exported here::

    from matting_api.fba import build_model, predict

    model = build_model("models/FBA.pth", device="cpu")   # eval mode, strict loading
    fg, bg, alpha = predict(model, image, trimap)          # numpy in, numpy out
"""

from matting_api.backends.fba.build import build_model
from matting_api.backends.fba.predict import DEFAULT_CROP_MARGIN, predict

from .model import FBAMatting

__all__ = ["DEFAULT_CROP_MARGIN", "FBAMatting", "build_model", "predict"]

"""FBA Matting (Forte & Pitié 2020): model, pre/post-processing and prediction.

Public API::

    from matting_api.fba import build_model, predict, FBAMatting, CheckpointError

    model = build_model("models/FBA.pth", device="cpu")   # eval mode, strict loading
    fg, bg, alpha = predict(model, image, trimap)          # numpy in, numpy out

Importing this package does no torch work beyond importing torch.
"""

from .build import build_model, select_device, set_num_threads
from .checkpoint import CheckpointError, load_state_dict_file
from .model import FBAMatting
from .predict import DEFAULT_CROP_MARGIN, predict

__all__ = [
    "DEFAULT_CROP_MARGIN",
    "CheckpointError",
    "FBAMatting",
    "build_model",
    "load_state_dict_file",
    "predict",
    "select_device",
    "set_num_threads",
]

"""What the torch models share: the device rule, strict state dict loading, CPU threads.

Imported only where a torch model is built (never by the offline ONNX backends), so a
worker without torch models never imports torch. Errors are
:class:`~service_common.weights.ModelError`, with a message that names the file or setting.
"""

from __future__ import annotations

from pathlib import Path

import torch

from .weights import ModelError, WeightsFile, missing_message


def load_state_dict_file(model: torch.nn.Module, path: Path, w: WeightsFile) -> None:
    """Load the state dict in ``path`` into ``model`` strictly.

    The file is read with ``torch.load(path, map_location="cpu", weights_only=True)``: plain
    tensors only, no code from the file runs.

    Raises:
        ModelError: the file is missing, is not a torch state dict, or does not fit the
            model; the message names the file.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelError(missing_message(w, path.parent))
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means a bad file
        raise ModelError(f"{path} is not a readable torch state dict ({exc}); "
                           + missing_message(w, path.parent)) from exc
    if not isinstance(state, dict) or not state:
        raise ModelError(f"{path} does not hold a state dict (got {type(state).__name__}); "
                           f"expected the file {w.filename} from {w.source}")
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[:3]
        raise ModelError(
            f"{path} does not fit {w.used_by}: {' '.join(first)[:500]}. "
            f"Expected the file {w.filename} from {w.source}"
        ) from exc


def resolve_device(name: str) -> torch.device:
    """``auto`` -> ``cuda`` when available, else ``cpu``; otherwise the named device.

    Raises:
        ModelError: unknown device name, or CUDA asked for but not available.
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as exc:
        raise ModelError(f"BACKDROP_DEVICE={name!r} is not a torch device") from exc
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ModelError(f"BACKDROP_DEVICE={name!r} but CUDA is not available on this machine")
    return device


def set_threads(threads: int) -> None:
    """torch's intra-op CPU threads for the whole process; ``0`` leaves torch's default.
    Called once at app start (``create_app``), never by a model builder."""
    if threads > 0:
        torch.set_num_threads(threads)

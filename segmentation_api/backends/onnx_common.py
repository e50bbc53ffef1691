"""What the ONNX backends (U^2-Net-p, MODNet) share: opening an onnxruntime session on the CPU."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from service_common.weights import ModelError, WeightsFile, missing_message


def open_session(path: Path, weights: WeightsFile, threads: int = 0) -> Any:
    """An ``onnxruntime.InferenceSession`` of the model in ``path``, CPU only.

    Args:
        path: the ``.onnx`` file.
        weights: its entry in the weights registry (for the error message).
        threads: intra-op threads; 0 = onnxruntime's default (all cores).

    Raises:
        ModelError: the file is missing or onnxruntime cannot load it; the message says
            which file to put where.
    """
    import onnxruntime as ort  # local: only the ONNX backends need it

    path = Path(path)
    if not path.is_file():
        raise ModelError(missing_message(weights, path.parent))
    options = ort.SessionOptions()
    options.log_severity_level = 3
    # Idle intra-op threads sleep instead of spinning: a spinning pool burns the core the
    # matting service (another process) needs next; bench/video_throughput.py measures it.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if threads > 0:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    try:
        return ort.InferenceSession(str(path), sess_options=options,
                                    providers=["CPUExecutionProvider"])
    except Exception as exc:  # noqa: BLE001 - any onnxruntime load failure
        raise ModelError(f"{path} is not a usable ONNX model ({exc}); "
                           + missing_message(weights, path.parent)) from exc

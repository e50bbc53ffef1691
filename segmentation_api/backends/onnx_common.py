"""What the ONNX backends (U^2-Net-p, MODNet) share: onnxruntime sessions on the CPU, and
:class:`OnnxModel`, which runs a lone call on every core and calls side by side on one core
each."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from service_common.cpu import cores_shared
from service_common.weights import ModelError, WeightsFile, missing_message

log = logging.getLogger(__name__)


def open_session(path: Path, weights: WeightsFile, threads: int = 0,
                 model_bytes: Callable[[Path], bytes] | None = None) -> Any:
    """An ``onnxruntime.InferenceSession`` of the model in ``path``, CPU only.

    Args:
        path: the ``.onnx`` file (or another format that ``model_bytes`` reads).
        weights: its entry in the weights registry (for the error message).
        threads: intra-op threads; 0 = onnxruntime's default (all cores).
        model_bytes: reads ``path`` into a serialised ONNX model (a converter:
            :func:`.selfie.onnx_bytes`); ``None``: the file is ONNX.

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
    # No memory plan cached per input shape: photos come in every aspect ratio, and MODNet's
    # sessions grew from 222 to 625 MB over 30 random shapes with the plans, to 482-497 MB
    # without, in the same time (one process, 2026-12-06). Without the arena as well they
    # stayed under 400 MB, but MODNet took 1.2x the time: the arena stays.
    options.enable_mem_pattern = False
    if threads > 0:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    try:
        source = str(path) if model_bytes is None else model_bytes(path)
        return ort.InferenceSession(source, sess_options=options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # noqa: BLE001 - any onnxruntime load failure
        raise ModelError(f"{path} is not a usable ONNX model ({exc}); "
                           + missing_message(weights, path.parent)) from exc


class OnnxModel:
    """An ONNX model that shares the cores well between the requests of one worker.

    A call made alone uses the wide session (``threads``: all cores by default), the
    fastest for one photo; a call made while another one runs, or for a request that shares
    the cores (:func:`service_common.cpu.cores_shared`), uses a one-thread session.
    Both sessions load the same file once each (MODNet: 2 x 25 MB).

    Args:
        path: the ``.onnx`` file.
        weights: its entry in the weights registry (for error messages).
        threads: intra-op threads of the wide session; 0 = onnxruntime's default (all cores).
        model_bytes: see :func:`open_session`.
    """

    def __init__(self, path: Path, weights: WeightsFile, threads: int = 0,
                 model_bytes: Callable[[Path], bytes] | None = None) -> None:
        self.wide = open_session(path, weights, threads, model_bytes)
        self.narrow = self.wide if threads == 1 else open_session(path, weights, 1, model_bytes)
        self.input_name = self.wide.get_inputs()[0].name
        self._running = 0
        self._lock = threading.Lock()

    def warm_up(self, x: np.ndarray) -> None:
        """Run both sessions once on ``x`` (a session's first run costs more)."""
        for session in {id(self.wide): self.wide, id(self.narrow): self.narrow}.values():
            session.run(None, {self.input_name: x})

    def run(self, x: np.ndarray) -> list[np.ndarray]:
        """The model's outputs for the input tensor ``x`` (thread-safe)."""
        with self._lock:
            session = self.narrow if self._running or cores_shared() else self.wide
            self._running += 1
        try:
            return session.run(None, {self.input_name: x})
        finally:
            with self._lock:
                self._running -= 1


def load_warm(build: Callable[[Path], Any], weights: WeightsFile, models_dir: Path,
              preprocess: Callable[[np.ndarray], np.ndarray]) -> Any:
    """``build(path)`` for ``weights``' file in ``models_dir``, then one run of its model on
    ``preprocess`` of a black 64 x 64 image (a session's first runs cost ~0.3 s), the time
    logged; the backend."""
    path = weights.path(models_dir)
    started = time.perf_counter()
    backend = build(path)
    backend.model.warm_up(preprocess(np.zeros((64, 64, 3), np.uint8)))
    log.info("loaded %s from %s in %.2f s (warm-up included)", weights.key, path,
             time.perf_counter() - started)
    return backend

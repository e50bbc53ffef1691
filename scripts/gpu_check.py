"""The prepared GPU check: FBA Matting and Mask R-CNN on CUDA, with generated weights.

What it does, in one run:

1. writes weight files of the real architectures with generated values
   (:mod:`bench.generated_weights`: FBA's reference recipe, torchvision's Mask R-CNN) under
   their real names in a temporary models folder, and builds both models from them with the
   project's own builders (strict loading), as the services do;
2. runs FBA on a synthetic photo and trimap on the CPU (fp32): the reference;
3. on CUDA: runs FBA in fp32 and in fp16 (autocast) and compares each alpha with the CPU's
   (largest absolute difference over the image), and times both models on each device;
4. prints one Markdown table (model, device, precision, median time, max |alpha - CPU alpha|).

Without CUDA it says so, runs the CPU part on a small photo, prints its table and exits 0,
so that the same command can be tried anywhere (a test runs it that way). Random weights
make the timings and the fp16 error those of the real architectures, not of the trained
networks' outputs: Mask R-CNN with random weights finds nothing, FBA's alpha is noise-like,
which is the harder case for fp16.

Usage::

    python scripts/gpu_check.py                  # 1024 px photo, 10 timed runs each
    python scripts/gpu_check.py --size 512 --repeats 5
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

#: The photo's side without CUDA (the CPU part only: a quick check).
CPU_ONLY_SIZE = 96
#: Mask R-CNN's input size without CUDA (its shorter side; the services use 800).
CPU_ONLY_MASKRCNN_SIZE = 160


@dataclass(frozen=True)
class Row:
    """One line of the table."""

    model: str
    device: str
    precision: str
    median_ms: float
    max_alpha_error: float | None = None

    def markdown(self) -> str:
        error = "reference" if self.max_alpha_error is None else f"{self.max_alpha_error:.2e}"
        if self.model != "FBA Matting":
            error = "-"
        return f"| {self.model} | {self.device} | {self.precision} | {self.median_ms:.1f} | {error} |"


def scene(size: int) -> tuple[np.ndarray, np.ndarray]:
    """A ``size x size`` photo (float RGB in [0, 1]: a textured disc on a gradient) and FBA's
    two-channel trimap of it (background, foreground; a band of ``size / 16`` px unknown)."""
    yy, xx = np.mgrid[:size, :size].astype(np.float64) / size
    rgb = np.stack([xx, yy, 0.5 * (xx + yy)], axis=2)
    dist = np.hypot(yy - 0.5, xx - 0.5)
    disc = dist < 0.3
    rgb[disc] = np.stack([0.9 * np.ones_like(xx), 0.4 + 0.3 * np.sin(40 * xx), 0.2 * yy], axis=2)[disc]
    band = 1.0 / 32
    trimap = np.zeros((size, size, 2))
    trimap[..., 0] = dist > 0.3 + band
    trimap[..., 1] = dist < 0.3 - band
    return rgb, trimap


def median_ms(call: Callable[[], Any], repeats: int, synchronize: Callable[[], None]) -> float:
    """Median wall time of ``call`` in ms over ``repeats`` runs, after one warm-up run."""
    call()
    synchronize()
    times = []
    for _ in range(max(1, repeats)):
        started = time.perf_counter()
        call()
        synchronize()
        times.append((time.perf_counter() - started) * 1000.0)
    return statistics.median(times)


def run(size: int, maskrcnn_size: int, repeats: int, cuda: bool,
        say: Callable[[str], None] = print) -> list[Row]:
    """Build both models with generated weights and measure them; see the module docstring."""
    import torch

    from bench.generated_weights import save_generated_weights
    from matting_api.backends.fba.build import build_model
    from matting_api.backends.fba.predict import predict
    from segmentation_api.backends.maskrcnn import build_maskrcnn_resnet50_fpn

    rgb, trimap = scene(size)
    photo = torch.from_numpy((rgb * 255).astype(np.uint8)).permute(2, 0, 1)
    devices = ["cpu", "cuda"] if cuda else ["cpu"]
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as folder:
        say(f"writing generated weights (FBA, Mask R-CNN) to {folder}")
        paths = save_generated_weights(Path(folder), ("fba", "maskrcnn"))
        reference: np.ndarray | None = None
        for device in devices:
            sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
            fba = build_model(paths["fba"], device)
            for fp16 in ([False, True] if device == "cuda" else [False]):
                alpha = predict(fba, rgb, trimap, fp16=fp16)[2]
                error = None if reference is None else float(np.abs(alpha - reference).max())
                if reference is None:
                    reference = alpha
                ms = median_ms(lambda m=fba, h=fp16: predict(m, rgb, trimap, fp16=h), repeats, sync)
                rows.append(Row("FBA Matting", device, "fp16" if fp16 else "fp32", ms, error))
                say(f"FBA {device} {'fp16' if fp16 else 'fp32'}: {ms:.1f} ms")
            del fba
            maskrcnn = build_maskrcnn_resnet50_fpn(paths["maskrcnn"], min_size=maskrcnn_size,
                                                   max_size=max(maskrcnn_size, 1333)).to(device)
            image = photo.to(device, dtype=torch.float32).div(255.0)

            def detect(model: Any = maskrcnn, image: Any = image) -> Any:
                with torch.inference_mode():
                    return model([image])

            ms = median_ms(detect, repeats, sync)
            rows.append(Row("Mask R-CNN", device, "fp32", ms))
            say(f"Mask R-CNN {device}: {ms:.1f} ms")
            del maskrcnn
    return rows


def table(rows: list[Row], size: int, maskrcnn_size: int) -> str:
    """The Markdown table of ``rows``."""
    lines = [f"Photo {size} x {size} px (FBA at full size; Mask R-CNN's shorter side {maskrcnn_size} px), "
             "generated weights; median of the timed runs.", "",
             "| model | device | precision | median ms | max abs alpha error vs CPU |",
             "|---|---|---|---:|---:|"]
    return "\n".join(lines + [row.markdown() for row in rows])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=1024, help="the photo's side on CUDA, px (default 1024)")
    parser.add_argument("--maskrcnn-size", type=int, default=800,
                        help="Mask R-CNN's shorter side on CUDA, px (default 800, the services')")
    parser.add_argument("--repeats", type=int, default=10, help="timed runs per measure (default 10)")
    args = parser.parse_args(argv)

    import torch

    cuda = torch.cuda.is_available()
    size, maskrcnn_size = args.size, args.maskrcnn_size
    if not cuda:
        print("CUDA is not available here: running the CPU part only, on a small photo "
              f"({CPU_ONLY_SIZE} px); run this on a CUDA machine for the GPU figures.")
        size, maskrcnn_size = min(size, CPU_ONLY_SIZE), min(maskrcnn_size, CPU_ONLY_MASKRCNN_SIZE)
    else:
        print(f"CUDA: {torch.cuda.get_device_name(0)}, torch {torch.__version__}")
    rows = run(size, maskrcnn_size, args.repeats, cuda)
    print()
    print(table(rows, size, maskrcnn_size))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

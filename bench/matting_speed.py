"""Per-image CPU time of the offline matting path: closed-form matting, compositing, encoding.

    .venv/bin/python bench/matting_speed.py [--image PHOTO] [--trimap TRIMAP] [--sizes 0.5,1,2]
                                            [--repeat 2] [--no-baseline]

The photo (default: the shipped portrait samples/astronaut.png) is scaled (bicubic) to each
size in megapixels. Its trimap is, by default, the real one: the segmentation service
(U^2-Net-p, offline) is started with gunicorn and asked for the trimap of each scaled photo,
so the unknown band is what the pipeline would really see. ``--trimap`` uses a given trimap
instead (scaled with nearest neighbour), e.g. a data set's.

Per size it prints the median over ``--repeat`` runs of the CPU time (this process, all
threads) and the wall time of:

* matting: :class:`ClosedFormBackend` as the service runs it (crop to the unknown band's
  box, working size capped by ``BACKDROP_CLOSED_FORM_MAX_SIDE`` and
  ``BACKDROP_CLOSED_FORM_MAX_UNKNOWN``);
* compositing: colour background, and masked blur background;
* encoding: PNG of the transparent result, JPEG of the composite.

Baseline (unless ``--no-baseline``): the same backend with the band restriction and the
caps off, i.e. pymatting solving the whole image, at the smallest size; the ratio of the
two is printed.
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import requests
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from matting_api.backends.closed_form import ClosedFormBackend  # noqa: E402
from matting_api.pipeline import encode_result  # noqa: E402
from render import composite as compositing  # noqa: E402
from render import render as render_image  # noqa: E402
from service_common.config import Settings  # noqa: E402
from service_common.serve import Service, free_port, running  # noqa: E402


def scaled(rgb: np.ndarray, megapixels: float) -> np.ndarray:
    h, w = rgb.shape[:2]
    factor = (megapixels * 1e6 / (w * h)) ** 0.5
    size = (round(w * factor), round(h * factor))
    return np.asarray(Image.fromarray(rgb).resize(size, Image.Resampling.BICUBIC))


def png_bytes(rgb: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def measure(fn, repeat: int) -> tuple[float, float, object]:
    """Median CPU seconds, median wall seconds, last result."""
    cpu, wall, result = [], [], None
    for _ in range(repeat):
        c0, w0 = time.process_time(), time.perf_counter()
        result = fn()
        cpu.append(time.process_time() - c0)
        wall.append(time.perf_counter() - w0)
    return statistics.median(cpu), statistics.median(wall), result


def trimaps_from_service(images: list[np.ndarray]) -> list[np.ndarray]:
    common = {"BACKDROP_LOG_LEVEL": "WARNING", "BACKDROP_TORCH_THREADS": "1",
              "BACKDROP_SEGMENTATION_BACKEND": "u2netp"}
    seg = Service("segmentation", free_port(), timeout=300, env=common)
    out = []
    with running(seg, ready_timeout=180):
        for rgb in images:
            resp = requests.post(seg.url + "/v1/trimap", timeout=300,
                                 files={"image": ("i.png", png_bytes(rgb), "image/png")})
            resp.raise_for_status()
            out.append(np.asarray(Image.open(io.BytesIO(resp.content)).convert("L")))
    return out


def unknown_box_size(trimap: np.ndarray) -> tuple[int, int]:
    rows = np.flatnonzero((trimap == 128).any(axis=1))
    cols = np.flatnonzero((trimap == 128).any(axis=0))
    return (int(cols[-1] - cols[0] + 1), int(rows[-1] - rows[0] + 1)) if rows.size else (0, 0)


def bench_one(backend: ClosedFormBackend, rgb: np.ndarray, trimap: np.ndarray,
              repeat: int) -> str:
    """One table row: matting, compositing (colour, blur) and encoding (PNG, JPEG) times."""
    h, w = trimap.shape
    m_cpu, m_wall, (fg, alpha) = measure(lambda: backend.matte(rgb, trimap), repeat)
    c_cpu, c_wall, composite = measure(lambda: render_image(
        rgb, fg, alpha, bg_mode="color", bg_color=(129, 212, 250, 255)), repeat)
    b_cpu, b_wall, _ = measure(lambda: render_image(rgb, fg, alpha, bg_mode="blur"), repeat)
    cut = compositing.transparent(fg, alpha)
    p_cpu, p_wall, _ = measure(lambda: encode_result(cut, "png"), repeat)
    j_cpu, j_wall, _ = measure(lambda: encode_result(composite, "jpg"), repeat)
    bw, bh = unknown_box_size(trimap)
    return (f"{w:>5}x{h:<5} {np.mean(trimap == 128):>7.1%} {bw:>4}x{bh:<5} "
            f"{m_cpu:>6.2f} ({m_wall:>5.2f}) {c_cpu:>6.3f} ({c_wall:>5.3f}) "
            f"{b_cpu:>6.3f} ({b_wall:>5.3f}) {p_cpu:>5.3f} ({p_wall:>5.3f}) "
            f"{j_cpu:>5.3f} ({j_wall:>5.3f})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--image", type=Path, default=REPO / "samples" / "astronaut.png")
    parser.add_argument("--trimap", type=Path, default=None)
    parser.add_argument("--sizes", default="0.5,1,2", help="megapixels, comma-separated")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--no-baseline", action="store_true")
    args = parser.parse_args(argv)

    settings = Settings.from_env()
    sizes = [float(s) for s in args.sizes.split(",")]
    photo = np.asarray(Image.open(args.image).convert("RGB"))
    images = [scaled(photo, mp) for mp in sizes]
    if args.trimap is not None:
        given = Image.open(args.trimap).convert("L")
        trimaps = [np.asarray(given.resize((im.shape[1], im.shape[0]), Image.Resampling.NEAREST))
                   for im in images]
        source = f"given trimap {args.trimap}"
    else:
        trimaps = trimaps_from_service(images)
        source = "trimaps from the segmentation service (u2netp)"

    backend = ClosedFormBackend(max_side=settings.closed_form_max_side)
    backend.warm_up()
    print(f"photo: {args.image} ({photo.shape[1]}x{photo.shape[0]}), {source}")
    print(f"closed-form max_side={backend.max_side}, max_unknown={backend.max_unknown}; "
          f"median of {args.repeat} runs; seconds as CPU (wall)")
    header = (f"{'size':>11} {'unknown':>8} {'band box':>10} {'matting':>14} "
              f"{'comp colour':>14} {'comp blur':>14} {'PNG':>13} {'JPEG':>13}")
    print(header)
    rows = [bench_one(backend, rgb, trimap, args.repeat)
            for rgb, trimap in zip(images, trimaps, strict=True)]
    for row in rows:
        print(row)

    if not args.no_baseline:
        rgb, trimap = images[0], trimaps[0]
        whole = ClosedFormBackend(max_side=0, max_unknown=0, restrict=False)
        w_cpu, w_wall, _ = measure(lambda: whole.matte(rgb, trimap), args.repeat)
        m_cpu, _, _ = measure(lambda: backend.matte(rgb, trimap), args.repeat)
        h, w = trimap.shape
        print(f"baseline at {w}x{h}: whole image solved (no band box, no caps): "
              f"{w_cpu:.2f} s CPU ({w_wall:.2f} s wall); ours {m_cpu:.2f} s CPU; "
              f"ratio {w_cpu / m_cpu:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

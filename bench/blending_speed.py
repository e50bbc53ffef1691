"""Per-image cost of the compositing step: alpha compositing vs Poisson blending.

    .venv/bin/python bench/blending_speed.py [--sizes 0.5,1,2] [--repeat 3] [--synthetic]
    .venv/bin/python bench/blending_speed.py --figure docs/poisson_blending.png

Only the compositing step is timed, in-process, as the service runs it
(:func:`matting_api.render_image` with ``bg_mode=color``): ``blend=alpha``,
``poisson`` and ``poisson_mixed``, each the median of ``--repeat`` runs (wall time; OpenCV
uses its own thread pool, its size is printed), and as a ratio to alpha compositing at the
same size in the same run.

The picture: by default the shipped portrait (samples/astronaut.png) with its real matte,
made once at 512 x 512 the offline way (MODNet prior in-process, closed-form refinement),
then photo, foreground and matte scaled (bicubic / bilinear) to each size in megapixels.
``--synthetic`` uses a soft-edged disc on a gradient instead (no model needed).

``--figure PATH`` writes the before/after figure of docs/poisson_blending.md instead: rows
plain colour, Hubble Deep Field, the photo's own scene dimmed; columns alpha, poisson as it
was (the whole subject solved in the gradient domain), poisson and poisson_mixed as they
are (the correction only in the edge band); and prints the mean change against alpha over
the face, over the subject's interior and over the edge band, per row.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.figures import label  # noqa: E402
from render import backgrounds, colour, poisson  # noqa: E402
from render import composite as compositing  # noqa: E402
from render import render as render_image  # noqa: E402

PHOTO = REPO / "samples" / "astronaut.png"
HUBBLE = REPO / "samples" / "hubble_deep_field.jpg"
COLOUR = (70, 130, 180, 255)  # steelblue
BLENDS = ("alpha", "poisson", "poisson_mixed")


def real_matte() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The portrait, its foreground colours and matte, made the offline service's way."""
    from matting_api.backends.closed_form import ClosedFormBackend
    from segmentation_api.backends.modnet import MODNET, MODNetBackend
    from trimap.from_prior import prior_trimap

    rgb = np.asarray(Image.open(PHOTO).convert("RGB"))
    prior = MODNetBackend(MODNET.path(REPO / "models"), threads=1).alpha(rgb)
    fg, alpha = ClosedFormBackend().matte(rgb, prior_trimap(prior), prior)
    return rgb, fg, alpha


def synthetic_matte(size: int = 512) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A light disc with a 6-px soft edge on a blue-green gradient."""
    yy, xx = np.mgrid[:size, :size].astype(np.float32)
    dist = np.hypot(xx - size / 2, yy - size / 2)
    alpha = np.clip((size * 0.3 - dist) / 6.0, 0.0, 1.0).astype(np.float32)
    fg = np.empty((size, size, 3), np.float32)
    fg[:] = (0.9, 0.8, 0.6)
    bg = np.dstack([np.zeros_like(xx), yy / size, xx / size]).astype(np.float32)
    rgb = colour.to_u8(alpha[..., None] * fg + (1 - alpha[..., None]) * bg)
    return rgb, fg, alpha


def scaled(rgb: np.ndarray, fg: np.ndarray, alpha: np.ndarray, megapixels: float):
    h, w = alpha.shape
    factor = (megapixels * 1e6 / (w * h)) ** 0.5
    size = (round(w * factor), round(h * factor))
    rgb_s = cv2.resize(rgb, size, interpolation=cv2.INTER_CUBIC)
    fg_s = np.clip(cv2.resize(fg, size, interpolation=cv2.INTER_CUBIC), 0.0, 1.0)
    alpha_s = np.clip(cv2.resize(alpha, size, interpolation=cv2.INTER_LINEAR), 0.0, 1.0)
    return rgb_s, fg_s.astype(np.float32), alpha_s.astype(np.float32)


def median_ms(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append((time.perf_counter() - started) * 1000.0)
    return statistics.median(times)


def run_speed(rgb, fg, alpha, sizes: list[float], repeat: int) -> None:
    print(f"OpenCV {cv2.__version__}, {cv2.getNumThreads()} threads; compositing step only "
          f"(bg_mode=color), median of {repeat} runs, wall ms (ratio to alpha)")
    print(f"{'MP':>4} {'size':>11} {'alpha':>9} {'poisson':>16} {'poisson_mixed':>16}")
    for mp in sizes:
        r, f, a = scaled(rgb, fg, alpha, mp)
        cells = {}
        for blend in BLENDS:
            cells[blend] = median_ms(lambda b=blend, r=r, f=f, a=a: render_image(
                r, f, a, bg_mode="color", bg_color=COLOUR, blend=b), repeat)
        base = cells["alpha"]
        print(f"{mp:>4g} {a.shape[1]:>5}x{a.shape[0]:<5} {base:>9.1f} "
              + " ".join(f"{cells[b]:>8.1f} ({cells[b] / base:>4.1f}x)" for b in BLENDS[1:]))


def dimmed_scene(rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """The photo's own background (subject masked out, blurred a little) at half the light."""
    h, w = alpha.shape
    scene = backgrounds.blur_background(rgb, alpha, backgrounds.default_blur_radius(w, h))
    return colour.linear_to_u8(colour.u8_to_linear(scene) * 0.35)


#: The face of the 512 x 512 sample portrait (rows, columns).
FACE = (slice(100, 150), slice(190, 250))


def write_figure(path: Path, rgb, fg, alpha, tile: int) -> None:
    h, w = alpha.shape
    scenes = {
        "plain colour": backgrounds.solid_background(COLOUR, w, h),
        "Hubble Deep Field": backgrounds.cover_resize(
            np.asarray(Image.open(HUBBLE).convert("RGB")), w, h),
        "own scene, dimmed": dimmed_scene(rgb, alpha),
    }
    weight = poisson.edge_weight(alpha)
    interior = (alpha >= poisson.OPAQUE_ALPHA) & (weight == 0)
    band = (alpha > 0.5) & (weight > 0)
    columns = {
        "alpha": lambda bg: compositing.composite(fg, alpha, bg),
        "poisson, before": lambda bg: poisson.poisson_composite(rgb, fg, alpha, bg, edge_only=False),
        "poisson": lambda bg: poisson.poisson_composite(rgb, fg, alpha, bg),
        "poisson_mixed": lambda bg: poisson.poisson_composite(rgb, fg, alpha, bg, mixed=True),
    }
    rows = []
    for name, background in scenes.items():
        tiles, results = [], {}
        for column, make in columns.items():
            out = make(background)
            results[column] = out
            small = cv2.resize(out, (tile, tile), interpolation=cv2.INTER_AREA)
            tiles.append(label(small, f"{column} / {name}" if column == "alpha" else column))
        rows.append(np.concatenate(tiles, axis=1))
        base = results["alpha"].astype(np.float32)
        for column in list(columns)[1:]:
            diff = results[column].astype(np.float32) - base
            parts = {"face": diff[FACE].reshape(-1, 3), "interior": diff[interior], "edge band": diff[band]}
            print(f"{name:>18} {column:>16}: mean change vs alpha (R, G, B): " + "; ".join(
                f"{part} " + ", ".join(f"{v:+.0f}" for v in values.mean(axis=0))
                for part, values in parts.items()))
    figure = np.concatenate(rows, axis=0)
    image = Image.fromarray(figure).quantize(colors=256, method=Image.Quantize.MEDIANCUT,
                                             dither=Image.Dither.FLOYDSTEINBERG)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, optimize=True)
    print(f"wrote {path} ({figure.shape[1]}x{figure.shape[0]}, "
          f"{path.stat().st_size / 1024:.0f} KB)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="0.5,1,2", help="megapixels, comma-separated")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--synthetic", action="store_true",
                        help="a synthetic disc instead of the portrait's real matte")
    parser.add_argument("--figure", type=Path, default=None,
                        help="write the before/after figure to this PNG instead of timing")
    parser.add_argument("--tile", type=int, default=200, help="figure tile size, px")
    args = parser.parse_args(argv)
    rgb, fg, alpha = synthetic_matte() if args.synthetic else real_matte()
    if args.figure is not None:
        write_figure(args.figure, rgb, fg, alpha, args.tile)
        return 0
    print("picture: " + ("synthetic disc" if args.synthetic else
                         f"{PHOTO.name} with its real matte (u2netp + closed-form at 512 px)"))
    run_speed(rgb, fg, alpha, [float(s) for s in args.sizes.split(",")], args.repeat)
    return 0


if __name__ == "__main__":
    sys.exit(main())

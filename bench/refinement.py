"""How much the matting stage recovers from a degraded prior: the refinement's own benchmark.

    .venv/bin/python bench/refinement.py [--data ../shared/data/dev] [--split report]
    .venv/bin/python bench/refinement.py --split tune --grid '{"width_factor": [0.125, 0.25]}'

There is no set of people with ground-truth alpha here, so the refinement is measured on the
dev photos that have one (alphamatting.com objects, evaluation only): each ground-truth matte
is degraded into a plausible prior, as a person model run at a fraction of the photo's
resolution would give it, and the systems below start from that prior:

* degradation (:func:`degrade`, factor ``f``, deterministic per photo): thin strands dropped
  (grey opening, 5 px disc), the edge moved by ``round(0.75 f)`` px (dilated or eroded, a
  seeded coin per photo), downscaled by ``f`` (area) and upscaled back (bilinear), blurred
  (Gaussian, sigma ``0.4 f``). ``f = 2`` and ``4``: MODNet's 512 px working size on photos
  with 1000 and 2000 px short sides;
* conditions: the photo itself (``lab``: a monitor behind the object), and the photo's
  subject composited over a real background (``comp``: beach, Hubble deep field, a car park;
  the subject's colours estimated from the photo and its true alpha), so that the colour
  model of closed-form matting also meets busy backgrounds;
* systems: ``prior`` (the degraded matte as it is); ``cf-trimap`` (the matting of a plain
  trimap: the segmentation service's trimap rule on the prior, then closed-form matting
  without the prior: the pipeline before the refinement); ``refined`` (ours: the prior's
  band, :func:`trimap.from_prior.prior_trimap`, and closed-form matting pulled towards the
  prior, :class:`matting_api.backends.closed_form.ClosedFormBackend`).

Metrics over the whole image, 8-bit mattes (:mod:`bench.metrics`): SAD, MSE, Grad. The photos
are split by :mod:`bench.split`: parameters are chosen with ``--split tune`` (and ``--grid``,
which refuses any other split); the published figures come from ``--split report``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench import metrics, split  # noqa: E402
from matting_api.backends.closed_form import ClosedFormBackend  # noqa: E402
from render.backgrounds import cover_resize  # noqa: E402
from trimap.from_masks import build_trimap  # noqa: E402
from trimap.from_prior import PriorBand, prior_trimap  # noqa: E402

FACTORS = (2.0, 4.0)
CONDITIONS = ("lab", "comp")
SYSTEMS = ("prior", "cf-trimap", "refined")
METRICS = ("sad", "mse", "grad")
#: Parameters --grid may vary: PriorBand's and the backend's prior term.
BAND_KEYS = ("low", "high", "width_factor", "min_px")
BACKEND_KEYS = ("prior_weight", "prior_floor", "prior_power")


def _disk(radius: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))


def degrade(alpha: np.ndarray, factor: float, seed: int, strand_px: int = 5) -> np.ndarray:
    """A plausible prior from a true matte (``H x W`` float32 in [0, 1]); see the module docstring."""
    a = cv2.morphologyEx(alpha.astype(np.float32), cv2.MORPH_OPEN, _disk(strand_px // 2))
    shift = max(1, round(0.75 * factor))
    grow = np.random.default_rng(seed).random() < 0.5
    a = (cv2.dilate if grow else cv2.erode)(a, _disk(shift))
    height, width = a.shape
    small = cv2.resize(a, (max(1, round(width / factor)), max(1, round(height / factor))),
                       interpolation=cv2.INTER_AREA)
    a = cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)
    return np.clip(cv2.GaussianBlur(a, (0, 0), 0.4 * factor), 0.0, 1.0)


def real_backgrounds(data: Path) -> list[np.ndarray]:
    """The real backgrounds of the ``comp`` condition (RGB uint8)."""
    found = [np.asarray(Image.open(data / "background" / "beach.png").convert("RGB")),
             np.asarray(Image.open(REPO / "samples" / "hubble_deep_field.jpg").convert("RGB"))]
    clip = cv2.VideoCapture(str(data / "background" / "car-detection.mp4"))
    ok, frame = clip.read()
    clip.release()
    if ok:
        found.append(np.ascontiguousarray(frame[..., ::-1]))
    return found


def composite_over(rgb: np.ndarray, alpha: np.ndarray, background: np.ndarray) -> np.ndarray:
    """The photo's subject over ``background``: its colours estimated from the photo and the
    true alpha, mixed in sRGB values as matting data sets are."""
    from pymatting import estimate_foreground_ml

    fg = estimate_foreground_ml(rgb / 255.0, alpha.astype(np.float64))
    bg = cover_resize(background, rgb.shape[1], rgb.shape[0]) / 255.0
    a = alpha[..., None]
    return np.round(np.clip(a * fg + (1 - a) * bg, 0, 1) * 255).astype(np.uint8)


def _u8(alpha: np.ndarray) -> np.ndarray:
    return np.round(np.clip(alpha, 0, 1) * 255) / 255.0


def cases(data: Path, names: list[str], all_names: list[str], factors: tuple[float, ...]):
    """``(label, rgb, true alpha, prior)`` for every photo, condition and factor."""
    bgs = real_backgrounds(data)
    for name in names:
        index = all_names.index(name)
        rgb = np.asarray(Image.open(data / "images" / f"{name}.png").convert("RGB"))
        gt = np.asarray(Image.open(data / "alpha" / f"{name}.png").convert("L")).astype(np.float32) / 255
        composited = composite_over(rgb, gt, bgs[index % len(bgs)])
        for factor in factors:
            prior = degrade(gt, factor, seed=index)
            yield f"{name}/lab/x{factor:g}", rgb, gt, prior
            yield f"{name}/comp/x{factor:g}", composited, gt, prior


def run_systems(rgb, prior, band: PriorBand, backend: ClosedFormBackend,
                plain: ClosedFormBackend, systems=SYSTEMS) -> dict[str, tuple[np.ndarray, float]]:
    """Each system's matte and seconds."""
    out: dict[str, tuple[np.ndarray, float]] = {"prior": (prior, 0.0)}
    if "cf-trimap" in systems:
        started = time.perf_counter()
        trimap = build_trimap(prior)
        alpha = plain.matte(rgb, trimap.trimap)[1] if trimap is not None else np.zeros_like(prior)
        out["cf-trimap"] = (alpha, time.perf_counter() - started)
    started = time.perf_counter()
    alpha = backend.matte(rgb, prior_trimap(prior, band), prior)[1]
    out["refined"] = (alpha, time.perf_counter() - started)
    return out


def evaluate(all_cases, band: PriorBand, backend: ClosedFormBackend, systems=SYSTEMS,
             verbose: bool = True) -> dict:
    plain = ClosedFormBackend()
    rows: dict[str, dict[str, dict[str, float]]] = {}
    for label, rgb, gt, prior in all_cases:
        results = run_systems(rgb, prior, band, backend, plain, systems)
        rows[label] = {
            system: {**{k: metrics.all_metrics(_u8(a), gt)[k] for k in METRICS}, "s": secs}
            for system, (a, secs) in results.items() if system in systems
        }
        if verbose:
            print(f"{label:24s}" + "".join(f"{s:>11s} {rows[label][s]['sad']:6.2f}" for s in rows[label]),
                  flush=True)
    return rows


def means(rows: dict, condition: str | None = None) -> dict[str, dict[str, float]]:
    """Mean of each metric per system, over every case or those of one ``condition``."""
    chosen = [r for label, r in rows.items() if condition is None or f"/{condition}/" in label]
    systems = chosen[0].keys()
    return {s: {k: float(np.mean([r[s][k] for r in chosen])) for k in (*METRICS, "s")} for s in systems}


def report(rows: dict) -> dict:
    summary = {}
    print("\n## Means (whole image, 8-bit mattes; lower is better)\n")
    print("| condition | system | SAD | MSE | Grad | s / image |\n|---|---|---:|---:|---:|---:|")
    for condition in (*CONDITIONS, None):
        m = means(rows, condition)
        key = condition or "both"
        summary[key] = m
        for system, v in m.items():
            print(f"| {key} | {system} | {v['sad']:.2f} | {v['mse']:.2f} | {v['grad']:.2f} | {v['s']:.2f} |")
    both = summary["both"]
    print("\n## Ratios (both conditions; < 1: the refinement is better)")
    for base in ("prior", "cf-trimap"):
        print(f"refined / {base}: " + "  ".join(
            f"{k} {both['refined'][k] / both[base][k]:.3f}" for k in METRICS if both[base][k]))
    return summary


def grid(all_cases, spec: dict[str, list]) -> list[dict]:
    """Mean SAD of the refinement for every combination of the parameters in ``spec``."""
    unknown = set(spec) - set(BAND_KEYS) - set(BACKEND_KEYS)
    if unknown:
        raise SystemExit(f"--grid: unknown parameter(s) {', '.join(sorted(unknown))}; "
                         f"known: {', '.join(BAND_KEYS + BACKEND_KEYS)}")
    results = []
    cached = list(all_cases)
    for combo in itertools.product(*spec.values()):
        params = dict(zip(spec, combo, strict=True))
        band = PriorBand(**{k: v for k, v in params.items() if k in BAND_KEYS})
        backend = ClosedFormBackend(**{k: v for k, v in params.items() if k in BACKEND_KEYS})
        rows = evaluate(cached, band, backend, systems=("refined",), verbose=False)
        m = {c: means(rows, c)["refined"]["sad"] for c in CONDITIONS}
        m["both"] = means(rows)["refined"]["sad"]
        results.append({"params": params, "sad": m})
        print(f"{json.dumps(params)}  SAD lab {m['lab']:.3f}  comp {m['comp']:.3f}  both {m['both']:.3f}",
              flush=True)
    best = min(results, key=lambda r: r["sad"]["both"])
    print(f"\nbest on this split: {json.dumps(best['params'])} (SAD {best['sad']['both']:.3f})")
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "dev")
    parser.add_argument("--split", choices=split.SPLITS, default="report",
                        help="which photos (bench/split.py); tune on 'tune', publish 'report'")
    parser.add_argument("--factors", default=",".join(f"{f:g}" for f in FACTORS),
                        help="degradation factors, comma-separated (default 2,4)")
    parser.add_argument("--grid", default=None,
                        help='JSON {"parameter": [values]}: search them (only with --split tune)')
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args(argv)
    if not (args.data / "images").is_dir() or not (args.data / "alpha").is_dir():
        raise SystemExit(split.missing_data_message(args.data))
    all_names = sorted(p.stem for p in (args.data / "images").glob("*.png")
                       if (args.data / "alpha" / p.name).exists())
    names = split.select(all_names, args.split)
    factors = tuple(float(f) for f in args.factors.split(","))
    print(f"split {args.split}: {', '.join(names)}; factors {factors}", flush=True)
    all_cases = cases(args.data, names, all_names, factors)
    if args.grid:
        if args.split != "tune":
            raise SystemExit("--grid tunes parameters: run it on --split tune only")
        output: object = grid(all_cases, json.loads(args.grid))
    else:
        rows = evaluate(all_cases, PriorBand(), ClosedFormBackend())
        output = {"split": args.split, "images": names, "factors": factors,
                  "means": report(rows), "per_case": rows}
    if args.json:
        args.json.write_text(json.dumps(output, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""How much the matting stage recovers from a degraded prior: the refinement's own benchmark.

    .venv/bin/python bench/refinement.py [--data ../shared/data/dev] [--split report]
    .venv/bin/python bench/refinement.py --split tune --grid '{"width_factor": [0.125, 0.25]}'
    .venv/bin/python bench/refinement.py --degradations flyaway --systems prior,refined
    .venv/bin/python bench/refinement.py --foreground [--split tune]

There is no set of people with ground-truth alpha here, so the refinement is measured on the
dev photos that have one (alphamatting.com objects, evaluation only): each ground-truth matte
is degraded into a plausible prior, as a person model run at a fraction of the photo's
resolution would give it, and the systems below start from that prior:

* degradation (:func:`degrade`, factor ``f``, deterministic per photo): thin strands dropped
  (grey opening, 5 px disc), the edge moved by ``round(0.75 f)`` px (dilated or eroded, a
  seeded coin per photo), downscaled by ``f`` (area) and upscaled back (bilinear), blurred
  (Gaussian, sigma ``0.4 f``). ``f = 2`` and ``4``: MODNet's 512 px working size on photos
  with 1000 and 2000 px short sides;
* the ``flyaway`` degradation (:func:`degrade_flyaway`, issue 23): hair that flies, as a
  person model sees it, wide, sparse and semi-transparent: the true matte's semi-transparent
  part widened (grey dilation, ``f`` px disc) and thinned (halved), then blurred at low
  resolution (downscaled by ``2 f``, upscaled, Gaussian sigma ``f``): a faint haze, wider
  than the strands, where they fly; laid over the ``lowres`` prior above (the maximum of
  both). ``--degradations`` picks them (default both; their figures are reported apart);
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

``--foreground`` measures the foreground colour estimates instead (:func:`foreground_errors`):
each photo's own colours ``F`` (true where alpha is 1; in the soft region a textured colour
field that no estimator is built around) are composited with the true alpha over a real
background, each estimator gets that composite and an alpha, and the error is what a new
composite shows, ``sum alpha |F_est - F|`` (8-bit, mean over RGB, / 1000, like SAD), with
the true alpha and with the refined alpha of the ``lowres`` prior (f = 2).
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
DEGRADATIONS = ("lowres", "flyaway")
CONDITIONS = ("lab", "comp")
SYSTEMS = ("prior", "cf-trimap", "refined")
METRICS = ("sad", "mse", "grad")
#: Parameters --grid may vary: PriorBand's and the backend's prior term.
BAND_KEYS = ("low", "high", "width_factor", "min_px")
BACKEND_KEYS = ("prior_weight", "prior_floor", "prior_power", "max_side", "max_unknown")
#: The foreground estimators --foreground compares (the backend's ``best`` and ``fast``, and
#: pymatting's multi-level estimate at full resolution, ``best`` before issue 23).
FOREGROUNDS = ("ml-full", "best", "fast")


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


def degrade_flyaway(alpha: np.ndarray, factor: float, seed: int) -> np.ndarray:
    """Hair that flies as a low-resolution person model sees it (``H x W`` float32 in [0, 1]):
    the ``lowres`` prior with the true matte's semi-transparent part widened, thinned and
    blurred at low resolution laid over it; see the module docstring."""
    alpha = alpha.astype(np.float32)
    soft = np.where(alpha < 0.98, alpha, 0.0).astype(np.float32)
    haze = 0.5 * cv2.dilate(soft, _disk(max(1, round(factor))))
    height, width = alpha.shape
    step = 2 * factor
    small = cv2.resize(haze, (max(1, round(width / step)), max(1, round(height / step))),
                       interpolation=cv2.INTER_AREA)
    haze = cv2.GaussianBlur(cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR),
                            (0, 0), factor)
    return np.clip(np.maximum(degrade(alpha, factor, seed), haze), 0.0, 1.0)


DEGRADE = {"lowres": degrade, "flyaway": degrade_flyaway}


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


def cases(data: Path, names: list[str], all_names: list[str], factors: tuple[float, ...],
          degradations: tuple[str, ...] = ("lowres",)):
    """``(label, rgb, true alpha, prior)`` for every photo, condition, factor and degradation;
    the label ``name/condition/x<factor>`` (``lowres``) or ``name/condition/x<factor>/<degradation>``."""
    bgs = real_backgrounds(data)
    for name in names:
        index = all_names.index(name)
        rgb = np.asarray(Image.open(data / "images" / f"{name}.png").convert("RGB"))
        gt = np.asarray(Image.open(data / "alpha" / f"{name}.png").convert("L")).astype(np.float32) / 255
        composited = composite_over(rgb, gt, bgs[index % len(bgs)])
        for degradation in degradations:
            tag = "" if degradation == "lowres" else f"/{degradation}"
            for factor in factors:
                prior = DEGRADE[degradation](gt, factor, seed=index)
                yield f"{name}/lab/x{factor:g}{tag}", rgb, gt, prior
                yield f"{name}/comp/x{factor:g}{tag}", composited, gt, prior


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


def degradation_of(label: str) -> str:
    """The degradation of a case's label (see :func:`cases`)."""
    last = label.rsplit("/", 1)[-1]
    return last if last in DEGRADATIONS else "lowres"


def means(rows: dict, condition: str | None = None, degradation: str | None = None
          ) -> dict[str, dict[str, float]]:
    """Mean of each metric per system, over every case or those of one ``condition`` and/or
    one ``degradation``."""
    chosen = [r for label, r in rows.items()
              if (condition is None or f"/{condition}/" in label)
              and (degradation is None or degradation_of(label) == degradation)]
    systems = chosen[0].keys()
    return {s: {k: float(np.mean([r[s][k] for r in chosen])) for k in (*METRICS, "s")} for s in systems}


def report(rows: dict) -> dict:
    """Print and return the means per degradation and condition (and over both conditions)."""
    summary: dict = {}
    present = [d for d in DEGRADATIONS if any(degradation_of(label) == d for label in rows)]
    print("\n## Means (whole image, 8-bit mattes; lower is better)\n")
    print("| degradation | condition | system | SAD | MSE | Grad | s / image |\n"
          "|---|---|---|---:|---:|---:|---:|")
    for degradation in present:
        summary[degradation] = {}
        for condition in (*CONDITIONS, None):
            m = means(rows, condition, degradation)
            key = condition or "both"
            summary[degradation][key] = m
            for system, v in m.items():
                print(f"| {degradation} | {key} | {system} | {v['sad']:.2f} | {v['mse']:.2f} | "
                      f"{v['grad']:.2f} | {v['s']:.2f} |")
    for degradation in present:
        both = summary[degradation]["both"]
        print(f"\n## Ratios, {degradation} (both conditions; < 1: the refinement is better)")
        for base in ("prior", "cf-trimap"):
            if base in both and "refined" in both:
                print(f"refined / {base}: " + "  ".join(
                    f"{k} {both['refined'][k] / both[base][k]:.3f}" for k in METRICS if both[base][k]))
    return summary


def _estimate_foreground(method: str, image: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    from pymatting import estimate_foreground_ml

    from matting_api.backends.foreground import estimate_foreground_best, estimate_foreground_fast

    if method == "ml-full":
        return np.clip(estimate_foreground_ml(image, alpha), 0.0, 1.0)
    if method == "best":
        return estimate_foreground_best(image, alpha)
    return estimate_foreground_fast(image, alpha)


def foreground_errors(data: Path, names: list[str], all_names: list[str]) -> dict:
    """The composite error of each foreground estimator (see the module docstring): per photo
    and alpha (``true``, ``refined``), ``sum alpha |F_est - F| * 255 / 3 / 1000`` and seconds."""
    bgs = real_backgrounds(data)
    backend = ClosedFormBackend()
    rows: dict[str, dict[str, dict[str, float]]] = {}
    for name in names:
        index = all_names.index(name)
        colours = np.asarray(Image.open(data / "images" / f"{name}.png").convert("RGB")) / 255.0
        gt = np.asarray(Image.open(data / "alpha" / f"{name}.png").convert("L")) / 255.0
        height, width = gt.shape
        image = gt[..., None] * colours + (1 - gt[..., None]) * (
            cover_resize(bgs[index % len(bgs)], width, height) / 255.0)
        image_u8 = np.round(image * 255).astype(np.uint8)
        prior = degrade(gt.astype(np.float32), 2.0, seed=index)
        refined = backend.matte(image_u8, prior_trimap(prior), prior)[1].astype(np.float64)
        for which, alpha in (("true", gt), ("refined", refined)):
            label = f"{name}/{which}"
            rows[label] = {}
            for method in FOREGROUNDS:
                started = time.perf_counter()
                fg = _estimate_foreground(method, image_u8 / 255.0, alpha)
                secs = time.perf_counter() - started
                error = float((alpha[..., None] * np.abs(fg - colours)).sum() * 255 / 3 / 1000)
                rows[label][method] = {"error": error, "s": secs}
            print(f"{label:18s}" + "".join(f"{m:>9s} {v['error']:7.2f}" for m, v in rows[label].items()),
                  flush=True)
    print("\n| alpha | " + " | ".join(FOREGROUNDS) + " |\n|---|" + "---:|" * len(FOREGROUNDS))
    for which in ("true", "refined"):
        chosen = [r for label, r in rows.items() if label.endswith(f"/{which}")]
        print(f"| {which} | " + " | ".join(
            f"{np.mean([r[m]['error'] for r in chosen]):.2f} ({np.mean([r[m]['s'] for r in chosen]):.2f} s)"
            for m in FOREGROUNDS) + " |")
    return rows


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
        m = {d: means(rows, degradation=d)["refined"]["sad"] for d in DEGRADATIONS
             if any(degradation_of(label) == d for label in rows)}
        m.update({c: means(rows, c)["refined"]["sad"] for c in CONDITIONS})
        m["both"] = means(rows)["refined"]["sad"]
        results.append({"params": params, "sad": m})
        print(f"{json.dumps(params)}  SAD " + "  ".join(f"{k} {v:.3f}" for k, v in m.items()), flush=True)
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
    parser.add_argument("--degradations", default=",".join(DEGRADATIONS),
                        help=f"comma-separated, of {', '.join(DEGRADATIONS)} (default: both)")
    parser.add_argument("--systems", default=",".join(SYSTEMS),
                        help=f"comma-separated, of {', '.join(SYSTEMS)} (refined always runs)")
    parser.add_argument("--foreground", action="store_true",
                        help="measure the foreground colour estimates instead (module docstring)")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args(argv)
    if not (args.data / "images").is_dir() or not (args.data / "alpha").is_dir():
        raise SystemExit(split.missing_data_message(args.data))
    all_names = sorted(p.stem for p in (args.data / "images").glob("*.png")
                       if (args.data / "alpha" / p.name).exists())
    names = split.select(all_names, args.split)
    factors = tuple(float(f) for f in args.factors.split(","))
    degradations = tuple(d for d in args.degradations.split(",") if d)
    systems = tuple(dict.fromkeys((*[x for x in args.systems.split(",") if x], "refined")))
    for value, allowed, flag in ((degradations, DEGRADATIONS, "--degradations"),
                                 (systems, SYSTEMS, "--systems")):
        if not value or set(value) - set(allowed):
            raise SystemExit(f"{flag}: expected some of {', '.join(allowed)}")
    print(f"split {args.split}: {', '.join(names)}; factors {factors}; degradations {degradations}",
          flush=True)
    if args.foreground:
        output: object = foreground_errors(args.data, names, all_names)
    elif args.grid:
        if args.split != "tune":
            raise SystemExit("--grid tunes parameters: run it on --split tune only")
        output = grid(cases(args.data, names, all_names, factors, degradations), json.loads(args.grid))
    else:
        rows = evaluate(cases(args.data, names, all_names, factors, degradations), PriorBand(),
                        ClosedFormBackend(), systems=systems)
        output = {"split": args.split, "images": names, "factors": factors, "degradations": degradations,
                  "means": report(rows), "per_case": rows}
    if args.json:
        args.json.write_text(json.dumps(output, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""CPU speed, peak memory and accuracy cost of FBA Matting's inference options.

For every image size and configuration a *fresh subprocess* builds the model (random weights,
fixed seed), runs ``predict`` once as a warm-up and ``--repeats`` timed times on a synthetic
image + trimap (a wavy blob with an unknown band of ~7 % of the pixels), and reports:

* ``predict``: median wall time of the whole ``predict`` call (pre/post-processing included);
* ``forward``: median time spent inside the network forward(s) of those calls;
* ``CPU``: median process CPU time of a ``predict`` call (less sensitive than wall time to other
  jobs on a shared machine, though not immune: waiting worker threads spin);
* ``peak RSS``: ``ru_maxrss`` of that subprocess (imports, model and activations included;
  ``base RSS`` is the peak before the first ``predict``);
* accuracy versus the full-resolution run of the same size, in the unknown band:
  mean |Δ alpha|, mean |Δ raw alpha logit| (the network's channel 0 before clamp and fusion)
  and mean |Δ fg|.

Configurations: ``full`` (the official behaviour), ``capN`` (``max_side=N``), ``crop``
(``crop_to_unknown=True`` with ``--margin``) and ``cropN`` (crop with margin N). Time and
memory are also given as a ratio to ``full`` of the same size in the same run.

The weights are RANDOM: with them alpha in the unknown band is ~0 (nearly every pixel clamps to
exactly 0), so the alpha difference says little; the raw-logit and fg differences show how much
each option perturbs the network output, but the size of that effect with the trained FBA.pth
may differ.

Usage::

    python bench/fba_speed.py                          # 512, 1024 (full, cap512, crop)
    python bench/fba_speed.py --sizes 512 --repeats 1  # quick check
    python bench/fba_speed.py --sizes 512,1024,2048 --configs full,cap1024,cap512,crop
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent


def make_scene(size: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A synthetic ``size×size`` RGB image (float64 in [0, 1]) and two-channel trimap.

    A wavy blob (radius ~0.22·size) composited over a smooth background with a little noise;
    the unknown band is ±2.5 % of the size around the blob edge (~7 % of the pixels).
    """
    y, x = np.mgrid[0:size, 0:size].astype(np.float64)
    cy, cx, radius, band = 0.45 * size, 0.5 * size, 0.22 * size, 0.025 * size
    dist = np.hypot(y - cy, x - cx) + 0.02 * size * np.sin(5 * np.arctan2(y - cy, x - cx))
    alpha = np.clip((radius - dist) / band * 0.5 + 0.5, 0, 1)[..., None]
    fg = np.stack([0.8 + 0.1 * np.sin(x / 17), 0.5 + 0.2 * np.cos(y / 23), 0.3 + 0.1 * np.sin(x / 7)], -1)
    bg = np.stack([0.2 + 0.2 * x / size, 0.4 + 0.3 * y / size, 0.7 - 0.2 * np.sin(x / 31)], -1)
    noise = np.random.default_rng(seed).normal(0, 0.02, (size, size, 3))
    image = np.clip(alpha * fg + (1 - alpha) * bg + noise, 0, 1)
    trimap = np.zeros((size, size, 2))
    trimap[dist > radius + band, 0] = 1
    trimap[dist < radius - band, 1] = 1
    return image, trimap


def _config_kwargs(config: str, margin: int) -> dict[str, object]:
    if config == "full":
        return {}
    if config == "crop":
        return {"crop_to_unknown": True, "crop_margin": margin}
    if config.startswith("crop") and config[4:].isdigit():
        return {"crop_to_unknown": True, "crop_margin": int(config[4:])}
    if config.startswith("cap") and config[3:].isdigit():
        return {"max_side": int(config[3:])}
    raise ValueError(f"unknown config {config!r} (full, crop, cropN or capN)")


def worker(args: argparse.Namespace) -> None:
    """Run one (size, config) in this process; print a JSON line and save outputs."""
    import torch

    from matting_api.backends.fba.model import FBAMatting
    from matting_api.backends.fba.predict import predict
    from service_common.torch_runtime import set_threads

    class ProbeFBA(FBAMatting):
        """FBA that times its forwards and can return the raw alpha logit as channel 0."""

        raw_alpha = False
        forward_seconds = 0.0

        def forward(self, image, two_chan_trimap, image_n, trimap_transformed):  # type: ignore[override]
            start = time.perf_counter()
            seen: list[torch.Tensor] = []
            hook = (self.decoder.conv_up4.register_forward_hook(lambda m, i, out: seen.append(out))
                    if self.raw_alpha else None)
            try:
                out = super().forward(image, two_chan_trimap, image_n, trimap_transformed)
            finally:
                if hook is not None:
                    hook.remove()
            if seen:
                out[:, :1] = seen[0][:, :1]
            self.forward_seconds += time.perf_counter() - start
            return out

    # Same as build_model(None, num_threads=...) but with the probing subclass.
    set_threads(args.threads)
    torch.manual_seed(0)
    probe = ProbeFBA().eval()
    probe.set_ws_cache(True)
    image, trimap = make_scene(args.size)
    kwargs = _config_kwargs(args.config, args.margin)
    base_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    real_out = Path(f"{args.out}.real.npy")  # the first run's fg and alpha, kept on disk
    totals, forwards, cpu = [], [], []
    for i in range(args.warmup + args.repeats):
        probe.forward_seconds = 0.0
        start, start_cpu = time.perf_counter(), time.process_time()
        fg, _, alpha = predict(probe, image, trimap, **kwargs)
        if i >= args.warmup:
            totals.append(time.perf_counter() - start)
            cpu.append(time.process_time() - start_cpu)
            forwards.append(probe.forward_seconds)
        if i == 0:
            np.save(real_out, np.concatenate((fg, alpha[..., None]), axis=-1))
        del fg, alpha
    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    # One more, untimed, run returning the raw alpha logit in place of alpha (after the RSS
    # reading, although it needs no more memory than a normal run).
    probe.raw_alpha = True
    _, _, raw = predict(probe, image, trimap, **kwargs)
    real = np.load(real_out)
    np.savez(args.out, fg=real[..., :3], alpha=real[..., 3], raw=raw)
    print(
        json.dumps(
            {
                "predict_s": statistics.median(totals),
                "forward_s": statistics.median(forwards),
                "cpu_s": statistics.median(cpu),
                "peak_rss_mb": peak_rss_mb,
                "base_rss_mb": base_rss_mb,
            }
        )
    )


def _run_config(size: int, config: str, args: argparse.Namespace, out: Path) -> dict | None:
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--worker",
        f"--size={size}",
        f"--config={config}",
        f"--repeats={args.repeats}",
        f"--warmup={args.warmup}",
        f"--threads={args.threads}",
        f"--margin={args.margin}",
        f"--out={out}",
    ]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    if proc.returncode != 0:
        print(f"  {size} {config}: FAILED (exit {proc.returncode})\n{proc.stderr[-2000:]}")
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _ratio(value: float, ref: float | None) -> str:
    return f"({value / ref:.2f}x)" if ref else ""


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="512,1024", help="comma-separated square sizes")
    parser.add_argument("--configs", default="full,cap512,crop", help="full, crop, cropN, capN")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs after the warm-up")
    parser.add_argument("--warmup", type=int, default=1, help="untimed runs first (0 for 2048 px)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--margin", type=int, default=None, help="crop margin (px)")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--config", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.repeats < 1 or args.warmup < 0:
        parser.error("--repeats must be >= 1 and --warmup >= 0")
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    if args.margin is None:
        from matting_api.backends.fba.predict import DEFAULT_CROP_MARGIN

        args.margin = DEFAULT_CROP_MARGIN
    if args.worker:
        worker(args)
        return

    sizes = [int(s) for s in args.sizes.split(",") if s]
    configs = [c for c in args.configs.split(",") if c]
    for c in configs:
        _config_kwargs(c, args.margin)  # validate early
    print(
        f"FBA CPU benchmark: {args.threads} threads, median of {args.repeats} runs after "
        f"{args.warmup} warm-up, crop margin {args.margin}px, one fresh process per row.\n"
        "RANDOM weights: alpha in the unknown band is ~0, so |dA| says little; |dlogit| is the "
        "raw (pre-clamp) alpha logit, |dfg| the foreground. Differences are versus 'full' of "
        "the same size, mean over the unknown band.\n"
    )
    header = (
        f"{'size':>5} {'config':>8} {'predict s':>16} {'forward s':>9} {'CPU s':>16} {'peak RSS MB':>18} "
        f"{'base MB':>7} {'|dA|':>9} {'|dlogit|':>9} {'logit sd':>8} {'|dfg|':>9}"
    )
    print(header)
    with tempfile.TemporaryDirectory() as tmp:
        for size in sizes:
            _, trimap = make_scene(size)
            unknown = trimap.sum(axis=-1) == 0
            ref: dict | None = None
            ref_out: dict[str, np.ndarray] | None = None
            for config in configs:
                out = Path(tmp) / f"{size}_{config}.npz"
                res = _run_config(size, config, args, out)
                if res is None:
                    continue
                with np.load(out) as npz:
                    arrays = {k: npz[k] for k in npz.files}
                if config == "full":
                    ref, ref_out = res, arrays
                if ref_out is not None:
                    d_alpha = np.abs(arrays["alpha"] - ref_out["alpha"])[unknown].mean()
                    d_raw = np.abs(arrays["raw"] - ref_out["raw"])[unknown].mean()
                    d_fg = np.abs(arrays["fg"] - ref_out["fg"])[unknown].mean()
                    acc = f"{d_alpha:9.2e} {d_raw:9.2e} {ref_out['raw'][unknown].std():8.2e} "
                    acc += f"{d_fg:9.2e}"
                else:
                    acc = f"{'n/a (no full run)':>38}"
                pred = f"{res['predict_s']:.2f} {_ratio(res['predict_s'], ref and ref['predict_s'])}"
                cpu = f"{res['cpu_s']:.2f} {_ratio(res['cpu_s'], ref and ref['cpu_s'])}"
                rss = res["peak_rss_mb"]
                mem = f"{rss:.0f} {_ratio(rss, ref and ref['peak_rss_mb'])}"
                print(
                    f"{size:>5} {config:>8} {pred:>16} {res['forward_s']:>9.2f} {cpu:>16} {mem:>18} "
                    f"{res['base_rss_mb']:>7.0f} {acc}",
                    flush=True,
                )


if __name__ == "__main__":
    main()

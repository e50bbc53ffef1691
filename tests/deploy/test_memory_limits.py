"""The manifests' memory limits against the measured peaks (issue 24, item 2).

The figures are ``deploy/kubernetes/measured_memory.toml`` (each with its source); the limits
and requests are the Deployments' in ``deploy/kubernetes/base``. A worker's budget is what
:func:`service_common.memory.worker_memory_bytes` gives it in a container of that limit (the
limit less :data:`~service_common.memory.PROCESS_RESERVE_BYTES`, shared by the workers); it
must hold the worker's steady memory plus the measured peak of one 40 MP picture, and the
estimate the admission uses for the largest matting request (a 40 MP photo over a 40 MP
background), or such a picture would be a 413 in the shipped pod. The parallel 40 MP run of
``bench/soak.py`` must have stayed under the limit. A copy of the manifests with a lowered
limit fails the same checks.
"""

from __future__ import annotations

import re
import shutil
import sys
import tomllib
from pathlib import Path

import pytest

from bench.memory_budget import manifest_memory
from matting_api.options import MatteOptions
from matting_api.pipeline import MatteRequest, peak_bytes
from service_common.config import REPO_ROOT
from service_common.memory import MB, worker_memory_bytes

BASE = REPO_ROOT / "deploy" / "kubernetes" / "base"
MEASURED = REPO_ROOT / "deploy" / "kubernetes" / "measured_memory.toml"
MAX_PIXELS = 40_000_000

sys.path.insert(0, str(REPO_ROOT / "tests" / "robustness"))
from robust_inputs import png_header_only  # noqa: E402


def _measured() -> dict:
    return tomllib.loads(MEASURED.read_text())


def _budget_mb(limit_mib: int, workers: int, tmp: Path) -> float:
    """The worker's budget, MB, as a worker in a container of ``limit_mib`` computes it."""
    cgroup = tmp / f"cgroup-{limit_mib}-{workers}"
    cgroup.mkdir(exist_ok=True)
    (cgroup / "memory.max").write_text(f"{limit_mib * MB}\n")
    limit, source = worker_memory_bytes(0, workers, cgroup)
    assert "container" in source
    return limit / MB


def _largest_matting_estimate_mb() -> float:
    """The admission's estimate for a 40 MP photo (7303 x 5477) over a 40 MP background."""
    picture = png_header_only(7303, 5477)
    request = MatteRequest(image=picture, bg_image=picture, options=MatteOptions(bg_mode="image"))
    return peak_bytes(request, MAX_PIXELS) / MB


def problems(folder: Path, measured: dict, tmp: Path) -> list[str]:
    """Every way the manifests in ``folder`` fall short of the measured figures."""
    manifests = manifest_memory(folder)
    out = []
    mat, seg = manifests["matting"], manifests["segmentation"]
    m, s = measured["matting"], measured["segmentation"]
    mat_budget = _budget_mb(mat["limit"], mat["workers"], tmp)
    need = m["steady_worker_mb"] + m["peak_40mp_above_idle_mb"]
    if mat_budget < need:
        out.append(f"matting: worker budget {mat_budget:.0f} MB < steady {m['steady_worker_mb']} + "
                   f"40 MP peak {m['peak_40mp_above_idle_mb']} = {need} MB")
    estimate = _largest_matting_estimate_mb()
    if mat_budget < m["steady_worker_mb"] + estimate:
        out.append(f"matting: worker budget {mat_budget:.0f} MB < steady {m['steady_worker_mb']} + "
                   f"estimated 40 MP over a 40 MP background {estimate:.0f} MB: a 413 in the pod")
    seg_budget = _budget_mb(seg["limit"], seg["workers"], tmp)
    need = s["steady_worker_mb"] + s["peak_40mp_hop_above_idle_mb"]
    if seg_budget < need:
        out.append(f"segmentation: worker budget {seg_budget:.0f} MB < steady {s['steady_worker_mb']} + "
                   f"a 40 MP photo's hop {s['peak_40mp_hop_above_idle_mb']} = {need} MB")
    for name, figures in (("matting", m), ("segmentation", s)):
        if manifests[name]["request"] < figures["steady_worker_mb"]:
            out.append(f"{name}: request {manifests[name]['request']} MiB < the steady worker's "
                       f"{figures['steady_worker_mb']} MB")
    for name, peak in measured["parallel_40mp"].items():
        if name.endswith("_container_peak_mb") and peak >= manifests[name.split("_")[0]]["limit"]:
            out.append(f"{name.split('_')[0]}: the parallel 40 MP run peaked at {peak} MB, "
                       f"not under the limit {manifests[name.split('_')[0]]['limit']} MiB")
    return out


def test_the_measured_figures_name_their_source():
    measured = _measured()
    for section in ("matting", "segmentation", "parallel_40mp"):
        assert measured[section]["source" if section == "parallel_40mp" else "peak_source"]
    matting = measured["matting"]
    assert matting["calibrate_peak_above_idle_mb"][-1] == matting["peak_40mp_above_idle_mb"]
    assert any(k.endswith("_container_peak_mb") for k in measured["parallel_40mp"])


def test_the_manifests_limits_hold_the_measured_peaks(tmp_path: Path):
    assert problems(BASE, _measured(), tmp_path) == []


@pytest.mark.parametrize("component, limit", [("matting", "2048Mi"), ("segmentation", "1280Mi")])
def test_a_lowered_limit_fails_the_check(tmp_path: Path, component: str, limit: str):
    folder = tmp_path / "base"
    shutil.copytree(BASE, folder)
    path = folder / f"{component}.yaml"
    text = path.read_text()
    lowered = re.sub(r"(limits:\s*\n\s+memory:\s*)\S+", rf"\g<1>{limit}", text, count=1)
    assert lowered != text
    path.write_text(lowered)
    found = problems(folder, _measured(), tmp_path)
    assert found and all(p.startswith(component) for p in found), found

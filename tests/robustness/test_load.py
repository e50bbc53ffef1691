"""bench/load.py: its inputs, its /proc readings, and (slow) a short run of the real thing."""

from __future__ import annotations

import os

import numpy as np
import pytest

from bench import load


def test_inputs_have_distinct_sizes_and_a_subject():
    sizes = load.distinct_sizes(300, 96, 200, seed=1)
    assert len(set(sizes)) == 300
    assert all(96 <= w <= 200 and 96 <= h <= 200 for w, h in sizes)
    img = load.disk_image(120, 100, seed=2)
    assert img.shape == (100, 120, 3) and img.dtype == np.uint8
    assert img[50, 60].max() == 240 and img[0, 0].max() < 70  # the disk, the background
    with pytest.raises(ValueError):
        load.distinct_sizes(10, 5, 6)


def test_percentiles_use_the_nearest_rank():
    result = load.LoadResult(latencies_s=[i / 1000 for i in range(1, 101)])
    assert (result.percentile_ms(50), result.percentile_ms(95), result.percentile_ms(99)) == (
        50.0, 95.0, 99.0)
    assert result.requests == 100


def test_worker_pids_and_memory_of_a_gunicorn_master(stack):
    workers = load.worker_pids(stack.mat.process.pid)
    assert len(workers) == 1 and workers[0] != stack.mat.process.pid
    memory = load.proc_memory_kb(workers[0])
    assert 50_000 < memory["VmRSS"] <= memory["VmHWM"]  # a Python worker with numpy: > 50 MB
    # this process started both masters: they are its children
    assert {stack.seg.process.pid, stack.mat.process.pid} <= set(load.worker_pids(os.getpid()))
    by_worker = load.rss_by_worker([stack.seg, stack.mat])
    assert len(by_worker) == 2 and all(v > 0 for v in by_worker.values())


@pytest.mark.slow
def test_short_load_run_has_no_errors(capsys):
    """Both services with 2 workers each, 24 requests 4 at a time: every answer is its own."""
    code = load.main(["--requests", "24", "--warmup", "8", "--concurrency", "4",
                      "--matting-workers", "2", "--matting-threads", "2", "--seg-workers", "2"])
    out = capsys.readouterr().out
    assert "errors:     0" in out
    assert code == 0, out

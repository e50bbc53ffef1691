"""rembg's recipe as re-implemented for the baseline, and the report's Markdown table."""

from __future__ import annotations

import numpy as np

from bench import baseline_rembg, quality


def test_to_8bit_rounds_or_truncates_like_a_uint8_image() -> None:
    alpha = np.array([[0.0, 0.5, 1.0, 1.2], [-0.1, 0.999, 0.002, 0.7]])
    rounded = baseline_rembg.to_8bit(alpha) * 255
    truncated = baseline_rembg.to_8bit(alpha, rounding=False) * 255
    np.testing.assert_allclose(rounded, [[0, 128, 255, 255], [0, 255, 1, 178]])
    np.testing.assert_allclose(truncated, [[0, 127, 255, 255], [0, 254, 0, 178]])


def test_rembg_trimap_thresholds_and_erosion() -> None:
    # an 8-bit mask: 255 inside columns 4..11, 128 on columns 2..3 and 12..13, 0 elsewhere
    mask = np.zeros((8, 16))
    mask[:, 2:14] = 128 / 255
    mask[:, 4:12] = 1.0
    trimap = baseline_rembg.rembg_trimap(mask, fg=240, bg=10, erode=3)
    row = trimap[4]
    # foreground (> 240) eroded by a 3x3 square: columns 5..10; the frame erodes it too
    assert (row[5:11] == 1.0).all() and (row[4] == 0.5) and (row[11] == 0.5)
    assert (trimap[0, 5:11] == 0.5).all()  # top row: the frame counts as not-foreground
    # background (< 10) eroded: column 0 stays background (the frame does not erode it)
    assert row[0] == 0.0 and row[1] == 0.5 and row[14] == 0.5 and row[15] == 0.0
    assert trimap[0, 0] == 0.0
    assert (row[2:4] == 0.5).all()


def test_markdown_means_lists_every_system() -> None:
    summary = {
        "stage": {"ours": {"sad": 1.0, "mse": 2.0, "grad": 3.0, "conn": 4.0, "s": 0.5}},
        "e2e": {"rembg-mask": {"sad": 10.0, "mse": 20.0, "grad": 30.0, "conn": 40.0,
                               "iou": 0.91234, "s": 1.25}},
    }
    lines = quality.markdown_means(summary).splitlines()
    assert lines[0].startswith("| part | system | SAD | MSE |")
    assert lines[2] == "| stage (given trimap, unknown region) | ours | 1.00 | 2.00 | 3.00 | 4.00 |  | 0.50 |"
    assert lines[3] == ("| end to end (whole image) | rembg-mask | 10.00 | 20.00 | 30.00 | 40.00 "
                        "| 0.9123 | 1.25 |")

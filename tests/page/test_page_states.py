"""The web page after an error, its touch-up strokes over any colour, and the result's edges,
in a real headless Chromium against both services (``page`` of tests/page/conftest.py).

* After an error: no broken-image icon (nor its clipped alt text), no old result beside the
  message, nothing to download, and the status line no longer says "Done in ...".
* A stroke is ringed dark and light, so that it stands out at least 3:1 (WCAG's contrast for
  graphics) on any background: the red Remove stroke over orange was nearly invisible.
* The result is drawn at whole pixels: no light line at its edges, whatever the window size.
"""

from __future__ import annotations

import io
import time

import numpy as np
import pytest
from PIL import Image

from service_common.config import REPO_ROOT

SAMPLE = REPO_ROOT / "samples" / "astronaut.png"
DEFAULT_BACKGROUND = (0x1E, 0x88, 0xE5)  # the page's default colour, #1e88e5
NOT_AN_IMAGE = b"this is not a picture"


def _broken_images(page) -> list[str]:
    """The ``img`` elements a user sees that show no picture (a broken-image icon)."""
    return page.driver.execute_script(
        "return [...document.images].filter((img) => img.getClientRects().length"
        "  && getComputedStyle(img).visibility !== 'hidden' && !(img.complete && img.naturalWidth))"
        ".map((img) => img.id || img.alt);")


def _shown(page, element_id: str) -> bool:
    return page.find(element_id).is_displayed()


def _assert_no_stale_result(page) -> None:
    assert not page.status().startswith("Done"), page.status()
    assert not _shown(page, "after"), "the previous result is still shown"
    assert page.find("download").get_attribute("aria-disabled") == "true"
    assert _broken_images(page) == []


# ------------------------------------------------------------------ error states


def test_an_unreadable_photo_shows_the_message_and_no_broken_image(page, tmp_path):
    """The browser cannot show it either: no result panel with a broken icon, only words."""
    bad = tmp_path / "holiday.png"
    bad.write_bytes(NOT_AN_IMAGE)
    page.upload(bad)
    page.wait_until(lambda: page.error() != "", "the error message")
    assert page.status() == "No result."
    assert not _shown(page, "result") and not _shown(page, "tools")
    assert _broken_images(page) == []


def test_an_unreadable_photo_after_a_result_clears_it(page, tmp_path):
    page.upload(SAMPLE)
    page.wait_done()
    bad = tmp_path / "holiday.png"
    bad.write_bytes(NOT_AN_IMAGE)
    page.upload(bad)
    page.wait_until(lambda: page.error() != "", "the error message")
    assert page.status() == "No result."
    _assert_no_stale_result(page)
    assert not _shown(page, "result")


def test_a_failed_request_on_the_same_photo_leaves_the_photo_not_the_old_result(page, tmp_path):
    """A background image the server cannot read: the message, the photo (strokes may still
    help), no result of the former settings and nothing to download."""
    page.upload(SAMPLE)
    page.wait_done()
    bad = tmp_path / "beach.png"
    bad.write_bytes(NOT_AN_IMAGE)
    page.choose("bg", "image")
    page.find("bg-file").send_keys(str(bad))
    page.wait_until(lambda: page.error() != "", "the error message")
    assert page.status() == "No result."
    _assert_no_stale_result(page)
    assert _shown(page, "before")  # the photo itself, not a broken image
    # it recovers: a colour again gives a result, and the message goes
    page.choose("bg", "color")
    page.wait_done()
    assert page.error() == "" and _shown(page, "after") and _broken_images(page) == []


def test_a_file_that_is_not_an_image_keeps_the_result_and_says_so(page, tmp_path):
    page.upload(SAMPLE)
    page.wait_done()
    notes = tmp_path / "notes.txt"
    notes.write_text("a shopping list")
    page.upload(notes)
    page.wait_until(lambda: page.error() != "", "the error message")
    assert page.error().startswith('"notes.txt" is not an image')
    assert page.status() == "The previous photo and its result are kept."
    assert _shown(page, "after") and _broken_images(page) == []


# ------------------------------------------------------------------ strokes on any colour


def _luminance(rgb: np.ndarray) -> np.ndarray:
    """WCAG 2 relative luminance of sRGB pixels (..., 3) in 0..255."""
    c = rgb.astype(float) / 255
    linear = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    return linear @ np.array([0.2126, 0.7152, 0.0722])


def _contrast(pixels: np.ndarray, colour: tuple[int, int, int]) -> np.ndarray:
    a, b = _luminance(pixels), _luminance(np.array(colour))
    return (np.maximum(a, b) + 0.05) / (np.minimum(a, b) + 0.05)


def _viewport(page) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(page.driver.get_screenshot_as_png())).convert("RGB"))


def _stage_box(page) -> tuple[float, float, float, float]:
    """The stage's left, top, right, bottom in the viewport (CSS pixels; the ratio is 1)."""
    return tuple(page.driver.execute_script(
        "const stage = document.getElementById('stage');"
        "stage.scrollIntoView({block: 'center'});"
        "const box = stage.getBoundingClientRect(); return [box.left, box.top, box.right, box.bottom];"))


def _count_answers(page) -> int:
    """How many requests of the page have ended (counted from the first call on)."""
    return page.driver.execute_script(
        "if (window.answers === undefined) { window.answers = 0;"
        "  const open = XMLHttpRequest.prototype.open;"
        "  XMLHttpRequest.prototype.open = function (...args) {"
        "    this.addEventListener('loadend', () => { window.answers += 1; });"
        "    return open.apply(this, args); }; }"
        "return window.answers;")


def _draw_and_wait(page, points: list[tuple[float, float]]) -> None:
    """Draw a stroke and wait for the page's request it starts to be answered."""
    before = _count_answers(page)
    page.draw(points)
    page.wait_until(lambda: _count_answers(page) > before, "the answer to the stroke")
    page.wait_until(lambda: "busy" not in page.find("stage").get_attribute("class"), "the stage at rest")


@pytest.mark.parametrize(("brush", "hex_colour"), [
    ("remove", "#ff8800"),  # the case a user met: red over orange
    ("remove", "#e53935"),  # the stroke's own colour
    ("keep", "#00c853"),
    ("keep", "#ffffff"),
    ("remove", "#000000"),
    ("remove", "#767676"),  # mid grey: the hardest for a single outline colour
])
def test_a_stroke_stands_out_from_any_background(page, tmp_path, encode_png, brush, hex_colour):
    colour = tuple(int(hex_colour[i:i + 2], 16) for i in (1, 3, 5))
    flat = tmp_path / "flat.png"
    flat.write_bytes(encode_png(np.full((240, 320, 3), colour, np.uint8)))
    page.pick_colour(hex_colour)  # the new background too: whatever comes back is this colour
    page.upload(flat)
    page.wait_until(lambda: page.error() != "" or page.status().startswith("Done"), "the first answer")
    page.choose("brush", brush)
    _draw_and_wait(page, [(60, 120), (260, 120)])
    left, top, right, bottom = _stage_box(page)
    shot = _viewport(page)[round(top):round(bottom), round(left):round(right)]
    assert shot.shape[:2] == (240, 320), shot.shape  # the photo at its own size
    column = shot[:, 160]  # across the stroke, top to bottom
    marked = np.flatnonzero(np.abs(column.astype(int) - colour).max(axis=1) > 6)
    assert marked.size, "no stroke drawn"
    first, last = marked[0], marked[-1]
    assert 80 <= first < 120 < last <= 160, (first, last)
    ratio = _contrast(column, colour)
    # the ring at each edge of the stroke stands out: at least 3:1 within its first 4 pixels
    assert ratio[first:first + 4].max() >= 3, ratio[first:first + 4]
    assert ratio[last - 3:last + 1].max() >= 3, ratio[last - 3:last + 1]
    # the inside shows the brush's own colour (green for Keep, red for Remove) over the photo
    inside = column[112:129].astype(int).mean(axis=0)
    if brush == "keep":
        assert inside[1] > inside[0] + 20 or colour == (0x00, 0xC8, 0x53), inside
    else:
        assert inside[0] > inside[1] + 20 or colour == (0xE5, 0x39, 0x35), inside


def test_the_hints_sent_are_the_plain_strokes_without_the_rings(page, tmp_path, encode_png):
    """The rings are for the eye only: the ``hints`` upload holds the stroke at the brush's
    width, in plain white (Keep), nothing else."""
    flat = tmp_path / "flat.png"
    flat.write_bytes(encode_png(np.full((240, 320, 3), (255, 136, 0), np.uint8)))
    page.upload(flat)
    page.wait_until(lambda: page.error() != "" or page.status().startswith("Done"), "the first answer")
    page.driver.execute_script(  # keep a copy of the next hints upload
        "window.sentHints = null; const send = XMLHttpRequest.prototype.send;"
        "XMLHttpRequest.prototype.send = function (body) {"
        "  if (body instanceof FormData && body.get('hints')) window.sentHints = body.get('hints');"
        "  return send.call(this, body); };")
    page.choose("brush", "keep")
    _draw_and_wait(page, [(60, 120), (260, 120)])
    column = page.driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "createImageBitmap(window.sentHints).then((bitmap) => {"
        "  const canvas = document.createElement('canvas');"
        "  canvas.width = bitmap.width; canvas.height = bitmap.height;"
        "  const ctx = canvas.getContext('2d'); ctx.drawImage(bitmap, 0, 0);"
        "  done([bitmap.width, bitmap.height, Array.from(ctx.getImageData(160, 0, 1, bitmap.height).data)]);"
        "});")
    width, height, data = column
    assert (width, height) == (320, 240)
    rgba = np.array(data).reshape(-1, 4)
    painted = rgba[rgba[:, 3] > 0]
    brush = int(page.find("brush-size").get_attribute("value"))  # screen px; the photo is unscaled
    assert abs(len(painted) - brush) <= 2, (len(painted), brush)
    assert (painted[:, :3] == 255).all()  # white: keep, no ring colours


# ------------------------------------------------------------------ the result's edges


@pytest.mark.parametrize("window", [(1000, 700), (1401, 803), (800, 600), (1100, 1400)])
def test_no_light_line_at_the_result_s_edges(page, window):
    """At window sizes where the centred photo falls on a half pixel or scales to a fraction
    of one, its edge columns and rows are the result's, not a blend with the white page."""
    page.upload(SAMPLE)
    page.wait_done()
    page.driver.set_window_size(*window)
    time.sleep(0.3)  # the resize event
    left, top, right, bottom = _stage_box(page)
    assert all(float(v).is_integer() for v in (left, top, right, bottom)), (left, top, right, bottom)
    shot = _viewport(page).astype(int)
    left, top, right, bottom = int(left), int(top), int(right), int(bottom)
    background = np.array(DEFAULT_BACKGROUND)
    # the studio wall is the new colour along the top and down both sides' upper part
    for name, edge in (("left", shot[top + 2:top + 40, left]), ("right", shot[top + 2:top + 40, right - 1]),
                       ("top", shot[top, left + 2:left + 40])):
        assert (np.abs(edge - background) <= 3).all(), (name, edge.mean(axis=0))
    assert (shot[top + 2:top + 40, right] >= 250).all() and (shot[top + 2:top + 40, left - 1] >= 250).all()
    # the bottom row is the photo's, not lighter than the row above it
    last, above = shot[bottom - 1, left + 5:right - 5].mean(), shot[bottom - 2, left + 5:right - 5].mean()
    assert abs(last - above) < 12, (last, above)

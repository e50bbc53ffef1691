"""The web page (``GET /``): served offline by the matting service, then used in a real
headless Chromium against both services under gunicorn, as a user would: upload the sample
portrait, pick a background, touch up, download."""

from __future__ import annotations

import re

import numpy as np
import pytest
import requests

from service_common.config import REPO_ROOT

SAMPLE = REPO_ROOT / "samples" / "astronaut.png"
ASSETS = REPO_ROOT / "matting_api" / "static"
HELMET = (slice(405, 436), slice(405, 436))  # rows, cols: the helmet, bottom right
FACE = (slice(120, 141), slice(210, 231))
CORNER = (slice(0, 8), slice(0, 8))  # top left: the studio wall


# ------------------------------------------------------------------ served, offline


def test_the_page_and_its_assets_are_served_by_the_matting_service(offline_services):
    _, mat = offline_services
    resp = requests.get(mat.url + "/", timeout=10)
    assert resp.status_code == 200
    assert resp.headers["Content-Type"].startswith("text/html")
    csp = resp.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "connect-src 'self'" in csp
    assets = re.findall(r'(?:href|src)="(/page/[^"]+)"', resp.text)
    assert sorted(assets) == ["/page/app.js", "/page/style.css"]
    for asset in assets:
        got = requests.get(mat.url + asset, timeout=10)
        assert got.status_code == 200 and got.content, asset
    missing = requests.get(mat.url + "/page/nothing.js", timeout=10)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"


def test_the_page_fetches_nothing_from_elsewhere():
    """Works on a machine without internet: no URL of another host in any of its files."""
    for path in ASSETS.iterdir():
        text = path.read_text(encoding="utf-8")
        elsewhere = re.search(r"(?i)(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", text)
        assert elsewhere is None, (path.name, elsewhere)
        assert "@import" not in text and "url(http" not in text, path.name


# ------------------------------------------------------------------ in a browser


def _colour(hex_colour: str) -> list[int]:
    return [int(hex_colour[i:i + 2], 16) for i in (1, 3, 5)]


def test_upload_pick_a_colour_and_download(page):
    page.upload(SAMPLE)
    page.wait_done()
    page.pick_colour("#e53935")
    page.wait_until(lambda: page.find("after").get_attribute("alt").endswith("a #e53935 background"),
                    "the result over the new colour")
    page.wait_done()
    name, pixels = page.download()
    assert name == "astronaut-backdrop.png"
    assert pixels.shape == (512, 512, 3)
    assert (pixels[CORNER] == _colour("#e53935")).all()
    assert not (pixels[FACE] == _colour("#e53935")).all(axis=2).any()


def test_a_remove_stroke_makes_that_region_background_and_undo_brings_it_back(page):
    page.upload(SAMPLE)
    page.wait_done()
    _, auto = page.download()
    background = _colour("#1e88e5")  # the page's default colour
    assert not (auto[HELMET] == background).all(axis=2).any()  # the helmet is kept at first
    page.choose("brush", "remove")
    page.draw([(395, 400), (445, 400), (445, 414), (395, 414), (395, 428), (445, 428),
               (445, 442), (395, 442)])
    page.wait_done(strokes=1)
    _, fixed = page.download()
    assert (fixed[HELMET] == background).all()
    assert np.array_equal(fixed[FACE], auto[FACE])  # nothing else moved
    page.find("undo").click()
    page.wait_done(strokes=0)
    _, undone = page.download()
    assert np.array_equal(undone, auto)


def test_a_keep_stroke_brings_back_what_was_cut_away(page):
    page.upload(SAMPLE)
    page.wait_done()
    page.choose("brush", "keep")
    page.draw([(4, 4), (30, 4), (30, 20), (4, 20)])  # the studio wall, top left
    page.wait_done(strokes=1)
    _, pixels = page.download()
    from PIL import Image

    original = np.asarray(Image.open(SAMPLE).convert("RGB"))
    assert np.array_equal(pixels[6:18, 6:28], original[6:18, 6:28])


def test_jpeg_download_of_a_transparent_result_is_white_behind(page):
    page.upload(SAMPLE)
    page.wait_done()
    page.choose("bg", "transparent")
    page.wait_until(lambda: "transparent" in page.find("after").get_attribute("alt"),
                    "the transparent result")
    page.wait_done()
    from selenium.webdriver.support.ui import Select

    Select(page.find("format")).select_by_value("jpg")
    page.wait_until(lambda: "JPEG" in page.find("download").text, "the JPEG link")
    name, pixels = page.download()
    assert name == "astronaut-backdrop.jpg"
    assert (np.abs(pixels[CORNER].astype(int) - 255) <= 3).all()


def test_an_error_is_shown_in_words(page, tmp_path):
    bad = tmp_path / "holiday.png"
    bad.write_bytes(b"this is not a picture")
    page.upload(bad)
    page.wait_until(lambda: page.error() != "", "the error message")
    assert page.error().startswith("This file is not an image the server can read")
    assert page.status() == "No result."


def test_no_subject_suggests_the_keep_brush(page, tmp_path, encode_png):
    flat = tmp_path / "wall.png"
    flat.write_bytes(encode_png(np.full((96, 128, 3), 200, np.uint8)))
    page.upload(flat)
    page.wait_until(lambda: page.error() != "", "the error message")
    assert "No subject was found" in page.error() and "Keep brush" in page.error()


def test_every_control_has_a_name_a_screen_reader_reads(page):
    page.upload(SAMPLE)
    page.wait_done()
    names = {element_id: page.find(element_id).accessible_name for element_id in (
        "photo", "bg-color", "after", "compare", "brush-size", "undo", "clear",
        "format", "download", "strokes")}
    page.choose("bg", "image")  # its file input shows only then
    names["bg-file"] = page.find("bg-file").accessible_name
    assert names["photo"] == "Choose a photo"
    assert names["bg-color"] == "Background colour"
    assert names["bg-file"] == "Background image"
    assert names["after"].startswith("The result: the subject of your photo on")
    assert names["download"] == "Download the result (PNG)"
    assert all(names.values()), names
    from selenium.webdriver.common.by import By

    for radio in page.driver.find_elements(By.CSS_SELECTOR, "input[type=radio]"):
        assert radio.accessible_name, radio.get_attribute("value")
    assert page.find("status").get_attribute("role") == "status"
    assert page.find("error").get_attribute("role") == "alert"


def test_every_control_is_reached_with_the_keyboard(page):
    page.upload(SAMPLE)
    page.wait_done()
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    page.driver.execute_script("document.activeElement.blur()")
    reached = []
    for _ in range(40):
        ActionChains(page.driver).send_keys(Keys.TAB).perform()
        active = page.driver.switch_to.active_element
        reached.append(active.get_attribute("id") or active.get_attribute("name"))
    for needed in ("photo", "bg", "bg-color", "compare", "brush", "brush-size", "format", "download"):
        assert needed in reached, (needed, reached)
    # choose a background with the arrow keys, as a keyboard user does
    radio = page.driver.find_element("css selector", 'input[name="bg"]:checked')
    page.driver.execute_script("arguments[0].focus()", radio)
    ActionChains(page.driver).send_keys(Keys.ARROW_RIGHT).perform()
    def chosen() -> str:
        return page.driver.find_element("css selector", 'input[name="bg"]:checked').get_attribute("value")

    page.wait_until(lambda: chosen() == "image", "the image background chosen by keyboard")
    assert page.status() == "Choose a background image."


def test_at_a_phone_width_nothing_needs_sideways_scrolling(phone_page):
    phone_page.upload(SAMPLE)
    phone_page.wait_done()
    width = phone_page.driver.execute_script("return window.innerWidth")
    assert width == 390
    assert phone_page.driver.execute_script("return document.documentElement.scrollWidth") <= width
    stage = phone_page.find("stage").rect
    assert 300 <= stage["width"] <= 390


@pytest.mark.parametrize("value", ["blur", "grayscale"])
def test_the_old_background_blurred_or_grey(page, value, sample_photo):
    page.upload(SAMPLE)
    page.wait_done()
    page.choose("bg", value)
    word = "blurred" if value == "blur" else "greyscale"
    page.wait_until(lambda: word in page.find("after").get_attribute("alt"), f"the {value} result")
    page.wait_done()
    _, pixels = page.download()
    corner = pixels[CORNER].astype(int)
    if value == "grayscale":
        assert (np.ptp(corner, axis=2) <= 1).all()
    else:
        assert not np.array_equal(pixels[CORNER], sample_photo[CORNER])
    assert np.array_equal(pixels[FACE], sample_photo[FACE])


@pytest.mark.parametrize("how", ["drop", "paste"])
def test_a_photo_dropped_or_pasted(page, how):
    """The events a browser fires when a file is dropped on the page or pasted into it."""
    import base64

    page.driver.execute_script(
        "const bytes = Uint8Array.from(atob(arguments[0]), (c) => c.charCodeAt(0));"
        "const data = new DataTransfer();"
        "data.items.add(new File([bytes], 'astronaut.png', {type: 'image/png'}));"
        "const event = arguments[1] === 'drop'"
        "  ? new DragEvent('drop', {dataTransfer: data, bubbles: true, cancelable: true})"
        "  : new ClipboardEvent('paste', {clipboardData: data, bubbles: true, cancelable: true});"
        "(arguments[1] === 'drop' ? document.getElementById('drop') : document.body).dispatchEvent(event);",
        base64.b64encode(SAMPLE.read_bytes()).decode("ascii"), how)
    page.wait_done()
    name, pixels = page.download()
    assert name == "astronaut-backdrop.png"
    assert (pixels[CORNER] == _colour("#1e88e5")).all()

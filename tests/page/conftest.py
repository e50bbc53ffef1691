"""Fixtures of the web page's tests: a real headless Chromium driven by Selenium.

* ``chromium``: the paths of the system's Chromium and chromedriver (``BACKDROP_CHROMIUM``
  and ``BACKDROP_CHROMEDRIVER`` override the search). Without them every browser test is
  skipped with a message saying what to install, so ``make test`` passes on a machine with
  no browser; CI installs them (``apt-get install chromium chromium-driver``) and sets
  ``BACKDROP_REQUIRE_BROWSER=1``, which turns the skip into a failure.
* ``page``: a :class:`Page` on the matting service of ``offline_services`` (both services
  under gunicorn with the offline defaults), in a fresh browser; ``phone_page`` the same at
  a phone's width (390 px, Chrome's device emulation).
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

INSTALL_HINT = ("no Chromium found: install it and its driver to run the browser tests "
                "(Debian: apt-get install chromium chromium-driver), or set BACKDROP_CHROMIUM "
                "and BACKDROP_CHROMEDRIVER")


@dataclass(frozen=True)
class Chromium:
    binary: str
    driver: str


@pytest.fixture(scope="session")
def chromium() -> Chromium:
    pytest.importorskip("selenium", reason="selenium is not installed (pip install -e '.[dev]')")
    binary = os.environ.get("BACKDROP_CHROMIUM") or next(
        (found for name in ("chromium", "chromium-browser", "google-chrome")
         if (found := shutil.which(name))), None)
    driver = os.environ.get("BACKDROP_CHROMEDRIVER") or shutil.which("chromedriver")
    if not (binary and driver):
        if os.environ.get("BACKDROP_REQUIRE_BROWSER") == "1":  # CI: the browser tests must run
            pytest.fail(INSTALL_HINT)
        pytest.skip(INSTALL_HINT)
    return Chromium(binary, driver)


class Page:
    """The page in a browser, with the steps a user takes."""

    def __init__(self, driver, url: str, downloads: Path) -> None:
        self.driver = driver
        self.url = url
        self.downloads = downloads

    def find(self, element_id: str):
        from selenium.webdriver.common.by import By

        return self.driver.find_element(By.ID, element_id)

    def open(self) -> Page:
        self.driver.get(self.url + "/")
        return self

    def status(self) -> str:
        return self.find("status-text").text

    def error(self) -> str:
        element = self.find("error")
        return element.text if element.is_displayed() else ""

    def upload(self, path: Path) -> None:
        self.find("photo").send_keys(str(path))

    def wait_until(self, condition, what: str, timeout: float = 90.0) -> None:
        from selenium.webdriver.support.ui import WebDriverWait

        try:
            WebDriverWait(self.driver, timeout, poll_frequency=0.1).until(lambda _: condition())
        except Exception as exc:  # noqa: BLE001 - say what the page showed instead
            raise AssertionError(f"timed out waiting for {what}; status {self.status()!r}, "
                                 f"error {self.error()!r}") from exc

    def wait_done(self, strokes: int = 0) -> None:
        """Until the status says the result is there (with ``strokes`` strokes)."""
        def done() -> bool:
            text = self.status()
            if not text.startswith("Done"):
                return False
            return (f"{strokes} touch-up stroke" in text) if strokes else "stroke" not in text
        self.wait_until(done, f"the result (strokes={strokes})")

    def choose(self, name: str, value: str) -> None:
        """Click the radio button ``name=value`` as a user would (its label)."""
        from selenium.webdriver.common.by import By

        radio = self.driver.find_element(By.CSS_SELECTOR, f'input[name="{name}"][value="{value}"]')
        radio.find_element(By.XPATH, "..").click()

    def pick_colour(self, hex_colour: str) -> None:
        """What the native colour picker does when a colour is chosen: a new value, then
        ``change`` (a test cannot operate the browser's own picker dialog)."""
        self.driver.execute_script(
            "const input = arguments[0]; input.value = arguments[1];"
            "input.dispatchEvent(new Event('input', {bubbles: true}));"
            "input.dispatchEvent(new Event('change', {bubbles: true}));",
            self.find("bg-color"), hex_colour)

    def draw(self, points: list[tuple[float, float]]) -> None:
        """Drag the pointer over the photo through ``points`` (photo pixels, x, y)."""
        from selenium.webdriver.common.action_chains import ActionChains

        canvas = self.find("strokes")
        self.driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", canvas)
        rect = canvas.rect
        width = int(canvas.get_property("width"))
        height = int(canvas.get_property("height"))

        def offset(x: float, y: float) -> tuple[int, int]:  # from the element's centre
            return (round(x / width * rect["width"] - rect["width"] / 2),
                    round(y / height * rect["height"] - rect["height"] / 2))

        chain = ActionChains(self.driver, duration=20)
        chain.move_to_element_with_offset(canvas, *offset(*points[0])).click_and_hold()
        for point in points[1:]:
            chain.move_to_element_with_offset(canvas, *offset(*point))
        chain.release().perform()

    def download(self, timeout: float = 30.0) -> tuple[str, np.ndarray]:
        """Click the download link; ``(the file name it offers, pixels of the file the browser
        saved)``."""
        before = set(self.downloads.iterdir())
        link = self.find("download")
        name = link.get_attribute("download")
        link.click()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            new = [p for p in set(self.downloads.iterdir()) - before
                   if not p.name.endswith((".crdownload", ".tmp")) and p.stat().st_size > 0]
            if new:
                time.sleep(0.2)  # let the browser finish renaming
                path = new[0]
                return name, np.asarray(Image.open(io.BytesIO(path.read_bytes())).convert("RGB"))
            time.sleep(0.1)
        raise AssertionError(f"the browser saved no file in {timeout:g} s")


def _driver(chromium: Chromium, downloads: Path, phone: bool):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium.binary
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1100,1400", "--no-first-run", "--disable-extensions"):
        options.add_argument(arg)
    options.add_experimental_option("prefs", {
        "download.default_directory": str(downloads), "download.prompt_for_download": False,
        # a user may download several results; Chrome asks once, a test cannot answer
        "profile.default_content_setting_values.automatic_downloads": 1})
    if phone:
        options.add_experimental_option("mobileEmulation", {
            "deviceMetrics": {"width": 390, "height": 844, "pixelRatio": 2}})
    driver = webdriver.Chrome(service=Service(chromium.driver), options=options)
    # every download saved (under a unique name: a user's repeated downloads are not
    # blocked or overwritten); the name the page gave is its link's download attribute
    driver.execute_cdp_cmd("Browser.setDownloadBehavior",
                           {"behavior": "allowAndName", "downloadPath": str(downloads)})
    return driver


@contextlib.contextmanager
def _opened(chromium: Chromium, url: str, downloads: Path, phone: bool) -> Iterator[Page]:
    driver = _driver(chromium, downloads, phone=phone)
    try:
        yield Page(driver, url, downloads).open()
    finally:
        driver.quit()


@pytest.fixture
def page(chromium, offline_services, tmp_path) -> Iterator[Page]:
    with _opened(chromium, offline_services[1].url, tmp_path, phone=False) as opened:
        yield opened


@pytest.fixture
def phone_page(chromium, offline_services, tmp_path) -> Iterator[Page]:
    with _opened(chromium, offline_services[1].url, tmp_path, phone=True) as opened:
        yield opened

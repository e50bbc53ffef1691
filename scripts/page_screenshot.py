"""Screenshot of the web page for the README (``docs/page.png``), made in headless Chromium.

Usage (with the services running, ``make serve``)::

    .venv/bin/python scripts/page_screenshot.py [--url http://127.0.0.1:5000] [--out docs/page.png]

It opens the page, uploads the sample portrait, picks a colour, draws a "remove" stroke over
the helmet, moves the before/after slider to a third and saves the window. Needs Chromium
and chromedriver (Debian: ``apt-get install chromium chromium-driver``) and selenium.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:5000")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "page.png")
    args = parser.parse_args(argv)
    binary, driver_path = shutil.which("chromium"), shutil.which("chromedriver")
    if not (binary and driver_path):
        print("no Chromium found: apt-get install chromium chromium-driver", file=sys.stderr)
        return 2
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1360,1000",
                "--hide-scrollbars"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(driver_path), options=options)

    def status() -> str:
        return driver.find_element(By.ID, "status-text").text

    try:
        driver.get(args.url + "/")
        driver.find_element(By.ID, "photo").send_keys(str(REPO / "samples" / "astronaut.png"))
        WebDriverWait(driver, 90).until(lambda _: status().startswith("Done"))
        driver.execute_script(
            "const c = document.getElementById('bg-color'); c.value = '#26a69a';"
            "c.dispatchEvent(new Event('change'));")
        WebDriverWait(driver, 90).until(
            lambda _: "#26a69a" in driver.find_element(By.ID, "after").get_attribute("alt")
            and status().startswith("Done"))
        driver.find_element(By.CSS_SELECTOR, 'input[name="brush"][value="remove"]').click()
        canvas = driver.find_element(By.ID, "strokes")
        rect = canvas.rect
        scale = rect["width"] / 512

        def at(x: float, y: float) -> tuple[int, int]:
            return round(x * scale - rect["width"] / 2), round(y * scale - rect["height"] / 2)

        chain = ActionChains(driver, duration=20).move_to_element_with_offset(canvas, *at(410, 400))
        chain.click_and_hold()
        for point in [(455, 405), (415, 420), (465, 425), (420, 440), (460, 445)]:
            chain.move_to_element_with_offset(canvas, *at(*point))
        chain.release().perform()
        WebDriverWait(driver, 90).until(lambda _: "1 touch-up stroke" in status())
        driver.execute_script(
            "const r = document.getElementById('compare'); r.value = 33;"
            "r.dispatchEvent(new Event('input'));")
        driver.execute_script("window.scrollTo(0, 0)")
        args.out.parent.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(args.out))
        print(f"wrote {args.out}")
    finally:
        driver.quit()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The subject choice on the web page, in a real headless Chromium: "Decide for me" sends no
``subject`` (the service decides), "A person" and "An object" send theirs and ask again."""

from __future__ import annotations

from service_common.config import REPO_ROOT

SAMPLE = REPO_ROOT / "samples" / "astronaut.png"

#: Keeps the ``subject`` field and the segmentation backend of every request the page sends.
WATCH = (
    "window.sent = []; const send = XMLHttpRequest.prototype.send;"
    "XMLHttpRequest.prototype.send = function (body) {"
    "  const entry = {subject: body instanceof FormData ? body.get('subject') : null, backend: null};"
    "  window.sent.push(entry);"
    "  this.addEventListener('load', () => {"
    "    entry.backend = this.getResponseHeader('X-Segmentation-Backend'); });"
    "  return send.call(this, body); };"
)


def _last(page) -> dict:
    return page.driver.execute_script("return window.sent[window.sent.length - 1]")


def test_the_subject_choice_is_sent_and_decides_the_model(page):
    page.driver.execute_script(WATCH)
    page.upload(SAMPLE)
    page.wait_done()
    assert _last(page) == {"subject": None, "backend": "modnet"}  # auto: the portrait is a person
    assert page.find("subject").find_element("css selector", "legend").text == "What the photo shows"
    for value, backend in (("object", "u2netp"), ("person", "modnet")):
        count = page.driver.execute_script("return window.sent.length")
        page.choose("subject", value)
        page.wait_until(lambda c=count: page.driver.execute_script("return window.sent.length") > c,
                        f"a new request for subject={value}")
        page.wait_until(lambda: _last(page)["backend"] is not None and page.status().startswith("Done"),
                        f"the result for subject={value}")
        assert _last(page) == {"subject": value, "backend": backend}

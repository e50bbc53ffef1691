"""Product photos (issue 25, item 2): ``scale``, ``position``, ``roi`` and the drop shadow on
``/v1/matte`` and on remove.bg's endpoint, over real HTTP to the running services
(``offline_services``: U^2-Net-p finds the salient object, closed-form matting), and the
contract's parsers of those values."""

from __future__ import annotations

import io

import numpy as np
import pytest
import requests
from apierrors import assert_api_error
from PIL import Image

from contract.parse import InvalidValue, parse_position, parse_roi, parse_scale
from contract.values import CENTER, Margin, Position, Roi

WIDTH, HEIGHT = 240, 200
#: The product's box in the photo: a red bottle with a dark cap (left, top, width, height).
BOTTLE = (50, 30, 61, 106)


def _product(second: bool = False) -> np.ndarray:
    """A bottle on a light studio backdrop (and, with ``second``, a blue box on the right)."""
    yy, xx = np.mgrid[:HEIGHT, :WIDTH]
    img = np.zeros((HEIGHT, WIDTH, 3), np.float32)
    img[:] = (225 + 15 * xx / WIDTH)[..., None] * np.array([1.0, 0.98, 0.95])
    img[((xx - 80) ** 2 / 30**2 + (yy - 90) ** 2 / 45**2) <= 1] = [200, 40, 30]
    img[(abs(xx - 80) <= 10) & (yy >= 30) & (yy < 48)] = [40, 40, 40]
    if second:
        img[(xx >= 170) & (xx < 215) & (yy >= 110) & (yy < 170)] = [30, 60, 190]
    return np.clip(img, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def product_png() -> bytes:
    buf = io.BytesIO()
    Image.fromarray(_product()).save(buf, "PNG")
    return buf.getvalue()


def _post(url: str, photo: bytes, **data: str) -> requests.Response:
    fields = {"classes": "bottle", **data}
    return requests.post(url + "/v1/matte", files={"image": ("bottle.png", photo)}, data=fields, timeout=120)


def _image(resp: requests.Response) -> np.ndarray:
    assert resp.status_code == 200, resp.text
    return np.asarray(Image.open(io.BytesIO(resp.content)))


def _box(resp: requests.Response) -> tuple[int, int, int, int]:
    h = resp.headers
    return (int(h["X-Foreground-Left"]), int(h["X-Foreground-Top"]), int(h["X-Foreground-Width"]),
            int(h["X-Foreground-Height"]))


def test_the_bottle_is_found_where_it_stands(offline_services, product_png):
    _, mat = offline_services
    resp = _post(mat.url, product_png)
    left, top, width, height = _box(resp)
    assert abs(left - BOTTLE[0]) <= 3 and abs(top - BOTTLE[1]) <= 3
    assert abs(width - BOTTLE[2]) <= 4 and abs(height - BOTTLE[3]) <= 4
    assert resp.headers["X-Segmentation-Backend"] == "u2netp"


def test_a_drop_shadow_darkens_the_new_background_under_the_subject(offline_services, product_png):
    _, mat = offline_services
    plain = _image(_post(mat.url, product_png, bg_color="ffffff", format="png"))
    shaded = _image(_post(mat.url, product_png, bg_color="ffffff", format="png", shadow="drop"))
    darker = _image(_post(mat.url, product_png, bg_color="ffffff", format="png", shadow="drop",
                          shadow_opacity="90"))
    below = (BOTTLE[1] + BOTTLE[3] + 2, 82)  # just under the bottle, where the shadow falls
    assert plain[below].min() >= 250
    assert shaded[below].max() < 235 and darker[below].max() < shaded[below].min()
    assert np.array_equal(shaded[:10, :10], plain[:10, :10])  # far away: white as before
    assert np.array_equal(shaded[90, 80], plain[90, 80])  # the subject is untouched
    ys, xs = np.nonzero(np.abs(shaded.astype(int) - plain.astype(int)).max(axis=2) > 3)
    assert xs.mean() > BOTTLE[0] + BOTTLE[2] / 2 and ys.mean() > BOTTLE[1] + BOTTLE[3] / 2  # down-right


def test_a_drop_shadow_in_a_transparent_result_is_in_its_alpha(offline_services, product_png):
    _, mat = offline_services
    cut = _image(_post(mat.url, product_png, shadow="drop"))
    assert cut.shape == (HEIGHT, WIDTH, 4)
    below = (BOTTLE[1] + BOTTLE[3] + 2, 82)
    assert 20 < cut[below][3] < 200 and cut[below][:3].max() < 10  # black, partly seen
    assert cut[5, 5, 3] == 0 and cut[90, 80, 3] == 255
    matte = _image(_post(mat.url, product_png, shadow="drop", channels="alpha"))
    assert matte.ndim == 2 and abs(int(matte[below]) - int(cut[below][3])) <= 1
    plain_matte = _image(_post(mat.url, product_png, channels="alpha"))
    assert plain_matte[below] == 0


def test_scale_and_position(offline_services, product_png):
    _, mat = offline_services
    # scale alone centres the subject, resized to fit half of the frame
    resp = _post(mat.url, product_png, scale="50%", bg_color="ffffff")
    left, top, width, height = _box(resp)
    assert abs(height - HEIGHT // 2) <= 2
    assert abs(left + width / 2 - WIDTH / 2) <= 2 and abs(top + height / 2 - HEIGHT / 2) <= 2
    out = _image(resp)
    assert out[BOTTLE[1] + 60, 80].min() >= 250  # nothing left at the old place
    # position alone moves it, at its size: bottom right
    left, top, width, height = _box(_post(mat.url, product_png, position="100%"))
    assert (left + width, top + height) == (WIDTH, HEIGHT)
    assert abs(width - BOTTLE[2]) <= 4
    # with crop: the crop is the frame, the subject fills 80% of it, centred: a catalogue shot
    resp = _post(mat.url, product_png, crop="true", crop_margin="10px", scale="80%", position="center")
    out = _image(resp)
    left, top, width, height = _box(resp)
    frame_h, frame_w = out.shape[:2]
    assert abs(height - 0.8 * frame_h) <= 2 and abs(left + width / 2 - frame_w / 2) <= 1.5


def test_roi_searches_only_its_region(offline_services):
    _, mat = offline_services
    buf = io.BytesIO()
    Image.fromarray(_product(second=True)).save(buf, "PNG")
    photo = buf.getvalue()
    whole = _image(_post(mat.url, photo, channels="alpha", classes="book,bottle"))
    assert whole[90, 80] > 200  # the bottle, the salient object of the whole picture
    right = _post(mat.url, photo, channels="alpha", classes="book,bottle", roi="150px 0px 240px 200px")
    only = _image(right)
    assert only[140, 190] > 200  # the box, searched for alone
    assert only[:, :150].max() == 0  # the bottle is outside the region: background
    left, top, width, _ = _box(right)
    assert left >= 150 and left + width <= 240
    assert _image(_post(mat.url, photo, channels="alpha", roi="0% 0% 60% 100%"))[:, 150:].max() == 0


@pytest.mark.parametrize(("data", "field", "says"), [
    ({"scale": "50%", "bg_mode": "blur"}, "scale", "bg_mode=blur"),
    ({"position": "center", "bg_mode": "grayscale"}, "position", "bg_mode=grayscale"),
    ({"shadow_opacity": "40"}, "shadow_opacity", "shadow=drop"),
    ({"shadow": "soft"}, "shadow", "none, drop"),
    ({"roi": "300px 0px 400px 100px"}, "roi", "outside the 240x200 image"),
    ({"roi": "0px 0px 10px 10px"}, "roi", "at least 16 px"),
    ({"roi": "0 0 100"}, "roi", "x1 y1 x2 y2"),
    ({"position": "left"}, "position", "percentage"),
])
def test_product_options_refused_with_a_reason(offline_services, product_png, data, field, says):
    _, mat = offline_services
    error = assert_api_error(_post(mat.url, product_png, **data), 400, "invalid_parameter")
    assert error["field"] == field and says in error["message"], error


def test_removebg_shadow_types_scale_position_and_roi(offline_services, product_png):
    _, mat = offline_services

    def removebg(**data: str) -> requests.Response:
        return requests.post(mat.url + "/v1.0/removebg", files={"image_file": ("p.png", product_png)},
                             data={"size": "full", "type": "product", "format": "png", **data}, timeout=120)

    plain = _image(removebg())
    below = (BOTTLE[1] + BOTTLE[3] + 2, 82)
    assert plain[below][3] == 0
    for shadow in ({"shadow_type": "car"}, {"shadow_type": "3D"}, {"shadow_type": "drop"},
                   {"add_shadow": "true"}):
        shaded = _image(removebg(**shadow, shadow_opacity="80"))
        assert shaded[below][3] > 40, shadow  # the shadow, in the alpha as at remove.bg
    assert _image(removebg(shadow_type="none", add_shadow="true"))[below][3] == 0  # shadow_type wins
    resp = removebg(scale="50%", position="0% 0%", roi="0% 0% 60% 100%")
    assert resp.status_code == 200, resp.text
    assert (int(resp.headers["X-Foreground-Left"]), int(resp.headers["X-Foreground-Top"])) == (0, 0)
    assert abs(int(resp.headers["X-Foreground-Height"]) - HEIGHT // 2) <= 2


# --- the contract's parsers ----------------------------------------------------------------------


def test_parse_scale_position_roi():
    assert parse_scale(None) is None and parse_scale("original") is None
    assert parse_scale("80%") == 0.8 and parse_scale(" 10 ") == 0.1 and parse_scale("100%") == 1.0
    for bad, says in (("5%", "10%..100%"), ("101%", "10%..100%"), ("big", "percentage"), ("-5%", "")):
        with pytest.raises(InvalidValue, match=says or None) as info:
            parse_scale(bad)
        assert info.value.field == "scale"
    assert parse_position(None) is None and parse_position(None, scaled=True) == CENTER
    assert parse_position("original", scaled=True) is None and parse_position("Center") == CENTER
    assert parse_position("20%") == Position(20.0, 20.0)
    assert parse_position("0% 100%") == parse_position("0,100") == Position(0.0, 100.0)
    for bad in ("left", "10% 20% 30%", "150%", ""):
        with pytest.raises(InvalidValue):
            parse_position(bad)
    assert parse_roi(None) is None and parse_roi("0% 0% 100% 100%") is None
    roi = parse_roi("10px, 20px, 50% 100%")
    assert roi == Roi(Margin(10), Margin(20), Margin(50, percent=True), Margin(100, percent=True))
    assert roi.text() == "10px 20px 50% 100%"
    assert roi.box((400, 200), (200, 100)) == (5, 10, 95, 90)  # px scale with the image, % do not
    assert Roi(Margin(500), Margin(0), Margin(900), Margin(10)).box((400, 200), (400, 200)).empty
    for bad in ("1 2 3", "10% 10% 5% 90%", "0 0 120% 100%", "0 0 999999px 10", "a b c d"):
        with pytest.raises(InvalidValue) as info:
            parse_roi(bad)
        assert info.value.field == "roi"

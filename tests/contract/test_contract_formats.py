"""The table of output formats, and that the services and clients use it."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from contract import formats, vocab
from contract.formats import OUTPUT_FORMATS, RESULT_FORMATS


@pytest.mark.parametrize("fmt", [f for f in OUTPUT_FORMATS.values() if f.pillow], ids=lambda f: f.name)
def test_each_image_format_is_pillows(fmt: formats.OutputFormat) -> None:
    """MIME type and extensions as Pillow registers them; the services encode it so."""
    from service_common.images import encode_image, mime_type

    Image.init()
    assert Image.MIME[fmt.pillow] == fmt.mime == mime_type(fmt.name)
    extensions = Image.registered_extensions()
    for ext in (fmt.extension, *fmt.other_extensions):
        assert extensions[ext] == fmt.pillow
    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[..., 3] = 128
    if fmt.alpha:
        assert Image.open(io.BytesIO(encode_image(rgba, fmt.name))).mode == "RGBA"
    body = encode_image(rgba[..., :3], fmt.name)
    assert Image.open(io.BytesIO(body)).format == fmt.pillow


def test_the_lists_come_from_the_table() -> None:
    assert vocab.FORMATS == ("auto", *RESULT_FORMATS) == ("auto", "png", "jpg", "webp", "tiff")
    assert formats.REMOVEBG_FORMATS == ("png", "jpg", "webp", "zip")  # remove.bg has no tiff
    assert formats.TRANSPORT_FORMATS == ("png", "bmp")
    assert not OUTPUT_FORMATS["jpg"].alpha and OUTPUT_FORMATS["png"].alpha


def test_the_clients_name_files_from_the_table() -> None:
    from client.options import EXT_BY_FORMAT, EXT_BY_MIME, FORMAT_BY_EXT, format_for_output

    assert FORMAT_BY_EXT == {".png": "png", ".jpg": "jpg", ".jpeg": "jpg", ".webp": "webp",
                             ".tif": "tiff", ".tiff": "tiff"}
    assert EXT_BY_FORMAT == {"png": ".png", "jpg": ".jpg", "webp": ".webp", "tiff": ".tif"}
    assert EXT_BY_MIME == {"image/png": ".png", "image/jpeg": ".jpg", "image/webp": ".webp",
                           "image/tiff": ".tif"}
    with pytest.raises(ValueError, match=r"\.png, \.jpg, \.webp, \.tif"):
        format_for_output(Path("out.gif"), None)


def test_openapi_and_removebg_use_the_table() -> None:
    from matting_api.openapi import build_openapi
    from matting_api.removebg import FORMATS

    assert FORMATS == ("auto", "png", "jpg", "webp", "zip")
    doc = build_openapi()
    matte = doc["paths"]["/v1/matte"]["post"]["responses"]["200"]["content"]
    assert set(matte) >= set(formats.result_mime_types()) >= {"image/tiff"}
    enums = {path: _format_enum(doc, path) for path in ("/v1/matte", "/v1.0/removebg")}
    assert "tiff" in enums["/v1/matte"] and "tiff" not in enums["/v1.0/removebg"]


def _format_enum(doc: dict, path: str) -> list[str]:
    """The ``format`` field's values in the OpenAPI document's multipart form of ``path``."""
    form = doc["paths"][path]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]
    return form["properties"]["format"]["enum"]


def test_the_tiff_written_is_uncompressed_in_one_strip() -> None:
    """What the video client gets on this machine: straight (not premultiplied) RGBA, no
    compression, one strip (far under the decode budgets of the services and the clients)."""
    from service_common.images import MAX_TIFF_BLOCKS, encode_image, probe

    rgba = np.random.default_rng(1).integers(0, 256, (48, 64, 4), dtype=np.uint8)
    body = encode_image(rgba, "tiff")
    with Image.open(io.BytesIO(body)) as img:
        assert img.format == "TIFF" and img.mode == "RGBA" and img.info["compression"] == "raw"
        assert img.tag_v2[338] == (2,)  # ExtraSamples: unassociated (straight) alpha
        assert np.array_equal(np.asarray(img), rgba)
    assert len(body) > rgba.nbytes
    assert formats.tiff_blocks(body) == 1 < MAX_TIFF_BLOCKS
    header = probe(body, 10_000)
    assert (header.format, header.mode, header.width, header.height) == ("TIFF", "RGBA", 64, 48)


def test_the_zip_is_the_tables() -> None:
    from matting_api.pipeline import ZIP_MIME

    assert ZIP_MIME == OUTPUT_FORMATS["zip"].mime == "application/zip"

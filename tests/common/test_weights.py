"""The weights command: resumable download, checksums, clear messages. Served locally."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from httpfake import FakeServer, Reply, Request

from matting_api.backends.fba import FBA
from segmentation_api.backends.u2netp import U2NETP
from service_common import weights
from service_common.weights import ModelError, WeightsFile

PAYLOAD = bytes(range(256)) * 4096  # 1 MiB


def _range_server(request: Request) -> Reply:
    """Serves PAYLOAD at /file, honouring 'Range: bytes=N-' like a real file server, and a
    sign-in web page at /login."""
    if request.path == "/login":
        return Reply(200, b"<html>sign in</html>", "text/html")
    rng = request.headers.get("Range")
    start = int(rng.split("=")[1].split("-")[0]) if rng else 0
    return Reply(206 if rng else 200, PAYLOAD[start:], "application/octet-stream")


@pytest.fixture()
def server() -> Iterator[FakeServer]:
    with FakeServer(_range_server) as httpd:
        yield httpd


def _ranges(server: FakeServer) -> list[str | None]:
    """The Range header of every request the server got."""
    return [request.headers.get("Range") for request in server.received]


def _file(url: str, **kw) -> WeightsFile:
    return WeightsFile(key="test", filename="test.bin", used_by="tests", source="a local server",
                       licence="none", url=url, sha256=hashlib.sha256(PAYLOAD).hexdigest(), **kw)


def test_download_verifies_and_records_checksum(server: FakeServer, tmp_path: Path) -> None:
    w = _file(server.url + "/file")
    path = weights.fetch(w, tmp_path, progress=False)
    assert path.read_bytes() == PAYLOAD
    assert not (tmp_path / "test.bin.part").exists()
    assert (tmp_path / "SHA256SUMS").read_text() == f"{w.sha256}  test.bin\n"
    # present already: verified again, not downloaded again
    weights.fetch(w, tmp_path, progress=False)
    assert _ranges(server) == [None]


def test_download_resumes_a_partial_file(server: FakeServer, tmp_path: Path) -> None:
    (tmp_path / "test.bin.part").write_bytes(PAYLOAD[:1000])
    path = weights.fetch(_file(server.url + "/file"), tmp_path, progress=False)
    assert _ranges(server) == ["bytes=1000-"]
    assert path.read_bytes() == PAYLOAD


def test_checksum_mismatch_is_refused_and_not_kept(server: FakeServer, tmp_path: Path) -> None:
    w = replace(_file(server.url + "/file"), sha256="0" * 64)
    with pytest.raises(ModelError, match="does not match"):
        weights.fetch(w, tmp_path, progress=False)
    assert not (tmp_path / "test.bin").exists() and not (tmp_path / "test.bin.part").exists()
    w = replace(_file(server.url + "/file"), sha256=None, sha256_prefix="deadbeef")
    with pytest.raises(ModelError, match="torchvision"):
        weights.fetch(w, tmp_path, progress=False)


def test_a_web_page_instead_of_the_file_is_reported(server: FakeServer, tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="web page"):
        weights.fetch(_file(server.url + "/login"), tmp_path, progress=False)


def test_missing_message_says_which_file_goes_where(tmp_path: Path) -> None:
    msg = weights.missing_message(FBA, tmp_path)
    assert str(tmp_path / "FBA.pth") in msg
    assert "NON-COMMERCIAL" in msg and "make weights" in msg
    assert "1T_oiKDE_biWf2kqexMEN7ObWqtXAzbB1" in msg


def test_fba_check_loads_state_dict_safely(tmp_path: Path) -> None:
    good = {f"encoder.p{i}": torch.zeros(1) for i in range(150)}
    good.update({f"decoder.p{i}": torch.zeros(1) for i in range(47)})
    torch.save(good, tmp_path / "FBA.pth")
    weights.verify(FBA, tmp_path / "FBA.pth")
    torch.save({"model": 1}, tmp_path / "FBA.pth")
    with pytest.raises(ModelError, match="not a flat state dict"):
        weights.verify(FBA, tmp_path / "FBA.pth")
    torch.save({f"encoder.p{i}": torch.zeros(1) for i in range(10)}, tmp_path / "FBA.pth")
    with pytest.raises(ModelError, match="not the FBA state dict"):
        weights.verify(FBA, tmp_path / "FBA.pth")
    (tmp_path / "FBA.pth").write_bytes(b"<html>quota exceeded</html>")
    with pytest.raises(ModelError, match="is not a torch checkpoint"):
        weights.verify(FBA, tmp_path / "FBA.pth")


def test_list_command(tmp_path: Path) -> None:
    lines: list[str] = []
    assert weights.main(["--list", "--models-dir", str(tmp_path)], out=lines.append) == 0
    assert any(line.startswith("u2netp") and "missing" in line for line in lines)
    (tmp_path / U2NETP.filename).write_bytes(b"x")
    lines.clear()
    weights.main(["--list", "--models-dir", str(tmp_path)], out=lines.append)
    assert any(line.startswith("u2netp") and "present" in line for line in lines)


def test_unknown_name_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as info:
        weights.main(["nonsense", "--models-dir", str(tmp_path)])
    assert info.value.code == 2


def test_registry_comes_from_the_model_modules_without_torch() -> None:
    """Each model module describes its weights; reading them imports no torch."""
    import subprocess
    import sys

    from service_common.config import REPO_ROOT

    code = ("import sys; from service_common.weights import registry; r = registry(); "
            "assert set(r) == {'u2netp', 'modnet', 'maskrcnn', 'maskrcnn_v2', 'deeplabv3', "
            "'deeplabv3_mobilenet', 'fba', 'selfie'}, set(r); "
            "assert 'torch' not in sys.modules and 'onnxruntime' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, check=True)


def test_torchvision_entries_match_torchvision_enums() -> None:
    """The written-out URLs, checksum prefixes and categories are torchvision's own."""
    from torchvision.models.detection import MaskRCNN_ResNet50_FPN_V2_Weights, MaskRCNN_ResNet50_FPN_Weights
    from torchvision.models.segmentation import (
        DeepLabV3_MobileNet_V3_Large_Weights,
        DeepLabV3_ResNet101_Weights,
    )

    known = weights.registry()
    for key, enum in (("maskrcnn", MaskRCNN_ResNet50_FPN_Weights.COCO_V1),
                      ("maskrcnn_v2", MaskRCNN_ResNet50_FPN_V2_Weights.COCO_V1),
                      ("deeplabv3", DeepLabV3_ResNet101_Weights.COCO_WITH_VOC_LABELS_V1),
                      ("deeplabv3_mobilenet", DeepLabV3_MobileNet_V3_Large_Weights.COCO_WITH_VOC_LABELS_V1)):
        w = known[key]
        assert w.url == enum.url and w.filename == enum.url.rsplit("/", 1)[1]
        assert w.filename.rsplit("-", 1)[1].startswith(w.sha256_prefix)
        assert w.categories == tuple(enum.meta["categories"])
        assert w.hub_cache


@pytest.mark.parametrize("env", [{}, {"TORCH_HOME": "/tmp/th"}, {"XDG_CACHE_HOME": "/tmp/xdg"}])
def test_torch_hub_dir_is_torchs_own_without_importing_it(monkeypatch, env):
    from service_common.weights import torch_hub_dir

    for name in ("TORCH_HOME", "XDG_CACHE_HOME"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert torch_hub_dir() == Path(torch.hub.get_dir())

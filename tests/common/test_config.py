"""Settings from the environment: defaults, parsing, errors, and docs/configuration.md's table."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from service_common import config
from service_common.config import ENV_DOCS, RENAMED, REPO_ROOT, ConfigError, Settings, unknown_variables


def test_defaults_match_the_documented_table() -> None:
    s = Settings.from_env({})
    assert s == Settings()
    assert s.models_dir == REPO_ROOT / "models"
    assert s.seg_port == int(ENV_DOCS["BACKDROP_SEGMENTATION_PORT"][0]) == 3000
    assert s.matting_port == int(ENV_DOCS["BACKDROP_MATTING_PORT"][0]) == 5000
    assert s.segmentation_url == ENV_DOCS["BACKDROP_SEGMENTATION_URL"][0]
    assert s.max_pixels == int(ENV_DOCS["BACKDROP_MAX_PIXELS"][0])
    assert s.max_upload_bytes == int(ENV_DOCS["BACKDROP_MAX_UPLOAD_MB"][0]) * 1024 * 1024


def test_values_are_read_and_normalised(tmp_path: Path) -> None:
    s = Settings.from_env({
        "BACKDROP_MODELS_DIR": str(tmp_path),
        "BACKDROP_SEGMENTATION_URL": "http://seg:3000/",
        "BACKDROP_MATTING_BACKEND": "Closed_Form",
        "BACKDROP_MAX_UPLOAD_MB": "0.5",
        "BACKDROP_LOG_LEVEL": "debug",
        "BACKDROP_SEGMENTATION_WORKERS": "3",
    })
    assert s.models_dir == tmp_path
    assert s.segmentation_url == "http://seg:3000"
    assert s.matting_backend == "closed_form"
    assert s.max_upload_bytes == 512 * 1024
    assert s.log_level == "DEBUG"
    assert s.seg_workers == 3


@pytest.mark.parametrize(
    ("name", "value", "fragment"),
    [
        ("BACKDROP_SEGMENTATION_PORT", "http", "not a whole number"),
        ("BACKDROP_SEGMENTATION_WORKERS", "0", ">= 1"),
        ("BACKDROP_MATTING_BACKEND", "magic", "expected one of"),
        ("BACKDROP_SEGMENTATION_TIMEOUT", "-1", "> 0"),
        ("BACKDROP_LOG_LEVEL", "loud", "expected DEBUG"),
    ],
)
def test_bad_values_name_the_variable(name: str, value: str, fragment: str) -> None:
    with pytest.raises(ConfigError, match=name) as info:
        Settings.from_env({name: value})
    assert fragment in str(info.value)


def test_configuration_doc_documents_every_variable() -> None:
    doc = (REPO_ROOT / "docs" / "configuration.md").read_text()
    missing = [name for name in ENV_DOCS if f"`{name}`" not in doc]
    assert not missing, f"docs/configuration.md's table lacks {missing}"
    for old, new in RENAMED.items():
        assert f"`{old}`" in doc and f"`{new}`" in doc, f"docs/configuration.md does not name {old} -> {new}"
    readme = (REPO_ROOT / "README.md").read_text()
    assert "docs/configuration.md" in readme, "the README does not link the configuration table"


def test_old_names_are_still_read_with_a_warning_naming_the_new_one(caplog, monkeypatch) -> None:
    monkeypatch.setattr(config, "_WARNED", set())
    old = {"BACKDROP_SEG_PORT": "3100", "BACKDROP_SEG_WORKERS": "2", "BACKDROP_SEG_THREADS": "3"}
    with caplog.at_level(logging.WARNING, logger="service_common.config"):
        s = Settings.from_env(old)
    assert (s.seg_port, s.seg_workers, s.seg_threads) == (3100, 2, 3)
    for name, new in RENAMED.items():
        assert f"{name} is an old name: call it {new}" in caplog.text
        assert new in ENV_DOCS and name not in ENV_DOCS
    assert unknown_variables(old) == []
    both = {"BACKDROP_SEG_PORT": "3100", "BACKDROP_SEGMENTATION_PORT": "3200"}
    assert Settings.from_env(both).seg_port == 3200
    with pytest.raises(ConfigError, match="^BACKDROP_SEG_PORT='x' is not a whole number$"):
        Settings.from_env({"BACKDROP_SEG_PORT": "x"})


def test_the_backend_choices_are_the_contracts() -> None:
    from contract.vocab import MATTING_BACKENDS, SEGMENTATION_BACKENDS

    for name in SEGMENTATION_BACKENDS:
        assert Settings.from_env({"BACKDROP_SEGMENTATION_BACKEND": name}).segmentation_backend == name
    for name in MATTING_BACKENDS:
        assert Settings.from_env({"BACKDROP_MATTING_BACKEND": name}).matting_backend == name
    assert all(name in ENV_DOCS["BACKDROP_SEGMENTATION_BACKEND"][1] for name in SEGMENTATION_BACKENDS)

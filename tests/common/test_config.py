"""Settings from the environment: defaults, parsing, errors, and the README's table."""

from __future__ import annotations

from pathlib import Path

import pytest

from service_common.config import ENV_DOCS, REPO_ROOT, ConfigError, Settings


def test_defaults_match_the_documented_table() -> None:
    s = Settings.from_env({})
    assert s == Settings()
    assert s.models_dir == REPO_ROOT / "models"
    assert s.seg_port == int(ENV_DOCS["BACKDROP_SEG_PORT"][0]) == 3000
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
        "BACKDROP_SEG_WORKERS": "3",
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
        ("BACKDROP_SEG_PORT", "http", "not a whole number"),
        ("BACKDROP_SEG_WORKERS", "0", ">= 1"),
        ("BACKDROP_MATTING_BACKEND", "magic", "expected one of"),
        ("BACKDROP_SEGMENTATION_TIMEOUT", "-1", "> 0"),
        ("BACKDROP_LOG_LEVEL", "loud", "expected DEBUG"),
    ],
)
def test_bad_values_name_the_variable(name: str, value: str, fragment: str) -> None:
    with pytest.raises(ConfigError, match=name) as info:
        Settings.from_env({name: value})
    assert fragment in str(info.value)


def test_readme_documents_every_variable() -> None:
    readme = (REPO_ROOT / "README.md").read_text()
    missing = [name for name in ENV_DOCS if f"`{name}`" not in readme]
    assert not missing, f"README's configuration table lacks {missing}"

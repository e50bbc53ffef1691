"""The conda environment files parse and carry exactly pyproject's pins."""

from __future__ import annotations

import re
import tomllib

import pytest
import yaml

from service_common.config import REPO_ROOT

PYPROJECT = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]


def _name(spec: str) -> str:
    return re.split(r"[<>=!~ \[]", spec, maxsplit=1)[0].lower()


@pytest.mark.parametrize(
    ("filename", "extras"),
    # the conda environments are the full ones (GPU machines): torch included; no empty
    # extra (segmentation, matting, video are kept in pyproject only for old commands)
    [("environment-segmentation.yml", ["torch"]),
     ("environment-matting.yml", ["torch"])],
)
def test_environment_file_agrees_with_pyproject(filename: str, extras: list[str]) -> None:
    env = yaml.safe_load((REPO_ROOT / filename).read_text())
    assert env["name"].startswith("backdrop-")
    conda = [d for d in env["dependencies"] if isinstance(d, str)]
    assert "python=3.11" in conda and "pip" in conda
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    editable = [p for p in pip_section if p.startswith("-e ")]
    assert editable == [f"-e .[{','.join(extras)}]"]
    specs = {_name(p): p for p in pip_section if not p.startswith("-e ")}

    wanted = list(PYPROJECT["dependencies"])
    for extra in extras:
        assert PYPROJECT["optional-dependencies"][extra], f"the extra {extra} brings nothing"
        wanted += PYPROJECT["optional-dependencies"][extra]
    # every runtime dependency (and the service's extras) with the very same specifier
    assert specs == {_name(w): w for w in wanted}
    assert specs["torch"] == "torch==2.14.1"
    assert specs["torchvision"] == "torchvision==0.29.1"


def test_pyproject_pins_torch_exactly_in_its_extra_only() -> None:
    base = {_name(d) for d in PYPROJECT["dependencies"]}
    assert not base & {"torch", "torchvision"}  # the default install is slim
    deps = {_name(d): d for d in PYPROJECT["optional-dependencies"]["torch"]}
    assert deps["torch"] == "torch==2.14.1"
    assert deps["torchvision"] == "torchvision==0.29.1"
    assert PYPROJECT["requires-python"].startswith(">=3.11")

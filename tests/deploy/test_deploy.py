"""The deployment files: the container image's build steps, compose, Kubernetes manifests.

The manifests are validated against the Kubernetes API schemas (``kubernetes-validate``,
strict: no unknown field), the CUDA variant as kustomize renders it (its patch merged into
the base). The image builds are not run here (minutes, and base images cannot be pulled in
CI); deploy/README.md says how they were built and checked. What can be checked from the
files is: what the build copies exists and is every package, the process runs as a
non-root user, the health checks call a probe that exists, every variable is a setting.
"""

from __future__ import annotations

import copy
import re
import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml

from service_common.config import ENV_DOCS, REPO_ROOT, Settings
from service_common.probe import probe

DEPLOY = REPO_ROOT / "deploy"
KUBE = DEPLOY / "kubernetes"
PYPROJECT = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
KUBE_VERSION = "1.30.0"


# ------------------------------------------------------------------ a minimal kustomize


def _merge(base, patch):
    """Strategic merge as kustomize applies it to these files: maps merged key by key,
    lists of named items (containers, env) merged by name, other lists replaced."""
    if isinstance(base, dict) and isinstance(patch, dict):
        out = dict(base)
        for key, value in patch.items():
            out[key] = _merge(base[key], value) if key in base else copy.deepcopy(value)
        return out
    if isinstance(base, list) and isinstance(patch, list) and all(
            isinstance(i, dict) and "name" in i for i in base + patch):
        out = [copy.deepcopy(i) for i in base]
        for item in patch:
            match = next((k for k, old in enumerate(out) if old["name"] == item["name"]), None)
            if match is None:
                out.append(copy.deepcopy(item))
            else:
                out[match] = _merge(out[match], item)
        return out
    return copy.deepcopy(patch)


def render(folder: Path) -> list[dict]:
    """The resources of a kustomization folder: resources (files or folders), common
    labels, image replacements and strategic-merge patches."""
    spec = yaml.safe_load((folder / "kustomization.yaml").read_text())
    docs: list[dict] = []
    for entry in spec.get("resources", []):
        path = (folder / entry).resolve()
        if path.is_dir():
            docs += render(path)
        else:
            docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    for label in spec.get("labels", []):
        for doc in docs:
            doc.setdefault("metadata", {}).setdefault("labels", {}).update(label["pairs"])
    for patch_entry in spec.get("patches", []):
        patch = yaml.safe_load((folder / patch_entry["path"]).read_text())
        for i, doc in enumerate(docs):
            if (doc["kind"], doc["metadata"]["name"]) == (patch["kind"], patch["metadata"]["name"]):
                docs[i] = _merge(doc, patch)
    for image in spec.get("images", []):
        for doc in docs:
            for container in _containers(doc):
                name, _, tag = container["image"].partition(":")
                if name == image["name"]:
                    container["image"] = f"{image.get('newName', name)}:{image.get('newTag', tag)}"
    return docs


def _containers(doc: dict) -> list[dict]:
    return doc.get("spec", {}).get("template", {}).get("spec", {}).get("containers", [])


def _by(docs: list[dict], kind: str, name: str) -> dict:
    return next(d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name)


def _env(container: dict) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container.get("env", [])}


# ------------------------------------------------------------------ Kubernetes


@pytest.mark.parametrize("variant", ["base", "cuda"])
def test_every_manifest_validates_against_the_kubernetes_schemas(variant):
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    docs = render(KUBE / variant)
    assert sorted((d["kind"], d["metadata"]["name"]) for d in docs) == sorted(
        (kind, f"backdrop-{part}") for part in ("segmentation", "matting")
        for kind in ("Deployment", "Service", "HorizontalPodAutoscaler"))
    for doc in docs:
        kubernetes_validate.validate(doc, KUBE_VERSION, strict=True)  # raises on any error


@pytest.mark.parametrize("variant", ["base", "cuda"])
def test_deployments_probe_run_unprivileged_and_find_each_other_by_service_name(variant):
    docs = render(KUBE / variant)
    segmentation_service = _by(docs, "Service", "backdrop-segmentation")
    for part, port in (("segmentation", 3000), ("matting", 5000)):
        deployment = _by(docs, "Deployment", f"backdrop-{part}")
        pod = deployment["spec"]["template"]
        assert deployment["spec"]["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
        assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
        (container,) = pod["spec"]["containers"]
        assert container["image"] == f"localhost/backdrop:{'cpu' if variant == 'base' else 'cuda'}"
        assert container["ports"] == [{"name": "http", "containerPort": port}]
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        env = _env(container)
        assert env["BACKDROP_SERVICE"] == part
        assert set(env) <= set(ENV_DOCS), set(env) - set(ENV_DOCS)
        Settings.from_env({**env})  # every value is valid
        requests, limits = container["resources"]["requests"], container["resources"]["limits"]
        assert _mebibytes(requests["memory"]) <= _mebibytes(limits["memory"])
        hpa = _by(docs, "HorizontalPodAutoscaler", f"backdrop-{part}")
        assert hpa["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
        service = _by(docs, "Service", f"backdrop-{part}")
        assert service["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
        assert service["spec"]["ports"][0]["port"] == port
    matting = _by(docs, "Deployment", "backdrop-matting")["spec"]["template"]["spec"]["containers"][0]
    url = f"http://{segmentation_service['metadata']['name']}:{segmentation_service['spec']['ports'][0]['port']}"
    assert _env(matting)["BACKDROP_SEGMENTATION_URL"] == url


def test_the_cuda_variant_asks_for_a_gpu_node_and_fetches_mask_rcnn():
    pod = _by(render(KUBE / "cuda"), "Deployment", "backdrop-segmentation")["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    (container,) = pod["containers"]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert _env(container)["BACKDROP_FETCH_WEIGHTS"] == "maskrcnn"
    assert _env(container)["BACKDROP_SERVICE"] == "segmentation"  # the base's env kept


def _mebibytes(quantity: str) -> float:
    number, unit = re.fullmatch(r"(\d+(?:\.\d+)?)(Mi|Gi)", quantity).groups()
    return float(number) * (1024 if unit == "Gi" else 1)


# ------------------------------------------------------------------ the image and compose


def _containerfile() -> list[tuple[str, str]]:
    text = (DEPLOY / "Containerfile").read_text().replace("\\\n", " ")
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "")
            for line in (raw.strip() for raw in text.splitlines()) if line and not line.startswith("#")]


def test_the_image_copies_every_package_and_runs_unprivileged():
    steps = _containerfile()
    copied = [args.split()[0].rstrip("/") for kind, args in steps if kind == "COPY"]
    for source in copied:
        assert (REPO_ROOT / source).exists(), source
    packages = {p.rstrip("*") for p in PYPROJECT["tool"]["setuptools"]["packages"]["find"]["include"]}
    assert packages <= set(copied), packages - set(copied)
    users = [args for kind, args in steps if kind == "USER"]
    assert users and users[-1] not in ("root", "0")
    kinds = [kind for kind, _ in steps]
    assert kinds.index("USER") < kinds.index("CMD")
    health = next(args for kind, args in steps if kind == "HEALTHCHECK")
    assert '"service_common.probe"' in health
    assert next(args for kind, args in steps if kind == "CMD") == '["backdrop-serve"]'
    assert "backdrop-serve" in PYPROJECT["project"]["scripts"]
    expose = next(args for kind, args in steps if kind == "EXPOSE").split()
    assert expose == [ENV_DOCS["BACKDROP_SEGMENTATION_PORT"][0], ENV_DOCS["BACKDROP_MATTING_PORT"][0]]
    env_names = set(re.findall(r"\b(BACKDROP_[A-Z_]+)=", (DEPLOY / "Containerfile").read_text()))
    assert env_names <= set(ENV_DOCS), env_names - set(ENV_DOCS)


def test_the_images_extras_exist_and_bring_something():
    """``EXTRAS`` (the build argument) names extras of pyproject.toml that add packages: the
    slim set is the package's own dependencies, so the CPU image names none and the CUDA one
    ``torch``; an empty ``EXTRAS`` installs the package alone (``pip install .``)."""
    extras = PYPROJECT["project"]["optional-dependencies"]
    text = (DEPLOY / "Containerfile").read_text()
    default = re.search(r"^ARG EXTRAS=(\S*)$", text, re.MULTILINE)
    assert default is not None, "the Containerfile has no ARG EXTRAS"
    install = next(args for kind, args in _containerfile() if kind == "RUN" and "pip install" in args)
    for value, expected in (("", "pip install ."), ("torch", "pip install .[torch]")):
        shell = subprocess.run(["sh", "-c", f"echo {install.split('&&')[0].strip()}"],
                               env={"EXTRAS": value, "PATH": "/usr/bin:/bin"},
                               capture_output=True, text=True, check=True)
        assert shell.stdout.strip() == expected, (value, shell.stdout)
    named = [default.group(1)]
    for name in ("Containerfile", "compose.yaml", "compose.cuda.yaml", "README.md"):
        named += re.findall(r"--build-arg EXTRAS=(\S+)", (DEPLOY / name).read_text())
    assert len(named) >= 3, named
    for value in named:
        for extra in filter(None, value.split(",")):
            assert extras.get(extra), f"EXTRAS={value}: {extra!r} is not an extra that adds anything"


def test_the_build_context_leaves_out_what_the_image_does_not_need():
    ignored = (REPO_ROOT / ".containerignore").read_text().split()
    assert {".git", ".venv", "models", "tests"} <= set(ignored)


@pytest.mark.parametrize("files", [["compose.yaml"], ["compose.yaml", "compose.cuda.yaml"]])
def test_compose_starts_both_with_health_checks_and_ordering(files):
    spec: dict = {}
    for name in files:
        spec = _merge(spec, yaml.safe_load((DEPLOY / name).read_text())) if spec else \
            yaml.safe_load((DEPLOY / name).read_text())
    services = spec["services"]
    assert set(services) == {"segmentation", "matting"}
    for name, service in services.items():
        assert service["environment"]["BACKDROP_SERVICE"] == name
        assert set(service["environment"]) <= set(ENV_DOCS)
        test = service["healthcheck"]["test"]
        assert test[:4] == ["CMD", "python", "-m", "service_common.probe"] and test[-1] == "readyz"
        Settings.from_env(service["environment"])
    assert services["matting"]["depends_on"]["segmentation"]["condition"] == "service_healthy"
    assert services["matting"]["environment"]["BACKDROP_SEGMENTATION_URL"] == "http://segmentation:3000"


#: Where the project tells a user how to start the compose file.
COMPOSE_DOCS = ["README.md", "deploy/README.md", "deploy/compose.yaml", "deploy/compose.cuda.yaml",
                "deploy/Containerfile"]


def _command_lines(path: Path) -> list[str]:
    """The lines of ``path`` that are commands: in a ``sh`` block of a Markdown file, or a
    comment line of a compose file or the Containerfile."""
    text = path.read_text()
    if path.suffix == ".md":
        blocks = re.findall(r"^```sh\n(.*?)^```", text, re.MULTILINE | re.DOTALL)
        return [line.strip() for block in blocks for line in block.splitlines() if line.strip()]
    return [line.lstrip("# ").strip() for line in text.splitlines() if line.startswith("#")]


def test_compose_commands_name_the_tool_that_works():
    """Debian 12's podman (4.3) has no ``podman compose``: every command says
    ``podman-compose``, and every version given for it is the one the container check pins."""
    script = (REPO_ROOT / "scripts" / "containers_check.sh").read_text()
    pinned = re.search(r'PODMAN_COMPOSE_VERSION="\$\{PODMAN_COMPOSE_VERSION:-([0-9.]+)\}"', script)
    assert pinned, "scripts/containers_check.sh no longer pins podman-compose's version"
    uses = 0
    for name in COMPOSE_DOCS:
        path = REPO_ROOT / name
        for line in _command_lines(path):
            assert not re.match(r"(sudo )?podman compose\b", line), f"{name}: {line}"
            uses += line.startswith("podman-compose ")
        for version in re.findall(r"podman-compose(?: version |==| )(\d+\.\d+\.\d+)", path.read_text()):
            assert version == pinned.group(1), f"{name} names podman-compose {version}"
    assert uses >= 3, "the compose commands are gone from the docs: is this test still right?"


def test_the_probe_says_what_it_got(offline_services):
    _, matting = offline_services
    assert probe(matting.port, "readyz") == (True, f"{matting.url}/readyz: HTTP 200")
    ok, what = probe(matting.port, "nothing-here")
    assert not ok and "HTTP 404" in what and "not_found" in what

"""Every command the README gives works as written (issue 25: "a fresh clone, with the README
only").

The README's ``sh`` blocks and its inline commands are read as a user reads them, and each is
checked against what it names:

* ``make TARGET VAR=...``: the target and the variable are the Makefile's (and ``make -n``
  accepts the line, where make is installed);
* ``pip install '.[EXTRA]'``: the extra is pyproject.toml's;
* ``backdrop``, ``backdrop-video``, ...: a console script of pyproject.toml, and every flag
  given to it is in its ``--help``; a flag in the prose is in the ``--help`` of a tool its
  section names, or in the source of a script it names;
* ``python FILE`` / ``python -m MODULE``: the file or module exists (``--list`` of the
  weights command runs: offline and quick);
* ``curl``: the endpoint is a route of a service, every form field one it reads, every
  ``@FILE`` a file of the repository;
* ``podman build`` / ``podman-compose`` / ``kubectl apply -k``: the files and folders they
  name exist, the image tag is the one compose runs, there is no ``podman compose`` (Debian
  12's podman has none); ``kubectl kustomize`` renders the folder where kubectl is installed
  (nothing is run against podman or a cluster);
* paths, ``BACKDROP_*`` names, the API table's fields and every relative link (with its
  ``#anchor``) exist.

The slow test runs the commands that can run offline against the services of the
``offline_services`` fixture: the ``curl`` line and the image CLI's lines, and each console
script's ``--help`` as installed. What is not run here: ``make demo`` (``tests/scripts/
test_demo.py`` runs the demo), ``make test`` (this suite), installs, the video lines (the
video client's own tests) and the container and cluster commands.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import importlib.util
import io
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

from contract.vocab import MATTE_FIELDS, MATTE_FILES, SEGMENT_FIELDS
from service_common.config import ENV_DOCS, REPO_ROOT

README = REPO_ROOT / "README.md"
PYPROJECT = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
SCRIPTS: dict[str, str] = PYPROJECT["project"]["scripts"]
EXTRAS: dict[str, list[str]] = PYPROJECT["project"]["optional-dependencies"]
MAKEFILE = (REPO_ROOT / "Makefile").read_text()
#: Paths the README names that a command writes (they are not in a fresh clone).
OUTPUTS = {"samples/astronaut.result.jpg"}  # written by `make demo`
#: Tools the README may name that are not ours: only the files they are given are checked.
EXTERNAL = {"ffmpeg"}
PODMAN_SUBCOMMANDS = {"build", "run", "network", "ps", "logs", "stop", "rm", "images", "healthcheck"}
COMPOSE_SUBCOMMANDS = {"up", "down", "ps", "logs", "stop", "start", "restart", "pull"}
SEPARATORS = {"&&", "||", "|", ";", "&"}
REDIRECTS = {">", ">>", "<", "2>", "2>>"}


# ------------------------------------------------------------------ reading the README


def sh_blocks(text: str) -> list[str]:
    """The ``sh`` code blocks of a Markdown text."""
    return re.findall(r"^```sh\n(.*?)^```", text, re.MULTILINE | re.DOTALL)


def commands(block: str) -> list[list[str]]:
    """The simple commands of a shell block, as word lists: continuation lines joined,
    comments dropped, split at ``&&``, ``|`` and ``;``, redirections left out."""
    out: list[list[str]] = []
    for line in block.replace("\\\n", " ").splitlines():
        lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        words: list[str] = []
        tokens = list(lexer)
        skip = False
        for token in tokens:
            if skip:
                skip = False
            elif token in SEPARATORS:
                out.append(words) if words else None
                words = []
            elif token in REDIRECTS:
                skip = True
            else:
                words.append(token)
        if words:
            out.append(words)
    return out


def prose(text: str) -> str:
    """The text outside code blocks."""
    return re.sub(r"^```.*?^```", "", text, flags=re.MULTILINE | re.DOTALL)


def sections(text: str) -> list[tuple[str, str]]:
    """``(heading, body)`` for each ``##`` or ``###`` section (the part before the first
    heading under ``""``)."""
    parts = re.split(r"^(#{2,3} .*)$", text, flags=re.MULTILINE)
    return [("", parts[0])] + [(parts[i].lstrip("# ").strip(), parts[i + 1]) for i in range(1, len(parts), 2)]


def inline_code(text: str) -> list[str]:
    return re.findall(r"`([^`\n]+)`", prose(text))


def slug(heading: str) -> str:
    """GitHub's anchor of a heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


# ------------------------------------------------------------------ what the commands name


def make_targets() -> set[str]:
    return {m for m in re.findall(r"^([A-Za-z0-9_.-]+)\s*:(?!=)", MAKEFILE, re.MULTILINE)}


def make_variables() -> set[str]:
    return set(re.findall(r"^([A-Z_]+)\s*[?:+]?=", MAKEFILE, re.MULTILINE))


@functools.cache
def help_text(entry: str) -> str:
    """What ``--help`` prints for ``module:function`` (the function called in-process, as its
    console script calls it)."""
    module, function = entry.split(":")
    main = getattr(importlib.import_module(module), function)
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
        main(["--help"])
    return out.getvalue()


def has_flag(text: str, flag: str) -> bool:
    return re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", text) is not None


def flags(words: list[str]) -> list[str]:
    """The options among ``words`` (``--name``, ``--name=value``, ``-q``; not ``-``)."""
    return [w.split("=", 1)[0] for w in words if re.match(r"^--?[A-Za-z]", w)]


def routes() -> set[str]:
    found: set[str] = set()
    for package in ("matting_api", "segmentation_api"):
        for path in (REPO_ROOT / package).glob("*.py"):
            found |= set(re.findall(r"\.(?:get|post|route)\(\s*\"([^\"]+)\"", path.read_text()))
    return found


def compose_image() -> str:
    spec = yaml.safe_load((REPO_ROOT / "deploy" / "compose.yaml").read_text())
    return spec["services"]["matting"]["image"]


# ------------------------------------------------------------------ the checks


class Checker:
    """Collects what a README names that does not exist, as sentences."""

    def __init__(self) -> None:
        self.problems: list[str] = []
        self.runnable: list[list[str]] = []

    def fail(self, where: str, what: str) -> None:
        self.problems.append(f"{where}: {what}")

    def path(self, where: str, name: str) -> None:
        if name not in OUTPUTS and not (REPO_ROOT / name).exists():
            self.fail(where, f"{name} does not exist in the repository")

    # --- one command of an sh block, or an inline command
    def command(self, words: list[str], where: str, block: bool = False) -> None:
        """Check one command; one of an sh block (``block``) that can run against the
        services is kept in :attr:`runnable`."""
        tool, args = words[0], words[1:]
        where = f"{where}: `{shlex.join(words)}`"
        if tool == "make":
            self.make(args, where)
        elif tool == "pip":
            self.pip(args, where)
        elif tool in SCRIPTS:
            for flag in flags(args):
                if not has_flag(help_text(SCRIPTS[tool]), flag):
                    self.fail(where, f"{tool} has no option {flag} (see {tool} --help)")
            if tool == "backdrop" and block:
                self.runnable.append(words)
        elif tool in ("python", "python3") or tool.endswith("/bin/python"):
            self.python(args, where)
        elif tool == "curl":
            self.curl(args, where, block)
        elif tool == "podman":
            self.podman(args, where)
        elif tool == "podman-compose":
            self.compose(args, where)
        elif tool == "kubectl":
            self.kubectl(args, where)
        elif tool not in EXTERNAL:
            self.fail(where, f"{tool!r} is not a command the project provides or this test knows")

    def make(self, args: list[str], where: str) -> None:
        targets = [a for a in args if "=" not in a and not a.startswith("-")]
        for target in targets or ["(default)"]:
            if target not in make_targets():
                self.fail(where, f"the Makefile has no target {target!r}")
        for assignment in (a for a in args if "=" in a):
            if assignment.split("=", 1)[0] not in make_variables():
                self.fail(where, f"the Makefile has no variable {assignment.split('=', 1)[0]}")
        if shutil.which("make") and not self.problems_for(where):
            dry = subprocess.run(["make", "-n", *args], cwd=REPO_ROOT, capture_output=True, text=True,
                                 timeout=30)
            if dry.returncode != 0:
                self.fail(where, f"make -n says: {dry.stderr.strip()}")

    def problems_for(self, where: str) -> list[str]:
        return [p for p in self.problems if p.startswith(where)]

    def pip(self, args: list[str], where: str) -> None:
        if args[:1] != ["install"] or len(args) < 2:
            self.fail(where, "only `pip install SPEC` is known here")
            return
        spec = re.fullmatch(r"\.(?:\[([\w,-]*)\])?", args[-1])
        if spec is None:
            self.fail(where, f"installs {args[-1]!r}, not the package from the clone")
            return
        for extra in filter(None, (spec.group(1) or "").split(",")):
            if extra not in EXTRAS:
                self.fail(where, f"pyproject.toml has no extra {extra!r}")

    def python(self, args: list[str], where: str) -> None:
        if args[:1] == ["-m"]:
            module = args[1]
            if importlib.util.find_spec(module) is None:
                self.fail(where, f"there is no module {module}")
                return
            rest = args[2:]
            if rest:
                main = f"{module}:main"
                try:
                    text = help_text(main)
                except AttributeError:
                    text = ""
                for flag in flags(rest):
                    if not has_flag(text, flag):
                        self.fail(where, f"python -m {module} has no option {flag}")
        elif args:
            self.path(where, args[0])
        else:
            self.fail(where, "python without a script")

    def curl(self, args: list[str], where: str, block: bool) -> None:
        url = next((a for a in args if a.startswith("http")), None)
        if url is None:
            self.fail(where, "curl without a URL")
            return
        endpoint = "/" + url.split("/", 3)[3] if url.count("/") >= 3 else "/"
        if endpoint not in routes():
            self.fail(where, f"no service has the route {endpoint}")
        known = {"/v1/matte": {"image", *MATTE_FIELDS, *MATTE_FILES},
                 "/v1/mask": {"image", *SEGMENT_FIELDS}}.get(endpoint)
        for i, arg in enumerate(args):
            if arg == "-F":
                name, _, value = args[i + 1].partition("=")
                if known is not None and name not in known:
                    self.fail(where, f"{endpoint} has no field {name!r}")
                if value.startswith("@"):
                    self.path(where, value[1:])
        if endpoint in ("/v1/matte", "/v1/mask") and block:
            self.runnable.append(["curl", *args])

    def podman(self, args: list[str], where: str) -> None:
        sub = args[0] if args else ""
        if sub == "compose":
            self.fail(where, "Debian 12's podman (4.3) has no `podman compose`: say podman-compose")
        elif sub not in PODMAN_SUBCOMMANDS:
            self.fail(where, f"podman {sub!r} is not a subcommand this test knows")
        for i, arg in enumerate(args):
            if arg == "-f":
                self.path(where, args[i + 1])
            if sub == "build" and arg == "-t" and args[i + 1] != compose_image():
                self.fail(where, f"builds {args[i + 1]} but deploy/compose.yaml runs {compose_image()}")

    def compose(self, args: list[str], where: str) -> None:
        files = [args[i + 1] for i, a in enumerate(args) if a == "-f"]
        if not files:
            self.fail(where, "podman-compose without -f: it looks for a compose file in the root")
        for name in files:
            self.path(where, name)
        subs = [a for i, a in enumerate(args) if not a.startswith("-") and (i == 0 or args[i - 1] != "-f")]
        if not subs or subs[0] not in COMPOSE_SUBCOMMANDS:
            self.fail(where, f"podman-compose {' '.join(subs[:1])!r} is not a subcommand this test knows")

    def kubectl(self, args: list[str], where: str) -> None:
        folders = [args[i + 1] for i, a in enumerate(args) if a == "-k"]
        if args[:1] != ["apply"] or not folders:
            self.fail(where, "only `kubectl apply -k FOLDER` is known here")
        for folder in folders:
            if not (REPO_ROOT / folder / "kustomization.yaml").exists():
                self.fail(where, f"{folder} has no kustomization.yaml")
            elif shutil.which("kubectl"):
                rendered = subprocess.run(["kubectl", "kustomize", folder], cwd=REPO_ROOT,
                                          capture_output=True, text=True, timeout=60)
                if rendered.returncode != 0:
                    self.fail(where, f"kubectl kustomize {folder} says: {rendered.stderr.strip()}")

    # --- the prose
    def inline(self, heading: str, body: str) -> None:
        where = f"README, {heading or 'the top'}"
        codes = inline_code(body)
        tools = {c.split()[0] for c in codes if c.split() and c.split()[0] in SCRIPTS}
        tools |= {w[0] for block in sh_blocks(body) for w in commands(block) if w[0] in SCRIPTS}
        scripts = {w for c in codes for w in c.split() if w.endswith(".py")}
        for code in codes:
            words = code.split()
            first = words[0]
            if first == "make" or first in SCRIPTS or first in ("python", ".venv/bin/python"):
                self.command(words, where)
            elif first.startswith("--"):
                texts = [help_text(SCRIPTS[t]) for t in tools]
                sources = [(REPO_ROOT / s).read_text() for s in scripts if (REPO_ROOT / s).exists()]
                if not any(has_flag(t, first) for t in texts) and not any(
                        f'"{first}"' in s or f"'{first}'" in s for s in sources):
                    self.fail(where, f"{first} is an option of no tool this section names")
            elif first.startswith("BACKDROP_") and first != "BACKDROP_*":
                name = first.split("=", 1)[0]
                client = (p.read_text() for p in (REPO_ROOT / "client").glob("*.py"))
                if name not in ENV_DOCS and not any(name in source for source in client):
                    self.fail(where, f"{name} is no setting")
            elif re.fullmatch(r"(?:GET|POST) (/\S*)", code):
                if code.split()[1] not in routes():
                    self.fail(where, f"no service has the route {code.split()[1]}")
            elif len(words) == 1 and "/" in first and not first.startswith(("http", "/")) \
                    and (REPO_ROOT / first.split("/")[0]).is_dir():
                self.path(where, first)

    def links(self, text: str, source: Path) -> None:
        for target in re.findall(r"\]\(([^)\s]+)\)", prose(text)):
            if re.match(r"^[a-z]+:", target):
                continue
            name, _, anchor = target.partition("#")
            path = (source.parent / name) if name else source
            if not path.exists():
                self.fail(f"{source.name}: link {target}", "the file does not exist")
            elif anchor and path.suffix == ".md":
                anchors = {slug(h) for h in re.findall(r"^#+ (.*)$", prose(path.read_text()), re.MULTILINE)}
                if anchor not in anchors:
                    self.fail(f"{source.name}: link {target}",
                              f"{name or source.name} has no heading #{anchor}")

    def api_table(self, text: str) -> None:
        """The fields the README's API section names are fields the endpoints read."""
        for heading, body in sections(text):
            if not heading.startswith("The API"):
                continue
            for row in re.findall(r"^\| *(`[^|]*)\|", body, re.MULTILINE):
                for name in re.findall(r"`([^`]+)`", row):
                    if name not in {"image", *MATTE_FIELDS, *MATTE_FILES}:
                        self.fail(f"README, {heading}", f"/v1/matte has no field {name!r}")
            for sentence in re.findall(r"`POST /v1/mask`[^(]*\(([^)]*)\)", body):
                for name in re.findall(r"`([^`]+)`", sentence):
                    if name not in SEGMENT_FIELDS:
                        self.fail(f"README, {heading}", f"/v1/mask has no field {name!r}")


def check(text: str, source: Path = README) -> Checker:
    checker = Checker()
    for heading, body in sections(text):
        for block in sh_blocks(body):
            for words in commands(block):
                checker.command(words, f"README, {heading or 'the top'}, sh block", block=True)
        checker.inline(heading, body)
    checker.links(text, source)
    checker.api_table(text)
    return checker


# ------------------------------------------------------------------ the tests


def test_every_command_in_the_readme_names_what_exists():
    checker = check(README.read_text())
    assert checker.problems == [], "\n".join(checker.problems)
    # the README still has the commands this test is about
    assert len(sh_blocks(README.read_text())) >= 5
    assert any(words[0] == "curl" for words in checker.runnable)


def test_the_weights_list_runs_as_written():
    """``python -m service_common.weights --list``: offline, quick, says what is present."""
    from service_common import weights

    lines: list[str] = []
    assert weights.main(["--list"], out=lines.append) == 0
    assert any("u2netp" in line for line in lines), lines


def test_the_checker_finds_what_is_wrong():
    """A README naming a make target, an extra, a flag, a field, a file, a link or a tool that
    does not exist fails the check, each with its own sentence."""
    broken = """# Backdrop

## The two commands

```sh
make demoo
make weights WEIGHTZ=fba
pip install '.[nosuch]'
backdrop photo.jpg out.png --colour red
curl -F image=@samples/nothing.png -F colour=red -o out.jpg http://127.0.0.1:5000/v1/matte
curl -F image=@samples/astronaut.png http://127.0.0.1:5000/v2/matte
podman compose -f deploy/compose.yaml up -d
podman build -f deploy/Containerfile -t backdrop:latest .
podman-compose -f deploy/nothing.yaml up -d
kubectl apply -k deploy/kubernetes/nothing
backdropp photo.jpg
.venv/bin/python bench/nothing.py
```

Also `make nosuch`, `backdrop-video --nope`, `tests/nothing/`, `BACKDROP_NOPE`,
`GET /nowhere`, [the guide](docs/nothing.md) and [benchmarks](docs/benchmarks.md#nothing).

## Clients

`backdrop` takes `--no-such-option`.

## The API in brief

| field | values |
|---|---|
| `colour` | no |
"""
    problems = "\n".join(check(broken).problems)
    for expected in ("no target 'demoo'", "no variable WEIGHTZ", "no extra 'nosuch'",
                     "backdrop has no option --colour", "samples/nothing.png does not exist",
                     "/v1/matte has no field 'colour'", "has the route /v2/matte", "no `podman compose`",
                     "builds backdrop:latest", "deploy/nothing.yaml does not exist",
                     "deploy/kubernetes/nothing has no kustomization.yaml", "'backdropp' is not a command",
                     "bench/nothing.py does not exist", "no target 'nosuch'",
                     "backdrop-video has no option --nope", "tests/nothing/ does not exist",
                     "BACKDROP_NOPE is no setting", "has the route /nowhere", "link docs/nothing.md",
                     "has no heading #nothing", "--no-such-option is an option of no tool"):
        assert expected in problems, f"{expected!r} not found in:\n{problems}"


# ------------------------------------------------------------------ run against the services


@pytest.mark.slow
def test_the_readme_commands_run_against_the_services(offline_services, tmp_path):
    """The ``curl`` line and the image CLI's lines, as written, against the services of the
    fixture (the URL in the curl line and ``BACKDROP_SERVER`` point at its port), in a folder
    holding the files they name; each console script's ``--help`` as installed."""
    from PIL import Image

    _, mat = offline_services
    bin_dir = Path(sys.executable).parent
    for script in SCRIPTS:
        installed = bin_dir / script
        if installed.exists():
            done = subprocess.run([str(installed), "--help"], capture_output=True, text=True, timeout=60)
            assert done.returncode == 0 and "usage" in done.stdout, (script, done.stderr)

    (tmp_path / "samples").symlink_to(REPO_ROOT / "samples")
    photo = Image.open(REPO_ROOT / "samples" / "astronaut.png").convert("RGB").resize((256, 256))
    for name in ("photo.jpg", "product.jpg", "photos/a.jpg"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        photo.save(tmp_path / name)
    Image.open(REPO_ROOT / "samples" / "hubble_deep_field.jpg").convert("RGB").save(tmp_path / "beach.jpg")

    checker = check(README.read_text())
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "BACKDROP_SERVER": mat.url, "HOME": str(tmp_path)}
    ran = 0
    for words in checker.runnable:
        if words[0] == "curl":
            if not shutil.which("curl"):
                continue
            words = [w.replace("http://127.0.0.1:5000", mat.url) for w in words] + ["--fail", "-sS"]
        elif not (bin_dir / words[0]).exists():
            words = [sys.executable, "-m", "client", *words[1:]]
        done = subprocess.run(words, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, f"{shlex.join(words)}\n{done.stdout}\n{done.stderr}"
        ran += 1
    assert ran >= 4
    assert Image.open(tmp_path / "out.jpg").format == "JPEG"
    assert (tmp_path / "results" / "a.png").exists()

"""The Apptainer side of the execution engine: definition files, the build rule, the command.

Three layers, from cheapest to most real:

* every ``containers/<lang>.def`` parses (spython) and pins what it installs;
* the exact ``apptainer exec`` command line, and the engine driving it through a stand-in
  ``apptainer`` that runs the runner on the host (runs everywhere, so the plumbing between
  the engine, the staged runner and the container paths is tested on every machine);
* a real Apptainer run of a Lua batch, wherever ``apptainer`` is on PATH; prebuilt images
  are used from ``$MULTIPLT_IMAGE_DIR`` (``<lang>-<version>.sif``), else the Lua image is
  built. The development machines have no Apptainer, so there it is skipped.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest
import yaml

from multiplt.execution.engine import ExecutionEngine
from multiplt.execution.limits import Limits
from multiplt.execution.results import Program, Status
from multiplt.execution.sandbox import (
    APPTAINER_BIND_VARIABLES,
    STAGE_MOUNT,
    Apptainer,
    SandboxError,
    make_sandbox,
)
from multiplt.languages import Language, all_languages, get_language
from tests.conftest import REPO, snakemake
from tests.test_execution_languages import CASES as OUTCOME_CASES

CONTAINERS = REPO / "containers"
CONFIG = yaml.safe_load((REPO / "config.yaml").read_text())
BASE_IMAGE = "debian:bookworm-20250520-slim"
APT_SNAPSHOT = "20250520T000000Z"
LANGUAGE_NAMES = [language.name for language in all_languages()]

# What each image's %post must install for its runtime (apt pins, or Julia's tarball).
RUNTIME_INSTALLS = {
    "py": ["python3-coverage=6.5.0+dfsg1-2+b1"],
    "lua": ["lua5.3=5.3.6-2", "lua-unit=3.4-2"],
    "ml": ["ocaml-nox=4.13.1-4"],
    "r": ["r-base-core=4.2.2.20221110-2"],
    "rkt": ["racket=8.7+dfsg1-1"],
    "jl": ["JULIA_VERSION=1.10.", "JULIA_SHA256=", "julialang-s3.julialang.org/bin/linux/"],
}
PYTHON_PIN = "python3=3.11.2-1+b1"


def image_version(lang: str) -> str:
    """The configured version of a language's image ("1" where none is set, as in make_sandbox)."""
    return str(CONFIG["containers"]["versions"].get(lang, "1"))


def definition(lang: str) -> Path:
    return CONTAINERS / f"{get_language(lang).container}.def"


def sections(path: Path) -> tuple[dict[str, str], dict[str, list[str]]]:
    """The header keywords and the raw lines of each %section of a definition file."""
    header: dict[str, str] = {}
    found: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in path.read_text().splitlines():
        if line.startswith("%"):
            current = found.setdefault(line[1:].split()[0], [])
        elif current is not None:
            current.append(line)
        elif ":" in line and not line.lstrip().startswith("#"):
            key, value = line.split(":", 1)
            header[key.strip().lower()] = value.strip()
    return header, found


def parsed(lang: str):
    """The spython recipe of a definition file (its one layer)."""
    from spython.main.parse.parsers import SingularityParser

    recipe = SingularityParser(str(definition(lang))).recipe
    assert len(recipe) == 1, "one stage per image"
    return next(iter(recipe.values()))


def labels(lang: str) -> dict[str, str]:
    pairs = (line.split(None, 1) for line in parsed(lang).labels)
    return {pair[0]: pair[1] if len(pair) > 1 else "" for pair in pairs}


def apt_installs(post: list[str]) -> list[str]:
    """The packages of every `apt-get install` in %post (continuation lines joined)."""
    script = "\n".join(post).replace("\\\n", " ")
    packages: list[str] = []
    for line in script.splitlines():
        words = line.split()
        if "apt-get" in words and "install" in words:
            after = words[words.index("install") + 1 :]
            packages += [word for word in after if not word.startswith("-")]
    return packages


# --- 1. definition files ---------------------------------------------------------------------


def test_every_language_has_a_definition_and_a_configured_version() -> None:
    missing = [lang for lang in LANGUAGE_NAMES if not definition(lang).is_file()]
    assert not missing, f"no containers/<lang>.def for {missing}"
    stray = {path.stem for path in CONTAINERS.glob("*.def")} - {
        language.container for language in all_languages()
    }
    assert not stray, f"definition files for unknown languages: {stray}"
    assert set(CONFIG["containers"]["versions"]) == set(LANGUAGE_NAMES)


@pytest.mark.parametrize("lang", LANGUAGE_NAMES)
def test_definition_parses_with_pinned_base_and_bootstrap(lang: str) -> None:
    header, found = sections(definition(lang))
    assert header.get("bootstrap") == "docker"
    assert header.get("from") == BASE_IMAGE
    layer = parsed(lang)
    assert layer.fromHeader == BASE_IMAGE
    for section in ("labels", "help", "environment", "post", "test"):
        assert any(line.strip() for line in found.get(section, [])), f"%{section} is empty"


@pytest.mark.parametrize("lang", LANGUAGE_NAMES)
def test_labels_name_language_runtime_and_image_version(lang: str) -> None:
    found = labels(lang)
    assert found["org.multiplt.language"] == lang
    assert found["org.multiplt.runtime"]
    assert found["org.multiplt.base-image"] == BASE_IMAGE
    assert found["org.multiplt.apt-snapshot"] == APT_SNAPSHOT
    # Bumping containers.versions.<lang> in config.yaml renames the image (and reruns what
    # used it); the label says which definition an image was built from.
    assert found["org.multiplt.image-version"] == image_version(lang), (
        f"containers/{lang}.def says image-version {found['org.multiplt.image-version']}, "
        f"config.yaml says {image_version(lang)}: bump both together"
    )


@pytest.mark.parametrize("lang", LANGUAGE_NAMES)
def test_post_installs_python_and_the_runtime_from_the_snapshot(lang: str) -> None:
    post = parsed(lang).install
    script = "\n".join(post)
    installs = apt_installs(post)
    assert PYTHON_PIN in installs, "the runner needs python3"
    for needle in RUNTIME_INSTALLS[lang]:
        assert needle in script, f"%post does not install {needle}"
    # Apt comes from snapshot.debian.org at the base image's date: same versions on rebuild.
    assert f"SNAPSHOT={APT_SNAPSHOT}" in script
    assert "http://snapshot.debian.org/archive/debian/$SNAPSHOT bookworm main" in script
    assert "/archive/debian-security/$SNAPSHOT bookworm-security main" in script
    # Everything that stays in the image is pinned; unpinned build tools are purged again.
    purged = {word for line in post if "apt-get purge" in line for word in line.split()}
    unpinned = [package for package in installs if "=" not in package and package not in purged]
    assert not unpinned, f"unpinned packages stay in the image: {unpinned}"
    assert f"mkdir -p {STAGE_MOUNT}" in script, "the staged runner's bind point"


@pytest.mark.parametrize("lang", LANGUAGE_NAMES)
def test_test_section_runs_the_runtime_and_the_runners_imports(lang: str) -> None:
    _, found = sections(definition(lang))
    test_script = "\n".join(found["test"])
    assert get_language(lang).executable.split("/")[-1] in test_script
    assert "python3 -c 'import ctypes, json, resource, selectors, subprocess, threading'" in (
        test_script
    )
    assert parsed(lang).test  # spython saw the section too


def test_julia_comes_from_a_pinned_checksummed_release() -> None:
    script = "\n".join(parsed("jl").install)
    version = re.search(r"JULIA_VERSION=(\S+)", script)
    assert version and re.fullmatch(r"1\.(8|9|1\d)\.\d+", version.group(1))
    checksums = re.findall(r"JULIA_SHA256=(\S+)", script)
    assert checksums and all(re.fullmatch(r"[0-9a-f]{64}", value) for value in checksums)
    assert "sha256sum --check --strict" in script
    assert "https://julialang-s3.julialang.org/bin/linux/x64/" in script
    assert "ln -s" in script and "/usr/local/bin/julia" in script  # on the runner's PATH
    assert "apt-get purge -y --auto-remove curl ca-certificates" in script
    assert labels("jl")["org.multiplt.runtime"].startswith(f"julia {version.group(1)} ")


# --- 2. the apptainer command line -----------------------------------------------------------


def test_apptainer_command_line(tmp_path: Path) -> None:
    lua = get_language("lua")
    stage = tmp_path / "stage"
    stage.mkdir()
    image = tmp_path / "images" / "lua-1.sif"
    sandbox = Apptainer(image_for=lambda language: image)
    unset = [part for variable in APPTAINER_BIND_VARIABLES for part in ("-u", variable)]
    assert sandbox.command(lua, stage) == [
        "env",
        *unset,
        "apptainer",
        "exec",
        "--containall",
        "--cleanenv",
        "--no-home",
        "--no-mount",
        "bind-paths,cwd,hostfs",
        "--net",
        "--network",
        "none",
        "--workdir",
        f"{stage}/work",
        "--bind",
        f"{stage}:{STAGE_MOUNT}:ro",
        "--pwd",
        "/tmp",
        str(image),
        "python3",
        f"{STAGE_MOUNT}/runner.py",
    ]
    assert set(APPTAINER_BIND_VARIABLES) == {
        "APPTAINER_BIND",
        "APPTAINER_BINDPATH",
        "SINGULARITY_BIND",
        "SINGULARITY_BINDPATH",
    }
    assert (stage / "work").is_dir()  # /tmp of the container, removed with the stage
    assert sandbox.runtime_path(stage) == STAGE_MOUNT
    assert sandbox.preexec() is None


def test_apptainer_refuses_a_stage_path_that_breaks_the_bind_spec(tmp_path: Path) -> None:
    sandbox = Apptainer(image_for=lambda language: tmp_path / "lua-1.sif")
    for name in ("a:b", "a,b"):
        stage = tmp_path / name
        stage.mkdir()
        with pytest.raises(SandboxError):
            sandbox.command(get_language("lua"), stage)


def test_images_are_named_by_language_and_configured_version(tmp_path: Path) -> None:
    sandbox = make_sandbox("apptainer", tmp_path, {"lua": "7"})
    assert isinstance(sandbox, Apptainer)
    assert sandbox.image_for(get_language("lua")) == tmp_path / "lua-7.sif"
    assert sandbox.image_for(get_language("ml")) == tmp_path / "ml-1.sif"
    assert not sandbox.available(get_language("lua"))  # no image (and maybe no apptainer)


def test_build_rule_names_the_images_the_engine_looks_for() -> None:
    """`snakemake containers` builds exactly the files make_sandbox's images are called."""
    run = snakemake(REPO, "-n", "--forceall", "containers")
    assert run.returncode == 0, run.stderr[-3000:]
    planned = set(re.findall(r"^\s*output: (\S+\.sif)$", run.stdout, re.MULTILINE))
    image_dir = Path(CONFIG["containers"]["image_dir"])
    sandbox = make_sandbox("apptainer", image_dir, CONFIG["containers"]["versions"])
    assert isinstance(sandbox, Apptainer)
    expected = {str(sandbox.image_for(get_language(lang))) for lang in {"py", *CONFIG["languages"]}}
    assert planned == expected, run.stdout[-3000:]


def test_build_rule_passes_lint() -> None:
    run = snakemake(REPO, "-n", "--lint", "text")
    report = run.stdout + run.stderr
    assert run.returncode == 0, report[-3000:]  # the workflow parses (lints alone exit 0)
    blocks = re.split(r"\n(?=Lints for )", report)
    ours = [
        block
        for block in blocks
        if block.startswith("Lints for")
        and (
            "containers.smk" in block.splitlines()[0]
            or re.match(r"Lints for rule (build_container|containers) ", block)
        )
    ]
    assert not ours, "\n".join(ours)


FAKE_APPTAINER = textwrap.dedent(
    """\
    #!{python}
    # Stand-in for `apptainer exec`: records how it was called, then runs the command on
    # the host with the staged runner's bind applied. No isolation: trusted programs only.
    import json, os, sys

    args = sys.argv[1:]
    with open(os.environ["FAKE_APPTAINER_LOG"], "w") as log:
        json.dump({{"args": args, "environ": dict(os.environ)}}, log)
    assert args[0] == "exec", args
    source, target, mode = args[args.index("--bind") + 1].split(":")
    assert mode == "ro" and os.path.isdir(args[args.index("--workdir") + 1])
    image = next(i for i, arg in enumerate(args) if arg.endswith(".sif"))
    command = [arg.replace(target, source, 1) for arg in args[image + 1 :]]
    os.execvp(command[0], command)
    """
)


def test_engine_runs_a_batch_through_the_apptainer_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Engine, staging, runner path and bind mapping, with a stand-in for `apptainer`."""
    lua = get_language("lua")
    if not lua.is_available():
        pytest.skip("lua5.3 is not installed (the stand-in runs programs on the host)")
    fake = tmp_path / "bin" / "apptainer"
    fake.parent.mkdir()
    fake.write_text(FAKE_APPTAINER.format(python=sys.executable))
    fake.chmod(0o755)
    image_dir = tmp_path / "images"
    image_dir.mkdir()
    (image_dir / "lua-1.sif").write_bytes(b"")
    log = tmp_path / "apptainer.json"
    monkeypatch.setenv("FAKE_APPTAINER_LOG", str(log))
    monkeypatch.setenv("APPTAINER_BIND", "/should/not/reach/the/container")
    monkeypatch.setenv("SINGULARITY_BINDPATH", "/nor/this")
    sandbox = make_sandbox("apptainer", image_dir, {"lua": "1"})
    assert isinstance(sandbox, Apptainer)
    sandbox.executable = str(fake)
    engine = ExecutionEngine(sandbox=sandbox, workers=2, limits=Limits(timeout_s=3))
    programs = {
        "pass": ("assert(1 + 1 == 2)\nprint('ok')\n", Status.OK),
        "raise": ("error('boom')\n", Status.EXCEPTION),
        "syntax": ("local x = = 1\n", Status.SYNTAX_ERROR),
    }
    results = engine.run(lua, [Program(key, source) for key, (source, _) in programs.items()])
    for key, (_, status) in programs.items():
        assert results[key].status is status, results[key]
    call = json.loads(log.read_text())
    assert str(image_dir / "lua-1.sif") in call["args"]
    assert not set(APPTAINER_BIND_VARIABLES) & set(call["environ"])


# --- 3. real Apptainer -----------------------------------------------------------------------


@pytest.fixture(scope="session")
def apptainer_images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory with the Lua image: $MULTIPLT_IMAGE_DIR's, or one built now."""
    if shutil.which("apptainer") is None:
        pytest.skip(
            "`apptainer` is not on PATH (the development machines have none and cannot "
            "install it); the Apptainer sandbox is tested only where Apptainer is present"
        )
    name = f"lua-{image_version('lua')}.sif"
    prebuilt = os.environ.get("MULTIPLT_IMAGE_DIR")
    if prebuilt:
        directory = Path(prebuilt)
        if not (directory / name).is_file():
            pytest.fail(f"MULTIPLT_IMAGE_DIR={prebuilt} has no {name}")
        return directory
    directory = tmp_path_factory.mktemp("images")
    build = subprocess.run(
        ["apptainer", "build", "--fakeroot", str(directory / name), str(definition("lua"))],
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert build.returncode == 0, f"building {name} failed:\n{build.stdout[-3000:]}"
    return directory


def test_lua_batch_in_a_real_apptainer_container(apptainer_images: Path) -> None:
    lua = get_language("lua")
    sandbox = make_sandbox("apptainer", apptainer_images, CONFIG["containers"]["versions"])
    assert sandbox.available(lua)
    secret = Path.home() / f".multiplt-apptainer-secret-{uuid.uuid4().hex}"
    secret.write_text("token-that-must-not-leak")
    probe = textwrap.dedent(
        f"""\
        assert(io.open("{secret}") == nil, "home is visible")
        assert(io.open("{STAGE_MOUNT}/written", "w") == nil, "the stage is writable")
        local lu = require("luaunit")
        lu.assertEquals(_VERSION, "Lua 5.3")
        print("contained")
        """
    )
    # The same outcomes as under bubblewrap, plus what the container must hide.
    programs = {**OUTCOME_CASES["lua"], "contained": (probe, Status.OK)}
    engine = ExecutionEngine(sandbox=sandbox, workers=2, limits=Limits(timeout_s=3))
    try:
        results = engine.run(lua, [Program(key, source) for key, (source, _) in programs.items()])
    finally:
        secret.unlink()
    for key, (_, status) in programs.items():
        assert results[key].status is status, results[key]
    assert "contained" in results["contained"].stdout


@pytest.mark.parametrize("lang", LANGUAGE_NAMES)
def test_prebuilt_image_runs_its_language(lang: str) -> None:
    """With $MULTIPLT_IMAGE_DIR, every image there runs a passing program of its language."""
    directory = os.environ.get("MULTIPLT_IMAGE_DIR")
    if shutil.which("apptainer") is None or not directory:
        pytest.skip("needs `apptainer` on PATH and prebuilt images in $MULTIPLT_IMAGE_DIR")
    language: Language = get_language(lang)
    sandbox = make_sandbox("apptainer", Path(directory), CONFIG["containers"]["versions"])
    if not sandbox.available(language):
        pytest.skip(f"no {lang}-{image_version(lang)}.sif in {directory}")
    passing, _ = OUTCOME_CASES[lang]["pass"]
    engine = ExecutionEngine(sandbox=sandbox, workers=1, limits=Limits(timeout_s=30))
    result = engine.run(language, [Program("hello", passing)])["hello"]
    assert result.status is Status.OK, result

"""Where a batch runs: the command that starts the runner inside an isolation boundary.

* :class:`Bubblewrap` (local default): no network, read-only system, private ``/tmp``,
  no home directory, new pid/ipc/uts/user namespaces; no root needed.
* :class:`Apptainer` (clusters): the language's image with ``--containall`` and no network.
* :class:`UnsafeNoSandbox`: the runner straight on the host, for debugging only, behind the
  loudly named ``--unsafe-no-sandbox`` option.

Each sandbox starts ``runner.py`` from a staging directory that holds copies of the runner
and the warm-runtime scripts, so the sandbox never needs to see the package's install
location (which may sit under a home directory).
"""

from __future__ import annotations

import os
import pwd
import shutil
import sys
import tempfile
import warnings
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from multiplt.languages import Language

STAGE_MOUNT = "/opt/multiplt"
# Root cannot be held to a process limit (the kernel exempts it), so as root the sandbox
# drops to this unprivileged account.
UNPRIVILEGED_USER = "nobody"


class SandboxError(RuntimeError):
    """The sandbox could not be started or died before finishing its batch."""


def stage_runtime_files() -> Path:
    """A world-readable temporary copy of the runner and the warm-runtime scripts."""
    stage = Path(tempfile.mkdtemp(prefix="multiplt-stage-"))
    stage.chmod(0o755)
    package = resources.files("multiplt.execution")
    shutil.copyfile(str(package / "runner.py"), stage / "runner.py")
    warm_dir = stage / "warm"
    warm_dir.mkdir()
    for entry in (package / "warm").iterdir():
        if entry.is_file():
            shutil.copyfile(str(entry), warm_dir / entry.name)
    for path in [stage / "runner.py", *warm_dir.iterdir()]:
        path.chmod(0o644)
    warm_dir.chmod(0o755)
    return stage


def drop_privileges_if_root() -> Callable[[], None] | None:
    """A ``preexec_fn`` that switches root to an unprivileged user, or None if not root."""
    if os.geteuid() != 0:
        return None
    account = pwd.getpwnam(UNPRIVILEGED_USER)

    def drop() -> None:
        os.setgroups([])
        os.setgid(account.pw_gid)
        os.setuid(account.pw_uid)

    return drop


class Sandbox(ABC):
    """Builds the command line that runs the batch runner for one language."""

    name: str

    @abstractmethod
    def command(self, language: Language, stage: Path) -> list[str]:
        """argv that starts ``runner.py`` (found at ``stage``) inside the sandbox."""

    def runtime_path(self, stage: Path) -> str:
        """Where the staged files appear inside the sandbox."""
        return STAGE_MOUNT

    def available(self, language: Language) -> bool:
        """Whether this sandbox can run ``language`` on this machine."""
        return True

    def preexec(self) -> Callable[[], None] | None:
        return drop_privileges_if_root()


@dataclass
class Bubblewrap(Sandbox):
    """bubblewrap with the host's own runtimes, seen read-only."""

    python: str = "/usr/bin/python3"
    name: str = "bubblewrap"

    def available(self, language: Language) -> bool:
        return shutil.which("bwrap") is not None and language.is_available()

    def command(self, language: Language, stage: Path) -> list[str]:
        argv = ["bwrap", "--unshare-all", "--die-with-parent", "--new-session"]
        argv += ["--cap-drop", "ALL", "--hostname", "sandbox", "--clearenv"]
        argv += ["--ro-bind", "/usr", "/usr", "--ro-bind", "/etc", "/etc"]
        # Merged-/usr systems link /bin and /lib into /usr; others have real directories.
        for directory in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
            path = Path(directory)
            if path.is_symlink():
                argv += ["--symlink", os.readlink(path), directory]
            elif path.is_dir():
                argv += ["--ro-bind", directory, directory]
        argv += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "--tmpfs", "/var/tmp"]
        argv += ["--ro-bind", str(stage), STAGE_MOUNT, "--chdir", "/tmp"]
        argv += ["--setenv", "PATH", "/usr/local/bin:/usr/bin:/bin"]
        argv += ["--setenv", "LANG", "C.UTF-8", "--setenv", "HOME", "/tmp"]
        argv += [self.python, f"{STAGE_MOUNT}/runner.py"]
        return argv


# Environment variables through which a site module or the user's shell adds bind mounts to
# every container; ``--no-mount bind-paths`` does not cover them, so they are unset instead.
APPTAINER_BIND_VARIABLES = (
    "APPTAINER_BIND",
    "APPTAINER_BINDPATH",
    "SINGULARITY_BIND",
    "SINGULARITY_BINDPATH",
)


@dataclass
class Apptainer(Sandbox):
    """One Apptainer image per language, built from ``containers/<language>.def``.

    The container sees its own image, the staged runner (read-only) and a private ``/tmp``
    and nothing else of the host: ``--containall`` (own pid and ipc namespaces, minimal
    ``/dev``, no host ``/tmp`` or home), ``--no-home``, ``--no-mount`` for the site's
    ``bind path`` entries, the working directory and host file systems, and no network.
    ``/tmp`` and ``/var/tmp`` live in ``<stage>/work`` on the host disk (``--workdir``)
    rather than in Apptainer's session tmpfs, which is 64 MiB by default: warm runtimes
    write programs' output there, and one runaway program must not fill it for the rest of
    its batch. The engine deletes the stage, work directory included, after the batch.
    """

    image_for: Callable[[Language], Path]
    executable: str = "apptainer"
    name: str = "apptainer"

    def available(self, language: Language) -> bool:
        return shutil.which(self.executable) is not None and self.image_for(language).exists()

    def command(self, language: Language, stage: Path) -> list[str]:
        if any(separator in str(stage) for separator in ",:"):
            # Both separate the parts of a --bind specification.
            raise SandboxError(f"cannot bind {stage} into a container: its path has ',' or ':'")
        workdir = stage / "work"
        workdir.mkdir(mode=0o700, exist_ok=True)
        argv = ["env"]
        for variable in APPTAINER_BIND_VARIABLES:
            argv += ["-u", variable]
        return [
            *argv,
            self.executable,
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
            str(workdir),
            "--bind",
            f"{stage}:{STAGE_MOUNT}:ro",
            "--pwd",
            "/tmp",
            str(self.image_for(language)),
            "python3",
            f"{STAGE_MOUNT}/runner.py",
        ]

    def preexec(self) -> Callable[[], None] | None:
        # Apptainer refuses to run setuid-root helpers for a switched user; cluster jobs never
        # run as root anyway.
        return None


@dataclass
class UnsafeNoSandbox(Sandbox):
    """Runs generated code directly on the host. Only for debugging the runner itself."""

    name: str = "UNSAFE-no-sandbox"

    def __post_init__(self) -> None:
        warnings.warn(
            "running untrusted generated code WITHOUT a sandbox (--unsafe-no-sandbox)",
            stacklevel=2,
        )

    def available(self, language: Language) -> bool:
        return language.is_available()

    def runtime_path(self, stage: Path) -> str:
        return str(stage)

    def command(self, language: Language, stage: Path) -> list[str]:
        return [sys.executable, str(stage / "runner.py")]


def make_sandbox(
    kind: str, image_dir: Path | None = None, image_versions: dict[str, str] | None = None
) -> Sandbox:
    """The sandbox named ``kind`` ("bubblewrap", "apptainer" or "UNSAFE-no-sandbox").

    Apptainer images are ``<image_dir>/<language>-<version>.sif``, so that bumping a
    version in the config names a new image and reruns whatever used the old one.
    """
    if kind == "bubblewrap":
        return Bubblewrap()
    if kind == "apptainer":
        if image_dir is None:
            raise ValueError("the apptainer sandbox needs an image directory")
        directory, versions = image_dir, image_versions or {}
        return Apptainer(
            image_for=lambda lang: (
                directory / f"{lang.container}-{versions.get(lang.name, '1')}.sif"
            )
        )
    if kind == UnsafeNoSandbox.name:
        return UnsafeNoSandbox()
    raise ValueError(f"unknown sandbox {kind!r}; use bubblewrap, apptainer or UNSAFE-no-sandbox")

"""The pyright filter: a function is kept only if it type-checks alone, with no error.

Checking a function on its own is what drops code that needs names from its module or
packages outside the standard library (DESIGN.md §1). Pyright's start-up (loading the
standard library's stubs) costs far more than one function, so functions are checked in
batches: one file per function in a temporary project, one ``--outputjson`` run per batch,
several batches at a time. The project sees an empty virtual environment, so the outcome does
not depend on what happens to be installed where the shard runs.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from multiplt.source.records import PythonFunction

# pyright's exit codes with a usable report: 0 = no errors, 1 = errors found.
_REPORTED = (0, 1)


class CheckerMissingError(RuntimeError):
    """The configured checker is not installed."""


class CheckerFailedError(RuntimeError):
    """One checker run gave no report (crash, timeout, unreadable output)."""


@dataclass(frozen=True)
class TypecheckSettings:
    # ``basedpyright`` (PyPI, bundles its own Node) or ``pyright``; a name on PATH or a path.
    checker: str = "basedpyright"
    # pyright's ``typeCheckingMode``; ``standard`` is pyright's default, as in the paper.
    mode: str = "standard"
    python_version: str = "3.11"
    batch_size: int = 500
    # Checker processes run at once.
    workers: int = 1
    timeout_s: float = 900.0


@dataclass
class TypecheckOutcome:
    """Ids of functions that passed; the first error of each that did not."""

    passed: set[str] = field(default_factory=set)
    errors: dict[str, str] = field(default_factory=dict)
    # Functions the checker could not check even alone (dropped, counted apart).
    checker_failures: int = 0

    def absorb(self, other: TypecheckOutcome) -> None:
        self.passed |= other.passed
        self.errors.update(other.errors)
        self.checker_failures += other.checker_failures


def project_config(settings: TypecheckSettings, venvs: Path) -> dict[str, Any]:
    return {
        "typeCheckingMode": settings.mode,
        "pythonVersion": settings.python_version,
        "venvPath": str(venvs),
        "venv": "empty",
        # A third-party import whose stubs pyright bundles (yaml, requests) is only a warning
        # by default; the function still could not run in the test sandbox, so it is an error.
        "reportMissingModuleSource": "error",
    }


def make_empty_venv(directory: Path, python_version: str) -> Path:
    """A virtual environment with no packages, for pyright to resolve imports against.

    pyright looks for ``lib/python3.X/site-packages``; without one it falls back to asking the
    Python on PATH for its search paths, which is exactly what must not happen.
    """
    venv = directory / "empty"
    (venv / "lib" / f"python{python_version}" / "site-packages").mkdir(parents=True, exist_ok=True)
    (venv / "pyvenv.cfg").write_text("home = /nonexistent\n", encoding="utf-8")
    return directory


class TypeChecker:
    def __init__(self, settings: TypecheckSettings) -> None:
        self.settings = settings
        # Beside this interpreter too: a virtual environment's tools when it is not activated.
        executable = shutil.which(settings.checker) or shutil.which(
            settings.checker, path=str(Path(sys.executable).parent)
        )
        if executable is None:
            raise CheckerMissingError(
                f"type checker {settings.checker!r} not found on PATH; "
                "install it with `pip install basedpyright` (or set source.typecheck.checker)"
            )
        self.executable = executable

    def check(self, functions: Sequence[PythonFunction]) -> TypecheckOutcome:
        """Check every function, ``batch_size`` per run, ``workers`` runs at a time."""
        size = self.settings.batch_size
        batches = [functions[start : start + size] for start in range(0, len(functions), size)]
        outcome = TypecheckOutcome()
        with tempfile.TemporaryDirectory(prefix="multiplt-pyright-") as scratch:
            venvs = make_empty_venv(Path(scratch) / "venvs", self.settings.python_version)
            with ThreadPoolExecutor(max_workers=self.settings.workers) as pool:
                for result in pool.map(lambda batch: self._check_or_split(batch, venvs), batches):
                    outcome.absorb(result)
        return outcome

    def _check_or_split(self, batch: Sequence[PythonFunction], venvs: Path) -> TypecheckOutcome:
        """A failed run is retried in halves, so one function that crashes or hangs the checker
        costs that function alone, not its whole batch."""
        try:
            return self._run_batch(batch, venvs)
        except CheckerFailedError as error:
            if len(batch) == 1:
                only = batch[0].id
                return TypecheckOutcome(errors={only: str(error)}, checker_failures=1)
            half = len(batch) // 2
            outcome = self._check_or_split(batch[:half], venvs)
            outcome.absorb(self._check_or_split(batch[half:], venvs))
            return outcome

    def _run_batch(self, batch: Sequence[PythonFunction], venvs: Path) -> TypecheckOutcome:
        with tempfile.TemporaryDirectory(prefix="batch-", dir=venvs.parent) as directory:
            project = Path(directory)
            config = project / "pyrightconfig.json"
            config.write_text(json.dumps(project_config(self.settings, venvs)), encoding="utf-8")
            ids_by_file: dict[str, str] = {}
            for index, function in enumerate(batch):
                file_name = f"f{index:06d}.py"
                (project / file_name).write_text(function.code, encoding="utf-8")
                ids_by_file[file_name] = function.id
            report = self._run_checker(project, config)
        return outcome_from_report(report, ids_by_file)

    def _run_checker(self, project: Path, config: Path) -> dict[str, Any]:
        command = [self.executable, "--outputjson", "-p", str(config)]
        try:
            completed = subprocess.run(
                command,
                cwd=project,
                capture_output=True,
                text=True,
                timeout=self.settings.timeout_s,
                check=False,
            )
        except subprocess.TimeoutExpired as error:
            raise CheckerFailedError(f"timed out after {self.settings.timeout_s} s") from error
        if completed.returncode not in _REPORTED:
            message = (completed.stderr or completed.stdout).strip()[-500:]
            raise CheckerFailedError(f"exit code {completed.returncode}: {message}")
        try:
            report: dict[str, Any] = json.loads(completed.stdout)
        except json.JSONDecodeError as error:
            raise CheckerFailedError(f"unreadable report: {error}") from error
        return report


def outcome_from_report(report: dict[str, Any], ids_by_file: dict[str, str]) -> TypecheckOutcome:
    errors: dict[str, str] = {}
    for diagnostic in report.get("generalDiagnostics", []):
        if diagnostic.get("severity") != "error":
            continue
        function_id = ids_by_file.get(Path(diagnostic.get("file", "")).name)
        if function_id is not None and function_id not in errors:
            rule = diagnostic.get("rule", "")
            errors[function_id] = f"{rule}: {diagnostic.get('message', '')}".strip(": ")
    passed = set(ids_by_file.values()) - errors.keys()
    return TypecheckOutcome(passed=passed, errors=errors)

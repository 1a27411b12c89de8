"""What the workflow needs to know about one programming language.

Every language-specific fact lives in that language's module as one :class:`Language` value;
the rest of the package looks languages up by name and never branches on them.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from multiplt.execution.results import RunOutcome, Status

Classifier = Callable[[RunOutcome], Status]
Problem = dict[str, Any]
# Mends a known defect of a benchmark's problems in this language; returns the problem
# unchanged when there is nothing to mend.
ProblemRepair = Callable[[Problem], Problem]


@dataclass(frozen=True)
class WarmRuntime:
    """A long-lived runtime process that runs many programs, each in a fresh isolated context.

    ``script`` names a file in ``multiplt/execution/warm/``; ``command`` starts the server with
    ``{script}`` replaced by that file's path inside the sandbox. The server speaks the line
    protocol documented in ``multiplt/execution/runner.py``.
    """

    script: str
    command: tuple[str, ...]


@dataclass(frozen=True)
class Language:
    """A language the execution engine can run.

    ``name`` is MultiPL-E's short name (``lua``, ``jl``, ``ml``, ``r``, ``rkt``, ``py``).
    ``run_command`` has ``{file}`` where the program's path goes.
    """

    name: str
    display_name: str
    file_suffix: str
    run_command: tuple[str, ...]
    classify: Classifier
    timeout_s: float = 15.0
    aliases: tuple[str, ...] = ()
    # Stop sequences used when a prompt carries none (MultiPL-E problems carry their own).
    stop_tokens: tuple[str, ...] = ()
    warm_runtime: WarmRuntime | None = None
    # The runtime writes a byte to the fd named by $MULTIPLT_READY_FD once started, and its
    # timeout starts only then (Julia's start-up).
    signals_ready: bool = False
    # Runtimes that reserve huge virtual address space at start (Julia) cannot run under
    # RLIMIT_AS; they get RLIMIT_DATA instead.
    limit_address_space: bool = True
    # Extra environment for the runtime inside the sandbox.
    environment: tuple[tuple[str, str], ...] = field(default_factory=tuple)
    # Known defects of MultiPL-E's problems in this language, mended when they are loaded.
    repairs: tuple[ProblemRepair, ...] = ()

    def repair(self, problem: Problem) -> Problem:
        for mend in self.repairs:
            problem = mend(problem)
        return problem

    @property
    def executable(self) -> str:
        return self.run_command[0]

    @property
    def container(self) -> str:
        """Name of this language's definition in ``containers/`` (without ``.def``)."""
        return self.name

    def is_available(self) -> bool:
        """Whether this machine has the runtime (for local, bubblewrap runs)."""
        return shutil.which(self.executable) is not None

    def command_for(self, program_path: str | Path) -> list[str]:
        return [part.replace("{file}", str(program_path)) for part in self.run_command]


def first_match(text: str, patterns: Sequence[tuple[str, Status]]) -> Status | None:
    """The status of the first pattern found in ``text``, if any."""
    for needle, status in patterns:
        if needle in text:
            return status
    return None


def classify_exit(
    outcome: RunOutcome,
    error_patterns: Sequence[tuple[str, Status]] = (),
    fail_on_stderr: bool = False,
) -> Status:
    """The usual classification: timeout, then exit code, then what stderr says.

    ``fail_on_stderr`` is for runtimes whose test libraries report failures without a
    non-zero exit code (rackunit).
    """
    if outcome.timed_out:
        return Status.TIMEOUT
    failed = outcome.exit_code != 0 or (fail_on_stderr and outcome.stderr != "")
    if not failed:
        return Status.OK
    return first_match(outcome.stderr, error_patterns) or Status.EXCEPTION

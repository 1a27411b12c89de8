"""Outcomes of running one program, in MultiPL-E's result vocabulary."""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass
from typing import Any


class Status(enum.StrEnum):
    """MultiPL-E's statuses; a sample passes only with ``OK`` and exit code 0."""

    OK = "OK"
    EXCEPTION = "Exception"
    ASSERTION_ERROR = "AssertionError"
    SYNTAX_ERROR = "SyntaxError"
    TIMEOUT = "Timeout"


@dataclass(frozen=True)
class Program:
    """One program to run: ``key`` identifies it across restarts of a batch."""

    key: str
    source: str


@dataclass(frozen=True)
class RunOutcome:
    """What the sandboxed runner observed, before a language classifies it."""

    key: str
    exit_code: int
    stdout: str
    stderr: str
    timed_out: bool
    duration_s: float
    # Why the runner stopped the program early, if it did ("output", "startup").
    killed_for: str | None = None

    @classmethod
    def from_json(cls, record: dict[str, Any]) -> RunOutcome:
        return cls(
            key=str(record["key"]),
            exit_code=int(record["exit_code"]),
            stdout=str(record["stdout"]),
            stderr=str(record["stderr"]),
            timed_out=bool(record["timed_out"]),
            duration_s=float(record["duration_s"]),
            killed_for=record.get("killed_for"),
        )


@dataclass(frozen=True)
class ExecutionResult:
    """A classified outcome: one entry of a MultiPL-E ``results`` list, plus its key."""

    key: str
    program: str
    status: Status
    exit_code: int
    stdout: str
    stderr: str
    duration_s: float

    @property
    def passed(self) -> bool:
        return self.status is Status.OK and self.exit_code == 0

    def to_multipl_e(self) -> dict[str, Any]:
        """The record MultiPL-E keeps in ``results``: program, stdout, stderr, exit_code, status."""
        return {
            "program": self.program,
            "stdout": self.stdout,
            "stderr": self.stderr,
            "exit_code": self.exit_code,
            "status": self.status.value,
        }

    def to_json(self) -> dict[str, Any]:
        record = asdict(self)
        record["status"] = self.status.value
        return record

    @classmethod
    def from_json(cls, record: dict[str, Any]) -> ExecutionResult:
        return cls(
            key=str(record["key"]),
            program=str(record["program"]),
            status=Status(record["status"]),
            exit_code=int(record["exit_code"]),
            stdout=str(record["stdout"]),
            stderr=str(record["stderr"]),
            duration_s=float(record["duration_s"]),
        )

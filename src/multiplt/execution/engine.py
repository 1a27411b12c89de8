"""The execution engine: runs a batch of programs of one language in one sandbox.

Every stage that runs code goes through :meth:`ExecutionEngine.run` — Python functions
under generated asserts, translations under translated tests, benchmark completions under
MultiPL-E's tests. Results are appended to a checkpoint file as they arrive, so a batch
that is killed and restarted runs only the programs that have no result yet.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from tqdm import tqdm

from multiplt.execution.limits import Limits
from multiplt.execution.results import ExecutionResult, Program, RunOutcome
from multiplt.execution.sandbox import Bubblewrap, Sandbox, SandboxError, stage_runtime_files
from multiplt.languages import Language


def read_checkpoint(path: Path) -> dict[str, ExecutionResult]:
    """Results already recorded at ``path``; a line cut short by a crash is ignored."""
    done: dict[str, ExecutionResult] = {}
    if not path.exists():
        return done
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            try:
                result = ExecutionResult.from_json(json.loads(line))
            except (json.JSONDecodeError, KeyError, ValueError):
                continue  # only the last line can be partial; it is rerun
            done[result.key] = result
    return done


@dataclass
class ExecutionEngine:
    """Runs programs in a sandbox with ``workers`` parallel workers.

    ``warm`` lets languages with a warm runtime (R, Racket) reuse one runtime process per
    worker; each program still runs in fresh interpreter state (see ``runner.py``).
    """

    sandbox: Sandbox = field(default_factory=Bubblewrap)
    workers: int = field(default_factory=lambda: os.cpu_count() or 1)
    limits: Limits = field(default_factory=Limits)
    warm: bool = True
    timeouts: dict[str, float] = field(default_factory=dict)
    progress: bool = False

    def timeout_for(self, language: Language) -> float:
        if self.limits.timeout_s is not None:
            return self.limits.timeout_s
        return self.timeouts.get(language.name, language.timeout_s)

    def run(
        self,
        language: Language,
        programs: Iterable[Program],
        checkpoint: Path | None = None,
    ) -> dict[str, ExecutionResult]:
        """Results of ``programs`` by key; with ``checkpoint``, resumes a killed batch."""
        unique = {program.key: program for program in programs}
        done = read_checkpoint(checkpoint) if checkpoint else {}
        pending = [program for key, program in unique.items() if key not in done]
        if pending:
            with _CheckpointWriter(checkpoint) as writer:
                for result in self._run_in_sandbox(language, pending):
                    writer.write(result)
                    done[result.key] = result
        return {key: done[key] for key in unique}

    def _header(self, language: Language, runtime_path: str) -> dict[str, Any]:
        warm = language.warm_runtime if self.warm else None
        warm_command = None
        if warm is not None:
            script = f"{runtime_path}/warm/{warm.script}"
            warm_command = [part.replace("{script}", script) for part in warm.command]
        return {
            "command": list(language.run_command),
            "suffix": language.file_suffix,
            "workers": self.workers,
            "timeout_s": self.timeout_for(language),
            "limits": self.limits.to_json(),
            "environment": dict(language.environment),
            "signals_ready": language.signals_ready,
            "limit_address_space": language.limit_address_space,
            "warm_command": warm_command,
        }

    def _run_in_sandbox(
        self, language: Language, programs: Sequence[Program]
    ) -> Iterator[ExecutionResult]:
        if not self.sandbox.available(language):
            raise SandboxError(
                f"{self.sandbox.name} cannot run {language.display_name} on this machine "
                f"(is `{language.executable}` installed, or its image built?)"
            )
        stage = stage_runtime_files()
        sources = {program.key: program.source for program in programs}
        try:
            with tempfile.TemporaryFile() as errors:
                process = subprocess.Popen(
                    self.sandbox.command(language, stage),
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=errors,
                    preexec_fn=self.sandbox.preexec(),
                )
                header = self._header(language, self.sandbox.runtime_path(stage))
                feeder = threading.Thread(
                    target=_feed, args=(process.stdin, header, programs), daemon=True
                )
                feeder.start()
                yield from self._read_results(language, process, sources, errors)
                feeder.join()
        finally:
            shutil.rmtree(stage, ignore_errors=True)

    def _read_results(
        self,
        language: Language,
        process: subprocess.Popen[bytes],
        sources: dict[str, str],
        errors: IO[bytes],
    ) -> Iterator[ExecutionResult]:
        assert process.stdout is not None
        remaining = set(sources)
        watchdog = _Watchdog(process, self._silence_limit(language))
        bar = tqdm(
            total=len(sources), desc=f"run {language.name}", unit="prog", disable=not self.progress
        )
        try:
            for line in process.stdout:
                outcome = RunOutcome.from_json(json.loads(line))
                remaining.discard(outcome.key)
                watchdog.progress()
                bar.update(1)
                yield ExecutionResult(
                    key=outcome.key,
                    program=sources[outcome.key],
                    status=language.classify(outcome),
                    exit_code=outcome.exit_code,
                    stdout=outcome.stdout,
                    stderr=outcome.stderr,
                    duration_s=outcome.duration_s,
                )
        finally:
            watchdog.stop()
            bar.close()
            if process.poll() is None:
                process.kill()
            process.wait()
        if remaining:
            errors.seek(0)
            tail = errors.read()[-4000:].decode("utf-8", errors="replace")
            stalled = " (stalled: no result for too long, killed)" if watchdog.fired else ""
            raise SandboxError(
                f"the {self.sandbox.name} sandbox exited with code {process.returncode}{stalled} "
                f"before running {len(remaining)} of {len(sources)} programs; rerun to resume:\n"
                f"{tail}"
            )

    def _silence_limit(self, language: Language) -> float:
        """How long a batch may go without a result before it is declared stuck."""
        startup = self.limits.startup_timeout_s
        return self.timeout_for(language) + startup + 60.0


def _feed(stdin: IO[bytes] | None, header: dict[str, Any], programs: Sequence[Program]) -> None:
    assert stdin is not None
    try:
        stdin.write((json.dumps(header) + "\n").encode())
        for program in programs:
            stdin.write(
                (json.dumps({"key": program.key, "source": program.source}) + "\n").encode()
            )
        stdin.close()
    except BrokenPipeError:
        pass  # the sandbox died; the reader reports it


class _Watchdog:
    """Kills a sandbox that has produced no result for ``limit`` seconds.

    Every program has a timeout inside the sandbox, so silence this long means the runner
    itself is stuck (say, a worker process was killed under it); the results so far are in
    the checkpoint, and a rerun resumes.
    """

    def __init__(self, process: subprocess.Popen[bytes], limit: float) -> None:
        self.process = process
        self.limit = limit
        self.last = time.monotonic()
        self.fired = False
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._watch, daemon=True)
        self.thread.start()

    def progress(self) -> None:
        self.last = time.monotonic()

    def _watch(self) -> None:
        while not self.done.wait(1.0):
            if time.monotonic() - self.last > self.limit:
                self.fired = True
                self.process.kill()
                return

    def stop(self) -> None:
        self.done.set()
        self.thread.join()


def _last_byte(path: Path) -> bytes:
    """The file's last byte, without reading a checkpoint of a large batch whole again."""
    with path.open("rb") as handle:
        handle.seek(-1, os.SEEK_END)
        return handle.read(1)


class _CheckpointWriter:
    """Appends results as JSON lines, flushed one by one so a kill loses at most one line."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.handle: IO[str] | None = None

    def __enter__(self) -> _CheckpointWriter:
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.handle = self.path.open("a", encoding="utf-8")
            if self.handle.tell() > 0 and _last_byte(self.path) != b"\n":
                self.handle.write("\n")  # end the line a crash cut short
        return self

    def write(self, result: ExecutionResult) -> None:
        if self.handle is not None:
            self.handle.write(json.dumps(result.to_json()) + "\n")
            self.handle.flush()

    def __exit__(self, *exc_info: object) -> None:
        if self.handle is not None:
            self.handle.flush()
            os.fsync(self.handle.fileno())
            self.handle.close()

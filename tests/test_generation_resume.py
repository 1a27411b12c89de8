"""Resumable sampling: a killed job restarted samples only what is missing, never twice."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from multiplt.generation.checkpoint import (
    CheckpointMismatchError,
    GenerationError,
    generate_to_jsonl,
)
from multiplt.generation.params import Generation, GenerationRequest, SamplingParams
from tests.conftest import MULTIPL_E, REPO
from tests.test_generation import shared_tiny_model


@dataclass
class ScriptedBackend:
    """Answers ``key-i`` for each sample; can crash after ``crash_after`` items."""

    crash_after: int | None = None
    short_by: int = 0
    asked: list[str] = field(default_factory=list)
    name: str = "scripted"

    def generate(self, requests: Iterable[GenerationRequest]) -> Iterator[Generation]:
        for count, request in enumerate(requests):
            if count == self.crash_after:
                raise RuntimeError("killed")
            self.asked.append(request.key)
            samples = request.params.n - self.short_by
            yield Generation(request.key, [f"{request.key}-{i}" for i in range(samples)], 5)


def make_requests(count: int, n: int = 2) -> list[GenerationRequest]:
    return [GenerationRequest(f"p{i}", f"prompt {i}\n", SamplingParams(n=n)) for i in range(count)]


def checkpoint_keys(path: Path) -> list[str]:
    return [json.loads(line)["key"] for line in path.read_text().splitlines()]


def test_a_crashed_run_resumes_with_only_the_missing_items(tmp_path: Path) -> None:
    checkpoint = tmp_path / "run.jsonl"
    work = make_requests(6)
    with pytest.raises(RuntimeError, match="killed"):
        generate_to_jsonl(ScriptedBackend(crash_after=4), work, checkpoint, progress=False)
    assert checkpoint_keys(checkpoint) == ["p0", "p1", "p2", "p3"]
    second = ScriptedBackend()
    results = generate_to_jsonl(second, work, checkpoint, progress=False)
    assert second.asked == ["p4", "p5"]
    assert checkpoint_keys(checkpoint) == [f"p{i}" for i in range(6)]
    assert results["p0"].completions == ["p0-0", "p0-1"]
    third = ScriptedBackend()
    generate_to_jsonl(third, work, checkpoint, progress=False)
    assert third.asked == []


def test_a_line_cut_short_by_a_kill_is_sampled_again(tmp_path: Path) -> None:
    checkpoint = tmp_path / "run.jsonl"
    work = make_requests(3)
    generate_to_jsonl(ScriptedBackend(), work[:2], checkpoint, progress=False)
    with checkpoint.open("a") as handle:
        handle.write('{"key": "p2", "completions": ["p2-')  # the kill hit mid-write
    backend = ScriptedBackend()
    generate_to_jsonl(backend, work, checkpoint, progress=False)
    assert backend.asked == ["p2"]
    assert checkpoint_keys(checkpoint) == ["p0", "p1", "p2"]


def test_a_checkpoint_from_other_settings_is_refused(tmp_path: Path) -> None:
    checkpoint = tmp_path / "run.jsonl"
    generate_to_jsonl(ScriptedBackend(), make_requests(2, n=2), checkpoint, progress=False)
    with pytest.raises(CheckpointMismatchError, match="p0"):
        generate_to_jsonl(ScriptedBackend(), make_requests(2, n=3), checkpoint, progress=False)
    other_prompt = [GenerationRequest("p0", "another prompt", SamplingParams(n=2))]
    with pytest.raises(CheckpointMismatchError, match="another prompt|other prompt"):
        generate_to_jsonl(ScriptedBackend(), other_prompt, checkpoint, progress=False)


def test_a_backend_that_returns_too_few_completions_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(GenerationError, match="returned 1 completions for 'p0', expected 2"):
        generate_to_jsonl(
            ScriptedBackend(short_by=1), make_requests(1), tmp_path / "r.jsonl", progress=False
        )


def test_a_killed_command_restarted_completes_without_duplicates(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    problems = MULTIPL_E / "humaneval-py-reworded.jsonl"
    if not problems.exists():
        pytest.skip(f"{problems} is missing")
    model = shared_tiny_model(tmp_path_factory)
    out, checkpoint = tmp_path / "out", tmp_path / "out.checkpoint.jsonl"
    command = [sys.executable, "-m", "multiplt.generation.cli", "complete", "--model", str(model)]
    command += ["--problems", str(problems), "--out", str(out), "--n", "2", "--quiet"]
    command += ["--max-tokens", "48", "--batch-size", "2", "--limit", "40", "--temperature", "0.8"]
    environment = {**os.environ, "PYTHONPATH": str(REPO / "src"), "HF_HUB_OFFLINE": "1"}
    command += ["--threads", "1"]  # a tiny model gains nothing from threads, and a busy
    # machine makes their synchronisation cost milliseconds per operation
    job = subprocess.Popen(command, env=environment, stderr=subprocess.DEVNULL)
    try:
        wait_for_lines(checkpoint, 3, job)
    finally:
        job.send_signal(signal.SIGKILL)
        job.wait()
    assert job.returncode == -signal.SIGKILL, "the job finished before it could be killed"
    before = checkpoint.read_text().splitlines(keepends=True)
    assert 3 <= len(before) < 40 and not out.exists()

    subprocess.run(command, env=environment, check=True, stderr=subprocess.DEVNULL)
    after = checkpoint.read_text().splitlines(keepends=True)
    keys = [json.loads(line)["key"] for line in after]
    assert len(keys) == len(set(keys)) == 40
    complete_before = [line for line in before if line.endswith("\n")]
    assert after[: len(complete_before)] == complete_before  # kept, not sampled again
    assert len(list(out.glob("*.json.gz"))) == 40


def wait_for_lines(path: Path, count: int, job: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and job.poll() is None:
        if path.exists() and path.read_text().count("\n") >= count:
            return
        time.sleep(0.02)
    raise AssertionError(f"{path} never reached {count} lines (job exit code {job.poll()})")

"""Real MultiPL-E problems with hand-written completions, evaluated the way MultiPL-E does."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from multiplt.execution.engine import ExecutionEngine
from multiplt.execution.results import Status
from multiplt.multiple.evaluate import evaluate_directory
from tests.conftest import (
    ALL_LANGUAGES,
    handwritten_completions,
    multipl_e_problems,
    require_runtime,
)


def write_completions(directory: Path, problem: dict, completions: list[str]) -> Path:
    record = {
        "name": problem["name"],
        "language": problem["language"],
        "temperature": 0.2,
        "top_p": 0.95,
        "max_tokens": 512,
        "prompt": problem["prompt"],
        "tests": problem["tests"],
        "completions": completions,
        "stop_tokens": problem["stop_tokens"],
    }
    path = directory / f"{problem['name']}.json.gz"
    with gzip.open(path, "wt") as handle:
        json.dump(record, handle)
    return path


@pytest.mark.parametrize("language_name", ALL_LANGUAGES)
def test_correct_completions_pass_and_wrong_ones_fail(
    language_name: str, engine: ExecutionEngine, tmp_path: Path
) -> None:
    require_runtime(language_name)
    problems = multipl_e_problems(language_name)
    written = handwritten_completions()[language_name]
    for name, completions in written.items():
        write_completions(tmp_path, problems[name], completions)

    evaluate_directory(tmp_path, engine)

    for name in written:
        with gzip.open(tmp_path / f"{name}.results.json.gz", "rt") as handle:
            record = json.load(handle)
        assert "completions" not in record
        assert record["name"] == name and record["language"] == problems[name]["language"]
        correct, wrong = record["results"]
        assert set(correct) == {"program", "stdout", "stderr", "exit_code", "status"}
        assert correct["status"] == Status.OK and correct["exit_code"] == 0, correct
        assert wrong["status"] == Status.ASSERTION_ERROR, wrong
        prompt, tests = problems[name]["prompt"], problems[name]["tests"]
        assert correct["program"] == prompt + written[name][0] + "\n" + tests

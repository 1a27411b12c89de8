"""What MultiPL-E's evaluation container does: completions files in, results files out.

Given a directory of ``NAME.json.gz`` completion files, writes ``NAME.results.json.gz``
beside each (or into another directory). All programs of one language run as one batch in
one sandbox; the batch is checkpointed, so an interrupted evaluation resumes where it
stopped, and a problem whose results file already exists is not run again.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from multiplt.execution.engine import ExecutionEngine
from multiplt.execution.results import ExecutionResult, Program
from multiplt.languages import get_language
from multiplt.multiple.files import BadInputError, read_json_gz, write_json_gz

COMPLETION_KEYS = ("name", "language", "prompt", "tests", "completions")
RESULTS_SUFFIX = ".results.json.gz"


def program_text(prompt: str, completion: str, tests: str) -> str:
    """The program MultiPL-E runs for one completion."""
    return prompt + completion + "\n" + tests


def completion_files(directory: Path) -> list[Path]:
    if not directory.is_dir():
        raise BadInputError(f"{directory}: not a directory of completion files")
    return sorted(
        path
        for path in directory.glob("*.json.gz")
        if not path.name.endswith(RESULTS_SUFFIX) and not path.name.startswith(".")
    )


def results_path(completions_path: Path, output_dir: Path | None = None) -> Path:
    name = completions_path.name[: -len(".json.gz")] + RESULTS_SUFFIX
    return (output_dir or completions_path.parent) / name


@dataclass
class Problem:
    """One completions file, loaded and checked."""

    path: Path
    data: dict[str, Any]

    @classmethod
    def load(cls, path: Path) -> Problem:
        data = read_json_gz(path)
        missing = [key for key in COMPLETION_KEYS if key not in data]
        if missing:
            raise BadInputError(f"{path}: missing key(s) {', '.join(missing)}")
        if not isinstance(data["completions"], list):
            raise BadInputError(f"{path}: 'completions' must be a list")
        try:
            get_language(str(data["language"]))
        except KeyError as error:
            raise BadInputError(f"{path}: {error.args[0]}") from error
        return cls(path, data)

    def programs(self) -> list[Program]:
        data = self.data
        return [
            Program(_program_key(data["name"], index, text), text)
            for index, completion in enumerate(data["completions"])
            for text in [program_text(data["prompt"], str(completion), data["tests"])]
        ]

    def results_record(self, results: dict[str, ExecutionResult]) -> dict[str, Any]:
        record = {key: value for key, value in self.data.items() if key != "completions"}
        record["results"] = [results[p.key].to_multipl_e() for p in self.programs()]
        return record


def _program_key(name: str, index: int, text: str) -> str:
    # The digest makes a resumed run notice a completion that changed between attempts.
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
    return f"{name}/{index}/{digest}"


def evaluate_directory(
    directory: Path,
    engine: ExecutionEngine,
    output_dir: Path | None = None,
    checkpoint_dir: Path | None = None,
) -> list[Path]:
    """Evaluate every completions file in ``directory`` that has no results file yet.

    Results go beside the completions unless ``output_dir`` is given; the per-language
    checkpoints go to ``checkpoint_dir`` (default: the results directory), which should
    survive a failed job so that the rerun resumes.
    """
    files = completion_files(directory)
    if not files:
        raise BadInputError(f"{directory}: no completion files (NAME.json.gz)")
    target_dir = output_dir or directory
    target_dir.mkdir(parents=True, exist_ok=True)
    pending = [Problem.load(path) for path in files if not results_path(path, target_dir).exists()]
    by_language: dict[str, list[Problem]] = defaultdict(list)
    for problem in pending:
        by_language[get_language(str(problem.data["language"])).name].append(problem)
    checkpoints = checkpoint_dir or target_dir
    written = []
    for language_name, problems in sorted(by_language.items()):
        programs = [program for problem in problems for program in problem.programs()]
        checkpoint = checkpoints / f".multiplt-{language_name}.checkpoint.jsonl"
        results = engine.run(get_language(language_name), programs, checkpoint=checkpoint)
        for problem in problems:
            target = results_path(problem.path, target_dir)
            write_json_gz(target, problem.results_record(results))
            written.append(target)
        checkpoint.unlink(missing_ok=True)
    return written

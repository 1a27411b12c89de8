"""MultiPL-E problems in, MultiPL-E completions files out (DESIGN.md §3).

A problem's prompt is sampled with the problem's own stop sequences; each problem's
completions are written as ``NAME.json.gz`` with the fields MultiPL-E's evaluator reads.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from multiplt.generation.params import GenerationRequest, SamplingParams
from multiplt.multiple.files import BadInputError, write_json_gz
from multiplt.multiple.references import completions_record

# What sampling and evaluation need; MultiPL-E records carry more (doctests, original...).
REQUIRED_FIELDS: dict[str, type] = {
    "name": str,
    "language": str,
    "prompt": str,
    "tests": str,
    "stop_tokens": list,
}


def load_problems(path: Path) -> list[dict[str, Any]]:
    """The problems of a MultiPL-E JSON-lines file; any defect names the file and line."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise BadInputError(f"{path}: cannot read problems: {error}") from error
    problems = [
        _parse_problem(line, f"{path}:{number}")
        for number, line in enumerate(lines, start=1)
        if line.strip()
    ]
    if not problems:
        raise BadInputError(f"{path}: no problems in the file")
    _check_unique_names(problems, path)
    return problems


def _parse_problem(line: str, where: str) -> dict[str, Any]:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as error:
        raise BadInputError(f"{where}: not valid JSON: {error}") from error
    if not isinstance(record, dict):
        raise BadInputError(f"{where}: expected a JSON object, found {type(record).__name__}")
    for name, kind in REQUIRED_FIELDS.items():
        if not isinstance(record.get(name), kind):
            raise BadInputError(f"{where}: field {name!r} is missing or not a {kind.__name__}")
    if not all(isinstance(stop, str) and stop for stop in record["stop_tokens"]):
        raise BadInputError(f"{where}: stop_tokens must be non-empty strings")
    return record


def _check_unique_names(problems: Sequence[dict[str, Any]], path: Path) -> None:
    seen: set[str] = set()
    for problem in problems:
        if problem["name"] in seen:
            raise BadInputError(f"{path}: problem {problem['name']!r} appears twice")
        seen.add(problem["name"])


def problem_requests(
    problems: Iterable[dict[str, Any]], params: SamplingParams
) -> list[GenerationRequest]:
    """One request per problem, keyed by its name, stopping at its own stop sequences."""
    return [
        GenerationRequest(
            problem["name"], problem["prompt"], replace(params, stop=tuple(problem["stop_tokens"]))
        )
        for problem in problems
    ]


def write_completions_dir(
    problems: Iterable[dict[str, Any]],
    completions: Mapping[str, Sequence[str]],
    params: SamplingParams,
    out_dir: Path,
) -> list[Path]:
    """Write ``NAME.json.gz`` for every problem (each atomically: temporary file, rename).

    Every problem must have completions: a missing or empty list means sampling did not
    finish, and a partial directory would be scored as if it were complete.
    """
    problems = list(problems)
    for problem in problems:
        if not completions.get(problem["name"]):
            raise BadInputError(f"no completions for problem {problem['name']!r}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for problem in problems:
        record = completions_record(
            problem,
            list(completions[problem["name"]]),
            temperature=params.temperature,
            top_p=params.top_p,
            max_tokens=params.max_new_tokens,
        )
        path = out_dir / f"{problem['name']}.json.gz"
        write_json_gz(path, record)
        written.append(path)
    return written

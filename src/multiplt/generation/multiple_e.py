"""MultiPL-E problems in, MultiPL-E completions files out (DESIGN.md §3).

A problem's prompt is sampled with the problem's own stop sequences; each problem's
completions are written as ``NAME.json.gz`` with the fields MultiPL-E's evaluator reads.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from multiplt.generation.params import GenerationRequest, SamplingParams
from multiplt.multiple.files import BadInputError
from multiplt.multiple.problems import load_problems
from multiplt.multiple.references import write_completion_files

__all__ = ["load_problems", "problem_requests", "write_completions_dir"]


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
    return write_completion_files(
        problems,
        completions,
        Path(out_dir),
        temperature=params.temperature,
        top_p=params.top_p,
        max_tokens=params.max_new_tokens,
    )

"""pass@k as MultiPL-E computes it: the unbiased estimator, averaged over problems."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from multiplt.multiple.files import BadInputError, read_json_gz

# MultiPL-E reports pass@1 for samples at temperature 0.2 and pass@10/100 at 0.8.
K_FOR_TEMPERATURE = {0.2: (1,), 0.8: (10, 100)}


def estimator(n: int, c: int, k: int) -> float:
    """1 - C(n-c, k) / C(n, k), computed as a product to stay stable for large n."""
    if n - c < k:
        return 1.0
    return float(1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


def count_passed(results: Sequence[dict[str, Any]]) -> int:
    return sum(1 for r in results if r["status"] == "OK" and r["exit_code"] == 0)


@dataclass(frozen=True)
class ProblemScore:
    name: str
    n: int
    c: int
    temperature: float


@dataclass(frozen=True)
class PassAtK:
    dataset: str
    k: int
    estimate: float
    num_problems: int
    min_completions: int
    max_completions: int

    def csv_row(self) -> str:
        return (
            f"{self.dataset},{self.k},{self.estimate},{self.num_problems},"
            f"{self.min_completions},{self.max_completions}"
        )


CSV_HEADER = "Dataset,Pass@k,Estimate,NumProblems,MinCompletions,MaxCompletions"


def result_files(directory: Path) -> list[Path]:
    return sorted([*directory.glob("*.results.json"), *directory.glob("*.results.json.gz")])


def score_file(path: Path) -> ProblemScore:
    data = read_json_gz(path) if path.suffix == ".gz" else _read_plain(path)
    if "results" not in data:
        raise BadInputError(f"{path}: no 'results' key; is this a MultiPL-E results file?")
    results = data["results"]
    return ProblemScore(
        name=str(data.get("name", path.name)),
        n=len(results),
        c=count_passed(results),
        temperature=float(data.get("temperature", 0.2)),
    )


def _read_plain(path: Path) -> dict[str, Any]:
    try:
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise BadInputError(f"{path}: cannot read JSON: {error}") from error
    return data


def pass_at_k(dataset: str, scores: Sequence[ProblemScore]) -> list[PassAtK]:
    """The rows MultiPL-E's pass_k.py prints for one directory of results."""
    if not scores:
        raise BadInputError(f"{dataset}: no *.results.json(.gz) files")
    temperatures = {score.temperature for score in scores}
    if len(temperatures) != 1:
        raise BadInputError(f"{dataset}: results mix temperatures {sorted(temperatures)}")
    temperature = temperatures.pop()
    if temperature not in K_FOR_TEMPERATURE:
        raise BadInputError(f"{dataset}: unexpected temperature {temperature} (want 0.2 or 0.8)")
    counts = [score.n for score in scores]
    return [
        PassAtK(
            dataset=dataset,
            k=k,
            estimate=float(np.mean([estimator(s.n, s.c, k) for s in scores])),
            num_problems=len(scores),
            min_completions=min(counts),
            max_completions=max(counts),
        )
        for k in K_FOR_TEMPERATURE[temperature]
    ]


def dataset_name(directory: Path) -> str:
    return directory.resolve().name


def pass_at_k_table(directories: Iterable[Path]) -> list[PassAtK]:
    rows: list[PassAtK] = []
    for directory in directories:
        scores = [score_file(path) for path in result_files(directory)]
        rows.extend(pass_at_k(dataset_name(directory), scores))
    return rows

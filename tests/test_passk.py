"""pass@k against values computed by hand and against the binomial definition."""

from __future__ import annotations

import gzip
import json
from math import comb
from pathlib import Path

import pytest

from multiplt.cli import main
from multiplt.multiple.files import BadInputError
from multiplt.multiple.passk import ProblemScore, estimator, pass_at_k


@pytest.mark.parametrize(
    ("n", "c", "k", "expected"),
    [
        (5, 2, 1, 0.4),  # 2 of 5 samples pass
        (20, 0, 1, 0.0),
        (20, 20, 1, 1.0),
        (20, 1, 10, 0.5),  # 1 - C(19,10)/C(20,10) = 1 - 10/20
        (10, 3, 10, 1.0),  # fewer than k failures: some draw of k always passes
        (4, 1, 2, 0.5),  # 1 - C(3,2)/C(4,2) = 1 - 3/6
    ],
)
def test_estimator_hand_computed(n: int, c: int, k: int, expected: float) -> None:
    assert estimator(n, c, k) == pytest.approx(expected)


@pytest.mark.parametrize("n", [1, 7, 20, 200])
def test_estimator_matches_binomial_definition(n: int) -> None:
    for c in range(n + 1):
        for k in {1, min(n, 10)}:
            exact = 1.0 if n - c < k else 1 - comb(n - c, k) / comb(n, k)
            assert estimator(n, c, k) == pytest.approx(exact, abs=1e-12)


def test_mean_over_problems() -> None:
    scores = [
        ProblemScore("a", 20, 10, 0.2),
        ProblemScore("b", 20, 0, 0.2),
        ProblemScore("c", 10, 10, 0.2),
    ]
    (row,) = pass_at_k("set", scores)
    assert row.k == 1 and row.estimate == pytest.approx((0.5 + 0.0 + 1.0) / 3)
    assert (row.num_problems, row.min_completions, row.max_completions) == (3, 10, 20)


def test_temperature_0_8_reports_pass_at_10_and_100() -> None:
    rows = pass_at_k("set", [ProblemScore("a", 200, 20, 0.8)])
    assert [row.k for row in rows] == [10, 100]


def test_mixed_temperatures_are_an_error() -> None:
    with pytest.raises(BadInputError, match="mix temperatures"):
        pass_at_k("set", [ProblemScore("a", 20, 1, 0.2), ProblemScore("b", 20, 1, 0.8)])


def write_results(directory: Path, name: str, statuses: list[tuple[str, int]]) -> None:
    record = {
        "name": name,
        "language": "lua",
        "temperature": 0.2,
        "results": [
            {"status": s, "exit_code": e, "program": "", "stdout": "", "stderr": ""}
            for s, e in statuses
        ],
    }
    with gzip.open(directory / f"{name}.results.json.gz", "wt") as handle:
        json.dump(record, handle)


def test_cli_prints_multipl_e_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    results = tmp_path / "humaneval-lua-model-0.2"
    results.mkdir()
    # "OK" with a non-zero exit code does not pass, as in MultiPL-E.
    write_results(results, "p1", [("OK", 0), ("OK", 1), ("Exception", 1), ("OK", 0)])
    write_results(results, "p2", [("Timeout", -1)] * 4)
    assert main(["pass-k", str(results)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "Dataset,Pass@k,Estimate,NumProblems,MinCompletions,MaxCompletions"
    assert lines[1] == "humaneval-lua-model-0.2,1,0.25,2,4,4"


def test_cli_reports_a_corrupt_results_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "broken.results.json.gz").write_bytes(b"not gzip")
    assert main(["pass-k", str(tmp_path)]) == 2
    assert "broken.results.json.gz" in capsys.readouterr().err

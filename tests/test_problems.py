"""Benchmark problems: counts as MultiPL-E's, repairs of known defects, bad files named."""

from __future__ import annotations

from pathlib import Path

import pytest

from multiplt.execution.engine import ExecutionEngine
from multiplt.execution.results import Program, Status
from multiplt.multiple.evaluate import program_text
from multiplt.multiple.files import BadInputError
from multiplt.multiple.problems import ProblemSource
from tests.conftest import MULTIPL_E, require_runtime

LOCAL = ProblemSource(local_dir=MULTIPL_E)

# The problem counts of DESIGN.md §7 (HumanEval / MBPP). MBPP for OCaml is hub-only.
COUNTS = {
    "lua": (161, 397),
    "r": (161, 397),
    "rkt": (161, 400),
    "jl": (159, 390),
    "ml": (155, None),
}


@pytest.mark.parametrize("language", sorted(COUNTS))
def test_problem_counts_match_multipl_e(language: str) -> None:
    humaneval, mbpp = COUNTS[language]
    assert len(LOCAL.load("humaneval", language)) == humaneval
    if mbpp is not None:
        assert len(LOCAL.load("mbpp", language)) == mbpp


def test_limit_takes_the_first_problems() -> None:
    assert [p["name"] for p in LOCAL.load("humaneval", "lua", limit=2)] == [
        p["name"] for p in LOCAL.load("humaneval", "lua")[:2]
    ]


def test_lua_blank_line_stop_token_is_dropped() -> None:
    verbatim = ProblemSource(local_dir=MULTIPL_E, repair=False).load("humaneval", "lua", limit=1)
    assert "\n\n" in verbatim[0]["stop_tokens"]
    assert "\n\n" not in LOCAL.load("humaneval", "lua", limit=1)[0]["stop_tokens"]


def test_julia_stray_angle_brackets_are_dropped() -> None:
    verbatim = ProblemSource(local_dir=MULTIPL_E, repair=False).load("mbpp", "jl")
    broken = [p["name"] for p in verbatim if "}>" in p["prompt"]]
    assert broken, "the snapshot is known to have them"
    repaired = {p["name"]: p for p in LOCAL.load("mbpp", "jl")}
    assert not any("}>" in repaired[name]["prompt"] for name in broken)


def test_r_identical_checks_become_all_equal() -> None:
    from multiplt.languages.r import compare_with_all_equal

    problem = {"tests": "f <- function() {\n    stopifnot(identical(candidate(1), c(2, 3)))\n}\n"}
    assert compare_with_all_equal(problem)["tests"] == (
        "f <- function() {\n    stopifnot(isTRUE(all.equal(candidate(1), c(2, 3))))\n}\n"
    )


def test_ocaml_negative_literals_become_runnable() -> None:
    language = require_runtime("ml")
    verbatim = ProblemSource(local_dir=MULTIPL_E, repair=False).load("humaneval", "ml")
    repaired = {p["name"]: p for p in LOCAL.load("humaneval", "ml")}
    name = "HumanEval_30_get_positive"
    original = next(p for p in verbatim if p["name"] == name)
    answer = "\n  List.filter (fun x -> x > 0) l\n"
    programs = [
        Program("verbatim", program_text(original["prompt"], answer, original["tests"])),
        Program(
            "repaired", program_text(repaired[name]["prompt"], answer, repaired[name]["tests"])
        ),
    ]
    results = ExecutionEngine(workers=2).run(language, programs)
    assert results["verbatim"].status is Status.SYNTAX_ERROR
    assert results["repaired"].status is Status.OK
    assert sum("(~" in p["tests"] for p in repaired.values()) == 0


def test_missing_and_malformed_files_are_named(tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match="humaneval-lua-reworded.jsonl: no such"):
        ProblemSource(local_dir=tmp_path).load("humaneval", "lua")
    good = '{"name": "a", "language": "lua", "prompt": "", "tests": "", "stop_tokens": []}'
    (tmp_path / "humaneval-lua-reworded.jsonl").write_text(good + "\n{oops\n")
    with pytest.raises(BadInputError, match=r"reworded.jsonl:2: not valid JSON"):
        ProblemSource(local_dir=tmp_path).load("humaneval", "lua")
    (tmp_path / "humaneval-lua-reworded.jsonl").write_text('{"name": "a"}\n')
    with pytest.raises(BadInputError, match="field 'language' is missing"):
        ProblemSource(local_dir=tmp_path).load("humaneval", "lua")

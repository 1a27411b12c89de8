"""Decontamination against HumanEval, every MBPP split and MultiPL-E, with planted copies."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from multiplt.source import benchmarks
from multiplt.source.benchmarks import BenchmarkText, benchmark_texts, prompt_description
from multiplt.source.decontaminate import (
    BenchmarkIndex,
    DecontaminationReport,
    DecontaminationSettings,
)
from multiplt.source.records import Provenance, PythonFunction

SHARED_BENCHMARKS = Path(__file__).resolve().parents[2] / "shared" / "benchmarks"
LANGUAGES = ("jl", "lua", "ml", "r", "rkt")
PROVENANCE = Provenance(source="test", repository="owner/repo", path="planted.py")


def planted(name: str, code: str) -> PythonFunction:
    return PythonFunction(name=name, code=code, docstring="", provenance=PROVENANCE, line=1)


# HumanEval/2 as published: signature, docstring and canonical solution.
HUMANEVAL_VERBATIM = planted(
    "truncate_number",
    '''def truncate_number(number: float) -> float:
    """ Given a positive floating point number, it can be decomposed into
    and integer part (largest integer smaller than given number) and decimals
    (leftover part always smaller than 1).

    Return the decimal part of the number.
    >>> truncate_number(3.5)
    0.5
    """
    return number % 1.0
''',
)
# The same problem renamed, one word changed, rewrapped, without its doctest: no substring
# of it is in HumanEval, but most of its problem statement's 10-grams are.
HUMANEVAL_DISGUISED = planted(
    "frac_part",
    '''def frac_part(x: float) -> float:
    """Given a positive float number, it can be decomposed into and integer part
    (largest integer smaller than given number) and decimals (leftover part always
    smaller than 1). Return the decimal part of the number."""
    return x - int(x)
''',
)
# MBPP task 11 (test split): its description as the docstring, its solution as the body.
MBPP_11_TEXT = (
    "Write a python function to remove first and last occurrence of a given character "
    "from the string."
)
MBPP_TEST = planted(
    "remove_Occ",
    f'''def remove_Occ(s, ch):
    """{MBPP_11_TEXT}"""
    for i in range(len(s)):
        if (s[i] == ch):
            s = s[0 : i] + s[i + 1:]
            break
    for i in range(len(s) - 1,-1,-1):
        if (s[i] == ch):
            s = s[0 : i] + s[i + 1:]
            break
    return s
''',
)
# MBPP task 550 (validation split): its solution under a docstring of our own.
MBPP_VALIDATION = planted(
    "find_Max",
    '''def find_Max(arr,low,high):
    """Find the largest element."""
    if (high < low):
        return arr[0]
    if (high == low):
        return arr[low]
    mid = low + (high - low) // 2
    if (mid < high and arr[mid + 1] < arr[mid]):
        return arr[mid]
    if (mid > low and arr[mid] < arr[mid - 1]):
        return arr[mid - 1]
    if (arr[low] > arr[mid]):
        return find_Max(arr,low,mid - 1)
    else:
        return find_Max(arr,mid + 1,high)
''',
)
# MBPP task 700 (train split, the only one the original checked).
MBPP_700_TEXT = (
    "Write a function to count the number of elements in a list which are within a specific range."
)
MBPP_TRAIN = planted(
    "count_in_range",
    f'''def count_in_range(values, low, high):
    """{MBPP_700_TEXT}"""
    return sum(1 for value in values if low <= value <= high)
''',
)
CLEAN = planted(
    "mean",
    '''def mean(data: list[float]) -> float:
    """Return the sample arithmetic mean of data, which must not be empty."""
    total = 0.0
    for value in data:
        total += value
    return total / len(data)
''',
)


@pytest.fixture(scope="module")
def corpus() -> list[BenchmarkText]:
    if not SHARED_BENCHMARKS.is_dir():
        pytest.skip(f"{SHARED_BENCHMARKS} is missing (../shared beside the repository)")
    return list(benchmark_texts("local", SHARED_BENCHMARKS, LANGUAGES))


@pytest.fixture(scope="module")
def index(corpus: list[BenchmarkText]) -> BenchmarkIndex:
    return BenchmarkIndex(corpus, DecontaminationSettings())


def matched(index: BenchmarkIndex, function: PythonFunction) -> set[tuple[str, str]]:
    return {(match.benchmark, match.method) for match in index.matches(function)}


def test_the_corpus_covers_every_mbpp_split_and_every_language(corpus: list[BenchmarkText]) -> None:
    names = {text.benchmark for text in corpus}
    assert {"humaneval", "mbpp-test", "mbpp-validation", "mbpp-train", "mbpp-prompt"} <= names
    for language in ("py", *LANGUAGES):
        assert f"multipl-e/humaneval-{language}" in names
    # Task ids 11–510 are MBPP's test split: 500 problems.
    test_items = {text.item for text in corpus if text.benchmark == "mbpp-test"}
    assert len(test_items) == 500


def test_verbatim_humaneval_is_caught_by_substring(index: BenchmarkIndex) -> None:
    assert ("humaneval", "substring") in matched(index, HUMANEVAL_VERBATIM)


def test_disguised_humaneval_is_caught_by_ngrams_only(index: BenchmarkIndex) -> None:
    found = matched(index, HUMANEVAL_DISGUISED)
    assert ("humaneval", "ngram") in found
    assert ("multipl-e/humaneval-lua", "ngram") in found
    assert all(method == "ngram" for _, method in found)


def test_mbpp_test_and_validation_splits_are_covered(index: BenchmarkIndex) -> None:
    assert ("mbpp-test", "substring") in matched(index, MBPP_TEST)
    assert ("mbpp-validation", "ngram") in matched(index, MBPP_VALIDATION)
    assert ("mbpp-train", "substring") in matched(index, MBPP_TRAIN)


def test_an_ordinary_function_is_kept(index: BenchmarkIndex) -> None:
    assert index.matches(CLEAN) == []


def test_report_counts_each_function_once_per_benchmark(index: BenchmarkIndex) -> None:
    report = DecontaminationReport(benchmarks=index.benchmarks)
    planted_functions = [
        HUMANEVAL_VERBATIM,
        HUMANEVAL_DISGUISED,
        MBPP_TEST,
        MBPP_VALIDATION,
        MBPP_TRAIN,
        CLEAN,
    ]
    for function in planted_functions:
        report.record(index.matches(function))
    assert report.removed == 5
    assert report.by_benchmark["humaneval"] == 2
    assert report.by_benchmark["mbpp-test"] == 1
    assert report.by_benchmark["mbpp-validation"] == 1
    assert report.by_benchmark["mbpp-train"] == 1


def test_short_texts_are_not_substring_needles() -> None:
    texts = [BenchmarkText("toy", "1", "solution", "return a + b")]
    index = BenchmarkIndex(texts, DecontaminationSettings(min_substring_chars=40))
    assert index.matches(planted("add", "def add(a, b):\n    return a + b\n")) == []


@pytest.mark.parametrize(
    ("prompt", "description"),
    [
        ("-- Sum a table.\n-- >>> f({1})\nlocal function f(t)\n", "Sum a table.\n>>> f({1})"),
        ("#lang racket\n;; Sum a list.\n(define (f xs)\n", "Sum a list."),
        ("(**Sum a list.\n>>> f [1]\n*)\nlet f (xs : int list) : int =", "Sum a list.\n>>> f [1]"),
        ('"""Sum a vector.\n"""\nfunction f(xs::Vector{Int64})::Int64 \n', "Sum a vector."),
        ("# Sum a vector.\nf <- function(xs) {", "Sum a vector."),
        ('def f(xs: List[int]) -> int:\n    """\n    Sum a list.\n    """\n', "Sum a list."),
    ],
    ids=["lua", "rkt", "ml", "jl", "r", "py"],
)
def test_prompt_descriptions_in_every_language(prompt: str, description: str) -> None:
    assert prompt_description(prompt) == description


def test_hub_origin_asks_for_every_mbpp_split_and_multipl_e_config(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Hub only in real runs; here `datasets.load_dataset` is replaced to record the calls."""
    datasets = pytest.importorskip("datasets")
    calls: list[tuple[str, str, str | None]] = []

    def fake_load_dataset(name: str, configuration: str, split: str | None = None) -> Any:
        calls.append((name, configuration, split))
        if name == benchmarks.MBPP_HUB_DATASET:
            record = {
                "task_id": 11,
                "text": "Write a function.",
                "prompt": "Write a function.",
                "code": "x = 1",
            }
            return {
                split_name: [record] for split_name in ("train", "test", "validation", "prompt")
            }
        return [{"name": "HumanEval_0_f", "prompt": "-- Do things well.\nlocal function f()\n"}]

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    texts: Iterator[BenchmarkText] = benchmark_texts("hub", None, ["lua", "ml"])
    names = {text.benchmark for text in texts}
    assert {"mbpp-train", "mbpp-test", "mbpp-validation", "mbpp-prompt"} <= names
    assert ("google-research-datasets/mbpp", "sanitized", None) in calls
    assert ("nuprl/MultiPL-E", "mbpp-ml", "test") in calls  # not available offline
    assert {"multipl-e/humaneval-py", "multipl-e/mbpp-lua"} <= names

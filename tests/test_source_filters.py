"""Each cheap filter of the funnel, and exact deduplication."""

from __future__ import annotations

from pathlib import Path

import pytest

from multiplt.source.extract import Candidate, extract_functions
from multiplt.source.filters import (
    CHEAP_FILTERS,
    ExactDeduplicator,
    count_nodes,
    has_no_todo,
    is_ascii,
    is_not_trivial_return,
    returns_a_value,
)
from multiplt.source.records import Provenance, PythonFunction, SourceFile

DATA = Path(__file__).parent / "data" / "source"
PROVENANCE = Provenance(source="test", repository="owner/repo", path="module.py")


def candidate(code: str) -> Candidate:
    function = PythonFunction(name="f", code=code, docstring="", provenance=PROVENANCE, line=1)
    return Candidate.from_function(function)


def fixture_candidates() -> dict[str, Candidate]:
    source = SourceFile((DATA / "functions.py.txt").read_bytes(), PROVENANCE)
    extracted = extract_functions(source, 1_000_000)
    return {candidate.function.name: candidate for candidate in extracted.with_docstring}


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ('def f(x):\n    """D."""\n    return x * 2\n', True),
        ('def f(x):\n    """D."""\n    return None\n', True),
        ('def f(x):\n    """D."""\n    print(x)\n    return\n', False),
        ('def f(x):\n    """D."""\n    print(x)\n', False),
        ('def f(x):\n    """D."""\n    g = lambda: x\n    g()\n', False),
        (
            'def f(x):\n    """D."""\n    class A:\n        def m(self):\n            return 1\n',
            False,
        ),
        ('def f(x):\n    """D."""\n    if x:\n        for y in x:\n            return y\n', True),
    ],
    ids=["value", "explicit-none", "bare", "none", "lambda", "nested-class", "deep"],
)
def test_return_value_filter(code: str, expected: bool) -> None:
    assert returns_a_value(candidate(code)) is expected


def test_todo_filter_is_case_sensitive_as_in_the_paper() -> None:
    assert not has_no_todo(candidate('def f():\n    """D."""\n    return 1  # TODO\n'))
    assert has_no_todo(candidate('def f():\n    """Do todo lists."""\n    return 1\n'))


def test_non_ascii_anywhere_drops_the_function() -> None:
    assert not is_ascii(candidate('def f():\n    """Café."""\n    return 1\n'))
    assert not is_ascii(candidate('def f():\n    """D."""\n    return "→"\n'))
    assert is_ascii(candidate('def f():\n    """D."""\n    return "\\u2192"\n'))


@pytest.mark.parametrize(
    ("body", "nodes", "kept"),
    [
        ("return self.value", 3, False),
        ("return a + b", 5, False),
        ("return f(a, b, c, d)", 7, False),
        ("return a * b + c * (a - b)", 14, True),
    ],
)
def test_trivial_return_filter(body: str, nodes: int, kept: bool) -> None:
    function = candidate(f'def f(self, a, b, c, d):\n    """D."""\n    {body}\n')
    assert count_nodes(function.node.body[1]) == nodes
    assert is_not_trivial_return(function) is kept


def test_a_short_return_after_other_statements_is_not_trivial() -> None:
    assert is_not_trivial_return(candidate('def f(a):\n    """D."""\n    a += 1\n    return a\n'))


def test_the_fixture_funnel_of_the_cheap_filters() -> None:
    candidates = fixture_candidates()
    survivors = {
        name
        for name, value in candidates.items()
        if all(step.keep(value) for step in CHEAP_FILTERS)
    }
    assert survivors == {"kept", "lone_return_large_enough", "decorated"}


def test_exact_dedup_keeps_the_first_of_each_text() -> None:
    deduplicator = ExactDeduplicator()
    first = candidate('def f(a):\n    """D."""\n    return a * 2 + 1\n')
    copy = candidate('def f(a):\n    """D."""\n    return a * 2 + 1\n')
    other = candidate('def f(a):\n    """D."""\n    return a * 3 + 1\n')
    assert [deduplicator.is_new(c) for c in (first, copy, other)] == [True, False, True]

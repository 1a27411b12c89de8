"""Extraction: documented top-level functions, and bad files counted instead of raised."""

from __future__ import annotations

from pathlib import Path

import pytest

from multiplt.source.extract import FileProblem, extract_functions
from multiplt.source.records import Provenance, SourceFile

DATA = Path(__file__).parent / "data" / "source"
PROVENANCE = Provenance(source="test", repository="owner/repo", path="module.py", licenses=("MIT",))
LIMIT = 1_000_000


def from_bytes(content: bytes) -> SourceFile:
    return SourceFile(content=content, provenance=PROVENANCE)


def test_only_documented_top_level_defs_are_extracted() -> None:
    extracted = extract_functions(from_bytes((DATA / "functions.py.txt").read_bytes()), LIMIT)
    assert extracted.problem is None
    # Ten top-level `def`s; the async one and the method are not counted.
    assert extracted.functions_seen == 10
    names = [candidate.function.name for candidate in extracted.with_docstring]
    assert "no_docstring" not in names and "docstring_not_first" not in names
    assert "asynchronous" not in names and "method" not in names
    assert len(names) == 8


def test_extracted_code_and_provenance() -> None:
    extracted = extract_functions(from_bytes((DATA / "functions.py.txt").read_bytes()), LIMIT)
    by_name = {
        candidate.function.name: candidate.function for candidate in extracted.with_docstring
    }
    decorated = by_name["decorated"]
    assert decorated.code.startswith("def decorated(n: int) -> int:\n")
    assert "lru_cache" not in decorated.code
    assert decorated.code.endswith("return decorated(n - 1) + decorated(n - 2)\n")
    assert decorated.docstring.startswith("Fibonacci, cached")
    assert decorated.provenance == PROVENANCE
    assert decorated.line == 63  # the `def` line, below the decorator


def test_a_coding_cookie_is_honoured() -> None:
    extracted = extract_functions(
        from_bytes((DATA / "latin1_with_cookie.py.txt").read_bytes()), LIMIT
    )
    (candidate,) = extracted.with_docstring
    assert candidate.function.name == "café_price"
    assert "coûte" in candidate.function.docstring


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ((DATA / "python2_module.py.txt").read_bytes(), FileProblem.SYNTAX_ERROR),
        ((DATA / "latin1_without_cookie.py.txt").read_bytes(), FileProblem.UNDECODABLE),
        (b"# -*- coding: no-such-codec -*-\nx = 1\n", FileProblem.UNDECODABLE),
        (bytes(range(256)) * 4, FileProblem.BINARY),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", FileProblem.BINARY),
        (b"x = [" + b"1, " * 2_500_000 + b"]\n", FileProblem.TOO_LARGE),  # a 5 MB one-liner
        (b"x = 1" + b"+1" * 400_000 + b"\n", FileProblem.PARSER_LIMIT),
    ],
    ids=["python2", "latin1", "unknown-codec", "binary", "png", "5MB-one-liner", "deep-nesting"],
)
def test_bad_files_are_classified_not_raised(content: bytes, problem: FileProblem) -> None:
    assert extract_functions(from_bytes(content), LIMIT).problem == problem


def test_stack_text_with_nul_is_binary() -> None:
    source = SourceFile(content="def f():\n    '''x'''\x00\n", provenance=PROVENANCE)
    assert extract_functions(source, LIMIT).problem == FileProblem.BINARY


def test_windows_and_old_mac_newlines_extract_cleanly() -> None:
    text = 'def f(a: int) -> int:\r\n    """Doc."""\r\n    return a * 2 + 1 - a\r\n'
    (candidate,) = extract_functions(from_bytes(text.encode()), LIMIT).with_docstring
    assert (
        candidate.function.code
        == 'def f(a: int) -> int:\n    """Doc."""\n    return a * 2 + 1 - a\n'
    )
    old_mac = text.replace("\r\n", "\r")
    (candidate,) = extract_functions(from_bytes(old_mac.encode()), LIMIT).with_docstring
    assert candidate.function.code.count("\n") == 3

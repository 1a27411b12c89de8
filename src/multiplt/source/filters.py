"""The cheap per-function filters of the funnel, and exact deduplication.

Each filter is a predicate that says whether a function is *kept*; the pipeline counts what
each one removes. They run before the type-check because pyright costs far more per function
than all of them together.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from multiplt.source.extract import Candidate

# The paper drops bodies that are a lone ``return`` of fewer than 9 AST nodes: getters and
# one-liners that teach a model nothing about the target language.
TRIVIAL_RETURN_NODES = 9

# Expression contexts (Load, Store, Del) are bookkeeping, not code someone wrote: not counted.
_CONTEXT_NODES = (ast.Load, ast.Store, ast.Del)


def own_nodes(function: ast.FunctionDef) -> Iterator[ast.AST]:
    """Nodes of ``function``'s own body, not descending into nested functions, lambdas or
    classes (their ``return`` statements return from something else)."""
    stack: list[ast.AST] = list(function.body)
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda | ast.ClassDef):
            continue
        stack.extend(ast.iter_child_nodes(node))


def returns_a_value(candidate: Candidate) -> bool:
    """Has a ``return <expr>`` (``return None`` spelt out counts: someone meant a value)."""
    return any(
        isinstance(node, ast.Return) and node.value is not None
        for node in own_nodes(candidate.node)
    )


def has_no_todo(candidate: Candidate) -> bool:
    return "TODO" not in candidate.function.code


def is_ascii(candidate: Candidate) -> bool:
    return candidate.function.code.isascii()


def count_nodes(node: ast.AST) -> int:
    return sum(1 for child in ast.walk(node) if not isinstance(child, _CONTEXT_NODES))


def is_not_trivial_return(candidate: Candidate) -> bool:
    """False for a body (after the docstring) that is one ``return`` of < 9 AST nodes."""
    statements = candidate.node.body[1:]
    if len(statements) != 1 or not isinstance(statements[0], ast.Return):
        return True
    return count_nodes(statements[0]) >= TRIVIAL_RETURN_NODES


@dataclass(frozen=True)
class Filter:
    """A named predicate; ``stage`` is the funnel stage reached by the functions it keeps."""

    stage: str
    keep: Callable[[Candidate], bool]


# In funnel order; the order matters only for the counts, not for what survives.
CHEAP_FILTERS: tuple[Filter, ...] = (
    Filter("with_return_value", returns_a_value),
    Filter("without_todo", has_no_todo),
    Filter("ascii_only", is_ascii),
    Filter("not_trivial_return", is_not_trivial_return),
)


class ExactDeduplicator:
    """Keeps the first function of each exact text (by content id); remembers what it saw."""

    def __init__(self) -> None:
        self._seen: set[str] = set()

    def is_new(self, candidate: Candidate) -> bool:
        key = candidate.function.id
        if key in self._seen:
            return False
        self._seen.add(key)
        return True

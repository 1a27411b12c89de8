"""Top-level functions whose first statement is a docstring, from one file.

The Stack holds binary blobs, files in legacy encodings, Python 2 and plain broken code; each
such file is classified and counted (:class:`FileProblem`) and never raises, so one bad file
cannot fail a shard of millions.
"""

from __future__ import annotations

import ast
import io
import tokenize
import warnings
from dataclasses import dataclass, field
from enum import StrEnum

from multiplt.source.records import Provenance, PythonFunction, SourceFile


class FileProblem(StrEnum):
    """Why a file yielded no functions. The values are the funnel's keys."""

    TOO_LARGE = "too_large"
    BINARY = "binary"
    UNDECODABLE = "undecodable"
    # Python 2, or code that is not valid Python 3 for another reason.
    SYNTAX_ERROR = "syntax_error"
    # Nesting too deep for CPython's parser (generated code, minified data).
    PARSER_LIMIT = "parser_limit"
    # Could not be read, or made the extractor fail (logged as a bug).
    UNREADABLE = "unreadable"


@dataclass(frozen=True)
class Candidate:
    """A function with its parsed definition, kept so that filters need not parse it again."""

    function: PythonFunction
    node: ast.FunctionDef

    @classmethod
    def from_function(cls, function: PythonFunction) -> Candidate:
        """Re-parse a stored function (tests, and functions read back from disk)."""
        module = ast.parse(function.code)
        node = module.body[0]
        if not isinstance(node, ast.FunctionDef):
            raise ValueError(f"function {function.id} does not start with a def")
        return cls(function, node)


@dataclass
class ExtractedFile:
    """What one file gave: either a problem, or its top-level functions."""

    problem: FileProblem | None = None
    functions_seen: int = 0
    with_docstring: list[Candidate] = field(default_factory=list)


def decode_source(content: str | bytes) -> str | FileProblem:
    """The file's text, honouring a PEP 263 coding cookie, or the reason it has none."""
    if isinstance(content, str):
        return FileProblem.BINARY if "\x00" in content else content
    if b"\x00" in content:
        return FileProblem.BINARY
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(content).readline)
        return content.decode(encoding)
    except (SyntaxError, LookupError, UnicodeDecodeError):
        # SyntaxError: a malformed or unknown coding cookie; LookupError: a codec Python lacks.
        return FileProblem.UNDECODABLE


def parse_module(text: str) -> ast.Module | FileProblem:
    try:
        with warnings.catch_warnings():
            # Invalid escape sequences and the like warn at parse time; they are not our problem
            # and would flood the shard's log.
            warnings.simplefilter("ignore")
            return ast.parse(text)
    except SyntaxError:
        return FileProblem.SYNTAX_ERROR
    except (RecursionError, MemoryError):
        return FileProblem.PARSER_LIMIT


def has_docstring(node: ast.FunctionDef) -> bool:
    first = node.body[0]
    return (
        isinstance(first, ast.Expr)
        and isinstance(first.value, ast.Constant)
        and isinstance(first.value.value, str)
    )


def function_source(lines: list[str], node: ast.FunctionDef) -> str:
    """The ``def`` through the last line of the body; decorators are left out.

    A top-level definition starts at column 0 and nothing can follow it on its last line, so
    whole lines are exact.
    """
    end = node.end_lineno if node.end_lineno is not None else node.lineno
    return "\n".join(lines[node.lineno - 1 : end]).rstrip() + "\n"


def extract_functions(source: SourceFile, max_file_bytes: int) -> ExtractedFile:
    """Classify ``source`` and, if it is Python 3, collect its documented top-level functions."""
    size = len(source.content)
    if isinstance(source.content, str):
        size = len(source.content.encode("utf-8", "surrogatepass"))
    if size > max_file_bytes:
        return ExtractedFile(problem=FileProblem.TOO_LARGE)
    text = decode_source(source.content)
    if isinstance(text, FileProblem):
        return ExtractedFile(problem=text)
    # One newline convention, so that ast's line numbers index ``split("\n")`` exactly.
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    module = parse_module(text)
    if isinstance(module, FileProblem):
        return ExtractedFile(problem=module)
    return collect_functions(module, text.split("\n"), source.provenance)


def collect_functions(
    module: ast.Module, lines: list[str], provenance: Provenance
) -> ExtractedFile:
    extracted = ExtractedFile()
    for node in module.body:
        if not isinstance(node, ast.FunctionDef):
            continue
        extracted.functions_seen += 1
        if not has_docstring(node):
            continue
        function = PythonFunction(
            name=node.name,
            code=function_source(lines, node),
            docstring=ast.get_docstring(node) or "",
            provenance=provenance,
            line=node.lineno,
        )
        extracted.with_docstring.append(Candidate(function, node))
    return extracted

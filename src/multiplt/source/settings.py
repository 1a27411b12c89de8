"""The stage's settings, read from the workflow config's ``source:`` and ``decontamination:``
sections (validated by ``schemas/config.schema.yaml`` before they get here)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from multiplt.source.decontaminate import DecontaminationSettings
from multiplt.source.stack import StackLocation
from multiplt.source.typecheck import TypecheckSettings


@dataclass(frozen=True)
class SourceSettings:
    kind: str = "local"
    shards: int = 1
    stack: StackLocation = field(default_factory=StackLocation)
    local_roots: tuple[str, ...] = ("stdlib",)
    exclude_dirs: tuple[str, ...] = ("site-packages", "dist-packages", "__pycache__")
    max_files: int | None = None
    max_functions: int | None = None
    max_file_bytes: int = 1_000_000
    typecheck: TypecheckSettings = field(default_factory=TypecheckSettings)


@dataclass(frozen=True)
class BenchmarkSettings:
    """Where the decontamination corpus comes from, and the languages whose prompts it has."""

    origin: str = "local"
    local_dir: Path | None = None
    languages: tuple[str, ...] = ()


@dataclass(frozen=True)
class StageSettings:
    source: SourceSettings = field(default_factory=SourceSettings)
    benchmarks: BenchmarkSettings = field(default_factory=BenchmarkSettings)
    decontamination: DecontaminationSettings = field(default_factory=DecontaminationSettings)


def section(config: Mapping[str, Any], key: str, where: str) -> Mapping[str, Any]:
    value = config.get(key)
    if not isinstance(value, Mapping):
        raise ValueError(f"config: `{where}{key}` must be a mapping, got {value!r}")
    return value


def stage_settings(config: Mapping[str, Any]) -> StageSettings:
    """Settings from a config mapping with ``source``, ``decontamination`` and ``languages``."""
    source = section(config, "source", "")
    decontamination = section(config, "decontamination", "")
    try:
        return StageSettings(
            source=source_settings(source),
            benchmarks=BenchmarkSettings(
                origin=decontamination["origin"],
                local_dir=Path(decontamination["local_dir"])
                if decontamination.get("local_dir")
                else None,
                languages=tuple(config.get("languages", ())),
            ),
            decontamination=DecontaminationSettings(
                min_substring_chars=int(decontamination["min_substring_chars"]),
                ngram_size=int(decontamination["ngram_size"]),
                ngram_overlap=float(decontamination["ngram_overlap"]),
            ),
        )
    except KeyError as error:
        raise ValueError(f"config: missing key {error} in `source` or `decontamination`") from error


def source_settings(source: Mapping[str, Any]) -> SourceSettings:
    stack = section(source, "stack", "source.")
    typecheck = section(source, "typecheck", "source.")
    return SourceSettings(
        kind=source["kind"],
        shards=int(source["shards"]),
        stack=StackLocation(
            dataset=stack["dataset"],
            data_dir=stack["data_dir"],
            local_parquet=stack.get("local_parquet"),
        ),
        local_roots=tuple(source["local_roots"]),
        exclude_dirs=tuple(source["exclude_dirs"]),
        max_files=source.get("max_files"),
        max_functions=source.get("max_functions"),
        max_file_bytes=int(source["max_file_bytes"]),
        typecheck=TypecheckSettings(
            checker=typecheck["checker"],
            mode=typecheck["mode"],
            python_version=str(typecheck["python_version"]),
            batch_size=int(typecheck["batch_size"]),
            timeout_s=float(typecheck["timeout_s"]),
        ),
    )

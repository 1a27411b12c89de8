"""The Stack (``bigcode/the-stack-dedup``, ``data/python``), read as parquet row groups.

Hub only: listing and reading the dataset on the Hub needs network access and a token of an
account that accepted the dataset's terms. The same code reads a local directory of parquet
files with The Stack's columns (a mirror, or the tests' fixture): only the filesystem differs.
The unit of work is one row group of one file, so any number of shards can be cut from the
dataset's files, and a shard streams its row groups in batches instead of loading files.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from multiplt.source.records import Provenance, SourceFile

if TYPE_CHECKING:
    from fsspec import AbstractFileSystem

STACK_SOURCE = "the-stack-dedup"
# The columns read: the file and its provenance (the dataset has ~30; the rest are unused).
STACK_COLUMNS = (
    "content",
    "hexsha",
    "max_stars_repo_name",
    "max_stars_repo_path",
    "max_stars_repo_licenses",
)
_BATCH_ROWS = 1024


class StackAccessError(RuntimeError):
    """The Stack cannot be reached (no token, terms not accepted, no network)."""


@dataclass(frozen=True)
class StackLocation:
    """Where The Stack's parquet files are: the Hub (``local_parquet`` unset) or a directory."""

    dataset: str = "bigcode/the-stack-dedup"
    data_dir: str = "data/python"
    local_parquet: str | None = None

    @property
    def on_hub(self) -> bool:
        return self.local_parquet is None


@dataclass(frozen=True)
class RowGroup:
    file: str
    index: int

    def to_json(self) -> dict[str, Any]:
        return {"file": self.file, "row_group": self.index}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RowGroup:
        return cls(file=data["file"], index=int(data["row_group"]))


def hub_token() -> str:
    """Hub only: the token from ``HF_TOKEN`` or the token file of ``hf auth login``."""
    from huggingface_hub import get_token

    token = get_token()
    if not token:
        raise StackAccessError(
            "The Stack (bigcode/the-stack-dedup) is gated and no Hugging Face token was found: "
            "accept the dataset's terms on the Hub, then set HF_TOKEN or run `hf auth login`; "
            "or set source.kind: local, or source.stack.local_parquet to a local copy"
        )
    return token


def filesystem_for(location: StackLocation) -> AbstractFileSystem:
    if not location.on_hub:
        from fsspec.implementations.local import LocalFileSystem

        return LocalFileSystem()
    from huggingface_hub import HfFileSystem  # hub only

    return HfFileSystem(token=hub_token())


def list_parquet_files(location: StackLocation, filesystem: AbstractFileSystem) -> list[str]:
    if location.local_parquet is not None:
        directory = Path(location.local_parquet)
        if directory.is_file():
            return [str(directory.resolve())]
        if not directory.is_dir():
            raise ValueError(f"source.stack.local_parquet: {directory} does not exist")
        files = sorted(str(path.resolve()) for path in directory.glob("*.parquet"))
    else:
        pattern = f"datasets/{location.dataset}/{location.data_dir}/*.parquet"
        try:
            files = sorted(filesystem.glob(pattern))
        except Exception as error:  # the Hub's errors are many; each means "no access"
            raise StackAccessError(
                f"cannot list {pattern} on the Hub ({type(error).__name__}: {error}); "
                "check the token and that its account accepted the dataset's terms"
            ) from error
    if not files:
        raise ValueError(f"no parquet files found for The Stack at {location}")
    return files


def list_row_groups(filesystem: AbstractFileSystem, files: list[str]) -> list[RowGroup]:
    """Every row group of every file, in file order (reads only each file's footer)."""
    import pyarrow.parquet as pq  # only The Stack's path needs pyarrow

    groups: list[RowGroup] = []
    for file in files:
        with filesystem.open(file, "rb") as handle:
            parquet = pq.ParquetFile(handle)
            # The Arrow schema: the Parquet one names list columns' leaves, not the columns.
            check_columns(file, parquet.schema_arrow.names)
            groups.extend(RowGroup(file, index) for index in range(parquet.num_row_groups))
    return groups


def check_columns(file: str, names: list[str]) -> None:
    missing = [column for column in STACK_COLUMNS if column not in names]
    if missing:
        raise ValueError(f"{file}: not in The Stack's format, missing columns {missing}")


def read_row_group(filesystem: AbstractFileSystem, group: RowGroup) -> Iterator[SourceFile]:
    import pyarrow.parquet as pq

    with filesystem.open(group.file, "rb") as handle:
        parquet = pq.ParquetFile(handle)
        check_columns(group.file, parquet.schema_arrow.names)
        batches = parquet.iter_batches(
            batch_size=_BATCH_ROWS, row_groups=[group.index], columns=list(STACK_COLUMNS)
        )
        for batch in batches:
            for row in batch.to_pylist():
                yield stack_source_file(row)


def stack_source_file(row: dict[str, Any]) -> SourceFile:
    provenance = Provenance(
        source=STACK_SOURCE,
        repository=row["max_stars_repo_name"] or "",
        path=row["max_stars_repo_path"] or "",
        licenses=tuple(row["max_stars_repo_licenses"] or ()),
        hexsha=row["hexsha"] or "",
    )
    # A null content is possible in principle; it is an empty file, not an error.
    return SourceFile(content=row["content"] or "", provenance=provenance)

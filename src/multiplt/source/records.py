"""The records that flow through the source stage: where code came from, and functions."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Provenance:
    """Where a file came from, as far as its source records it.

    ``repository`` is a GitHub ``owner/name`` for The Stack and a label such as
    ``cpython-3.11.7/Lib`` for a local tree; ``licenses`` are SPDX identifiers (The Stack's
    ``max_stars_repo_licenses``), empty where the source does not say.
    """

    source: str
    repository: str
    path: str
    licenses: tuple[str, ...] = ()
    # The Stack's blob hash of the file; empty for local files.
    hexsha: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "repository": self.repository,
            "path": self.path,
            "licenses": list(self.licenses),
            "hexsha": self.hexsha,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Provenance:
        return cls(
            source=data["source"],
            repository=data["repository"],
            path=data["path"],
            licenses=tuple(data.get("licenses", ())),
            hexsha=data.get("hexsha", ""),
        )


@dataclass(frozen=True)
class SourceFile:
    """One input file. ``content`` is bytes for files read from disk (their encoding is not
    known yet) and text for The Stack, whose parquet files store decoded UTF-8."""

    content: str | bytes
    provenance: Provenance


def content_id(code: str) -> str:
    """A stable identifier of a function's exact text (also the exact-dedup key)."""
    return hashlib.sha256(code.encode("utf-8", "surrogatepass")).hexdigest()[:20]


@dataclass(frozen=True)
class PythonFunction:
    """A top-level function with a docstring, as it appears in its file (without decorators)."""

    name: str
    code: str
    docstring: str
    provenance: Provenance
    # 1-based line of the ``def`` in its file.
    line: int
    id: str = field(default="")

    def __post_init__(self) -> None:
        if not self.id:
            object.__setattr__(self, "id", content_id(self.code))

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "code": self.code,
            "docstring": self.docstring,
            "line": self.line,
            **self.provenance.to_json(),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PythonFunction:
        return cls(
            name=data["name"],
            code=data["code"],
            docstring=data["docstring"],
            provenance=Provenance.from_json(data),
            line=data["line"],
            id=data.get("id", ""),
        )

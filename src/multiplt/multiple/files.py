"""Reading and writing MultiPL-E's gzipped JSON files, atomically."""

from __future__ import annotations

import gzip
import json
import os
import tempfile
from pathlib import Path
from typing import Any


class BadInputError(ValueError):
    """An input file is missing, unreadable or malformed; the message names it."""


def read_json_gz(path: Path) -> dict[str, Any]:
    try:
        with gzip.open(path, "rt", encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, EOFError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise BadInputError(f"{path}: cannot read gzipped JSON: {error}") from error
    if not isinstance(data, dict):
        raise BadInputError(f"{path}: expected a JSON object, found {type(data).__name__}")
    return data


def write_json_gz(path: Path, data: dict[str, Any]) -> None:
    """Write ``data`` so that readers see either the old file or the complete new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(descriptor, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb") as handle:
            handle.write(json.dumps(data).encode("utf-8"))
            handle.flush()
            raw.flush()
            os.fsync(raw.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise

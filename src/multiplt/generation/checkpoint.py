"""Resumable sampling: finished items go to a JSON-lines checkpoint as they arrive.

A job killed at any moment and started again samples only the items the checkpoint lacks;
an item is never written twice. A record is one line, written with a single ``write`` and
flushed to disk, so a kill leaves at most one partial last line, which is dropped on restart.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import IO, Any

from tqdm import tqdm

from multiplt.generation.backend import Backend
from multiplt.generation.params import Generation, GenerationRequest


class CheckpointMismatchError(ValueError):
    """The checkpoint holds an item sampled from another prompt or with other parameters."""


class GenerationError(RuntimeError):
    """A backend broke its contract (a missing, unknown or short answer)."""


def read_checkpoint(path: Path) -> dict[str, dict[str, Any]]:
    """Records by key; a last line cut short by a kill is ignored."""
    records: dict[str, dict[str, Any]] = {}
    if not path.exists():
        return records
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if not line.endswith("\n"):
                break  # the partial tail of a killed write
            try:
                record = json.loads(line)
                records[record["key"]] = record
            except (json.JSONDecodeError, KeyError, TypeError):
                continue  # a damaged record is sampled again, not trusted
    return records


def drop_partial_tail(path: Path) -> None:
    """Cut the file after its last newline, so that the next record starts on a new line."""
    if not path.exists():
        return
    data = path.read_bytes()
    complete = data.rfind(b"\n") + 1
    if complete != len(data):
        with path.open("r+b") as handle:
            handle.truncate(complete)


def checkpoint_record(request: GenerationRequest, generation: Generation) -> dict[str, Any]:
    return {
        "key": generation.key,
        "completions": generation.completions,
        "tokens": generation.tokens,
        "params": request.params.to_json(),
        "prompt_digest": request.prompt_digest,
    }


def check_matches(record: dict[str, Any], request: GenerationRequest, path: Path) -> None:
    """Refuse to reuse an item that another prompt or other settings produced."""
    if record.get("params") != request.params.to_json():
        raise CheckpointMismatchError(
            f"{path}: item {request.key!r} was sampled with {record.get('params')}, not "
            f"{request.params.to_json()}; delete the checkpoint or write to another one"
        )
    if record.get("prompt_digest") != request.prompt_digest:
        raise CheckpointMismatchError(
            f"{path}: item {request.key!r} was sampled from another prompt; delete the "
            "checkpoint or write to another one"
        )


def generate_to_jsonl(
    backend: Backend,
    requests: Sequence[GenerationRequest],
    out_path: Path,
    progress: bool = True,
) -> dict[str, Generation]:
    """Completions for every request, by key, sampling only those ``out_path`` lacks."""
    out_path = Path(out_path)
    by_key = _index_requests(requests)
    records = read_checkpoint(out_path)
    for key, record in records.items():
        if key in by_key:
            check_matches(record, by_key[key], out_path)
    missing = [request for request in requests if request.key not in records]
    if missing:
        out_path.parent.mkdir(parents=True, exist_ok=True)
        drop_partial_tail(out_path)
        with (
            out_path.open("a", encoding="utf-8") as handle,
            _Progress(len(requests), len(requests) - len(missing), enabled=progress) as bar,
        ):
            for generation in backend.generate(missing):
                request = _expected(by_key, records, generation)
                record = checkpoint_record(request, generation)
                _append(handle, record)
                records[generation.key] = record
                bar.advance(generation)
    return {request.key: _generation(records, request.key) for request in requests}


def _index_requests(requests: Iterable[GenerationRequest]) -> dict[str, GenerationRequest]:
    by_key: dict[str, GenerationRequest] = {}
    for request in requests:
        if request.key in by_key:
            raise ValueError(f"two requests share the key {request.key!r}")
        by_key[request.key] = request
    return by_key


def _expected(
    by_key: dict[str, GenerationRequest], records: dict[str, Any], generation: Generation
) -> GenerationRequest:
    request = by_key.get(generation.key)
    if request is None:
        raise GenerationError(f"backend answered an unknown key {generation.key!r}")
    if generation.key in records:
        raise GenerationError(f"backend answered {generation.key!r} twice")
    if len(generation.completions) != request.params.n:
        raise GenerationError(
            f"backend returned {len(generation.completions)} completions for "
            f"{generation.key!r}, expected {request.params.n}"
        )
    return request


def _append(handle: IO[str], record: dict[str, Any]) -> None:
    handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    handle.flush()
    os.fsync(handle.fileno())


def _generation(records: dict[str, dict[str, Any]], key: str) -> Generation:
    record = records[key]
    return Generation(key, list(record["completions"]), int(record.get("tokens", 0)))


class _Progress:
    """A tqdm bar over items, with samples and generated tokens per second as postfix."""

    def __init__(self, total: int, done: int, enabled: bool) -> None:
        self.bar = tqdm(
            total=total, initial=done, unit="item", desc="sampling", disable=not enabled
        )
        self.samples = 0
        self.tokens = 0
        self.started = time.monotonic()

    def __enter__(self) -> _Progress:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.bar.close()

    def advance(self, generation: Generation) -> None:
        self.samples += len(generation.completions)
        self.tokens += generation.tokens
        elapsed = max(time.monotonic() - self.started, 1e-9)
        self.bar.set_postfix(samples=self.samples, tok_s=f"{self.tokens / elapsed:.1f}")
        self.bar.update(1)

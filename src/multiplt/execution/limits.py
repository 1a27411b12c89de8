"""Resource limits applied to every sandboxed program."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any


@dataclass(frozen=True)
class Limits:
    """Per-program limits. ``timeout_s`` of ``None`` means the language's default.

    ``output_bytes`` is what is kept of stdout and of stderr (MultiPL-E keeps 2 KiB each);
    ``output_kill_bytes`` is how much a program may print in all before it is stopped, so a
    runaway print cannot keep a worker busy until its timeout.
    """

    timeout_s: float | None = None
    memory_mb: int = 4096
    processes: int = 64
    output_bytes: int = 2048
    output_kill_bytes: int = 16 * 1024 * 1024
    file_size_mb: int = 64
    # A runtime whose start-up is excluded from its timeout (Julia) gets at most this long to start.
    startup_timeout_s: float = 120.0

    def with_overrides(self, **overrides: Any) -> Limits:
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

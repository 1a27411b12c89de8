"""What every sampler is asked and what it answers, whatever the backend.

Test generation, translation and evaluation all describe their work as
:class:`GenerationRequest` values and read back :class:`Generation` values, so a stage never
knows whether vLLM or transformers did the sampling.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class SamplingParams:
    """How to sample: ``n`` completions per prompt, nucleus sampling, stop sequences.

    ``temperature == 0`` means greedy decoding (all ``n`` completions are the same).
    ``seed`` makes a run repeatable: the same requests with the same seed give the same
    completions on the same backend, machine and batch size.
    """

    n: int = 1
    temperature: float = 0.2
    top_p: float = 0.95
    max_new_tokens: int = 512
    stop: tuple[str, ...] = ()
    seed: int = 0

    def __post_init__(self) -> None:
        # Lists arrive from JSON and YAML; a tuple keeps the value hashable for grouping.
        object.__setattr__(self, "stop", tuple(self.stop))
        if self.n < 1:
            raise ValueError(f"n must be at least 1, got {self.n}")
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be at least 1, got {self.max_new_tokens}")
        if any(stop == "" for stop in self.stop):
            raise ValueError("an empty stop sequence would cut every completion to nothing")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0

    def to_json(self) -> dict[str, Any]:
        record = asdict(self)
        record["stop"] = list(self.stop)
        return record

    @classmethod
    def from_json(cls, record: dict[str, Any]) -> SamplingParams:
        return cls(**record)


@dataclass(frozen=True)
class GenerationRequest:
    """One prompt to complete ``params.n`` times; ``key`` names it in checkpoints and results."""

    key: str
    prompt: str
    params: SamplingParams = field(default_factory=SamplingParams)

    @property
    def prompt_digest(self) -> str:
        """Short fingerprint of the prompt, so a checkpoint from another prompt is noticed."""
        return hashlib.sha256(self.prompt.encode("utf-8")).hexdigest()[:16]


@dataclass(frozen=True)
class Generation:
    """The completions of one request, already cut at the first stop sequence.

    ``tokens`` counts the tokens the model generated for them (before cutting): the work
    done, for throughput reports.
    """

    key: str
    completions: list[str]
    tokens: int = 0


def truncate_at_stop(completion: str, stop: Sequence[str]) -> str:
    """The prefix of ``completion`` before the earliest occurrence of any stop sequence.

    This is MultiPL-E's rule: every stop sequence is searched in the whole completion (never
    in the prompt) and the text is cut where the first one starts; nothing else is stripped.
    """
    cut = len(completion)
    for sequence in stop:
        found = completion.find(sequence)
        if found != -1:
            cut = min(cut, found)
    return completion[:cut]


def derive_seed(seed: int, *parts: object) -> int:
    """A seed for one piece of work, stable across runs and independent of Python's hash."""
    text = "\x1f".join(str(part) for part in (seed, *parts))
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big") >> 1

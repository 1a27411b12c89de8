"""Batched sampling with transformers: CPU machines, CI, and GPUs without vLLM.

Where plain ``model.generate`` is called once per prompt, this backend fills each forward
pass with many prompts x samples (``num_return_sequences``), pads on the left so all
prompts end at the same position, reuses the KV cache, and marks a sequence finished as
soon as its completion contains a stop sequence, so a batch ends when all its sequences
have stopped instead of always running ``max_new_tokens`` steps.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from multiplt.generation.models import load_model_and_tokenizer, prepare_tokenizer_for_batches
from multiplt.generation.params import (
    Generation,
    GenerationRequest,
    SamplingParams,
    derive_seed,
    truncate_at_stop,
)

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase


@dataclass(frozen=True)
class Batch:
    """Prompts sampled together, each ``samples`` times; ``chunk`` numbers the pieces of a
    request whose ``n`` is larger than one batch."""

    requests: tuple[GenerationRequest, ...]
    samples: int
    chunk: int = 0

    @property
    def params(self) -> SamplingParams:
        return self.requests[0].params

    @property
    def seed(self) -> int:
        return derive_seed(self.params.seed, self.chunk, *(r.key for r in self.requests))


def plan_batches(requests: Iterable[GenerationRequest], batch_size: int) -> Iterator[Batch]:
    """Batches of at most ``batch_size`` sequences, one set of sampling parameters each.

    Prompts of similar length go together (longest first, so running out of memory happens
    at once rather than hours in), which keeps left padding short.
    """
    groups: dict[SamplingParams, list[GenerationRequest]] = {}
    for request in requests:
        groups.setdefault(request.params, []).append(request)
    for params, group in groups.items():
        group.sort(key=lambda request: len(request.prompt), reverse=True)
        samples = 1 if params.greedy else params.n  # greedy samples are all the same
        if samples >= batch_size:
            for request in group:
                for chunk, start in enumerate(range(0, samples, batch_size)):
                    yield Batch((request,), min(batch_size, samples - start), chunk)
        else:
            per_batch = batch_size // samples
            for start in range(0, len(group), per_batch):
                yield Batch(tuple(group[start : start + per_batch]), samples)


class StopOnSequences:
    """Marks each sequence finished once its completion contains one of ``stop``.

    Only the last few generated tokens are decoded at each step: a stop sequence of L bytes
    that has just been completed lies within the last L + 1 tokens (every token is at least
    one byte). Missing one here would only cost extra steps: completions are cut exactly
    afterwards by :func:`truncate_at_stop`.
    """

    def __init__(
        self, tokenizer: PreTrainedTokenizerBase, stop: Sequence[str], prompt_length: int
    ) -> None:
        self.tokenizer = tokenizer
        self.stop = tuple(stop)
        self.prompt_length = prompt_length
        self.window = max(len(sequence.encode("utf-8")) for sequence in self.stop) + 1
        self.finished: torch.Tensor | None = None

    def __call__(self, input_ids: torch.Tensor, scores: Any, **kwargs: Any) -> torch.Tensor:
        import torch

        if self.finished is None:
            self.finished = torch.zeros(input_ids.shape[0], dtype=torch.bool)
        generated = input_ids.shape[1] - self.prompt_length
        if generated > 0 and not bool(self.finished.all()):
            # One copy to the host per step; the rows are decoded there.
            tails = input_ids[:, -min(generated, self.window) :].cpu()
            rows = (~self.finished).nonzero().flatten().tolist()
            texts = decode(self.tokenizer, tails[rows].tolist())
            for row, text in zip(rows, texts, strict=True):
                if any(sequence in text for sequence in self.stop):
                    self.finished[row] = True
        return self.finished.to(input_ids.device, copy=True)


def decode(tokenizer: PreTrainedTokenizerBase, sequences: list[list[int]]) -> list[str]:
    """Text of each token sequence, special tokens (padding) left out, spaces untouched.

    The Rust tokenizer is called directly where there is one: transformers' ``batch_decode``
    costs several milliseconds per step in Python for a batch of a few hundred, which is
    as long as the model's step on a GPU. Like MultiPL-E, no "clean-up" of spaces around
    punctuation: that would change code.
    """
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        texts: list[str] = backend.decode_batch(sequences, skip_special_tokens=True)
        return texts
    return list(
        tokenizer.batch_decode(
            sequences, skip_special_tokens=True, clean_up_tokenization_spaces=False
        )
    )


# Settings of transformers' generate() that change which tokens are sampled, at the values
# that change nothing.
NEUTRAL_GENERATION_SETTINGS: dict[str, Any] = {
    "repetition_penalty": 1.0,
    "encoder_repetition_penalty": 1.0,
    "no_repeat_ngram_size": 0,
    "typical_p": 1.0,
    "min_p": 0.0,
    "epsilon_cutoff": 0.0,
    "eta_cutoff": 0.0,
    "min_new_tokens": 0,
}


@dataclass
class TransformersBackend:
    """Samples with ``model.generate`` in batches of ``batch_size`` sequences."""

    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    batch_size: int = 64
    # torch.compile the model on GPUs: inside the graphs decoder's CUDA graph (fused
    # kernels), or for generate with a static KV cache; faster steps for a compilation of
    # 15 s or more (and another at the first change of batch shape).
    compile: bool = False
    # "graphs": our own loop (graph_decoding.py), one CUDA graph replayed per token on GPUs,
    # run eagerly elsewhere; "generate": model.generate; "auto": graphs on CUDA where the
    # model allows a static cache, else generate.
    decoder: str = "auto"
    # Steps between two looks for end-of-text and stop sequences (graphs decoder).
    check_every: int = 32
    name: str = field(default="transformers", init=False)

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {self.batch_size}")
        if self.decoder not in DECODERS:
            raise ValueError(f"decoder must be one of {', '.join(DECODERS)}, got {self.decoder!r}")
        prepare_tokenizer_for_batches(self.tokenizer)
        self._graph_decoder: Any = None

    @property
    def compiles(self) -> bool:
        """Whether the model is compiled: ``compile`` is for GPUs (on CPUs a compilation
        costs more than it saves)."""
        return self.compile and self.device.type == "cuda"

    @property
    def resolved_decoder(self) -> str:
        """The decoder that runs: "graphs" or "generate"."""
        if self.decoder != "auto":
            return self.decoder
        if self.device.type != "cuda":
            return "generate"
        from multiplt.generation.graph_decoding import unsupported_reason

        return "generate" if unsupported_reason(self.model) else "graphs"

    @property
    def last_graph_error(self) -> str | None:
        """Why the last batch's CUDA graph could not be captured with the default way of
        finding the nucleus (then another way, or eager decoding, ran)."""
        decoder = self._graph_decoder
        return None if decoder is None else decoder.last_graph_error

    @property
    def last_nucleus(self) -> str | None:
        """How the last batch's graph found the top-p set ("fused", "sort" or "bisect")."""
        decoder = self._graph_decoder
        return None if decoder is None else decoder.last_nucleus

    @classmethod
    def load(
        cls,
        model: str | Path,
        *,
        device: str = "auto",
        dtype: str = "auto",
        batch_size: int | None = None,
        compile: bool = False,
        decoder: str = "auto",
    ) -> TransformersBackend:
        device = resolve_device(device)
        loaded, tokenizer = load_model_and_tokenizer(model, device=device, dtype=dtype)
        size = batch_size or default_batch_size(device)
        return cls(loaded, tokenizer, size, compile=compile, decoder=decoder)

    @property
    def device(self) -> torch.device:
        return self.model.device

    def generate(self, requests: Iterable[GenerationRequest]) -> Iterator[Generation]:
        unique = _unique_by_key(requests)
        pending: dict[str, Generation] = {}
        for batch in plan_batches(unique, self.batch_size):
            for request, completions, tokens in self._sample(batch):
                done = pending.pop(request.key, Generation(request.key, [], 0))
                merged = Generation(
                    request.key, done.completions + completions, done.tokens + tokens
                )
                wanted = 1 if request.params.greedy else request.params.n
                if len(merged.completions) < wanted:
                    pending[request.key] = merged
                elif request.params.greedy:
                    yield Generation(
                        request.key, merged.completions * request.params.n, merged.tokens
                    )
                else:
                    yield merged

    def _sample(self, batch: Batch) -> Iterator[tuple[GenerationRequest, list[str], int]]:
        import torch

        if self.resolved_decoder == "graphs":
            yield from self._sample_with_graphs(batch)
            return
        params = batch.params
        prompts = [request.prompt for request in batch.requests]
        encoded = self.tokenizer(
            prompts,
            return_tensors="pt",
            padding=True,
            # Fewer distinct shapes, fewer recompilations.
            pad_to_multiple_of=64 if self.compiles else None,
        ).to(self.device)
        prompt_length = encoded["input_ids"].shape[1]
        torch.manual_seed(batch.seed)
        with torch.inference_mode():
            output = self.model.generate(  # type: ignore[operator]
                **encoded, **self._generate_options(params, batch.samples, prompt_length)
            )
        texts = self._completions(encoded["input_ids"], output, batch.samples)
        counts = self._generated_token_counts(output[:, prompt_length:])
        for index, request in enumerate(batch.requests):
            rows = range(index * batch.samples, (index + 1) * batch.samples)
            completions = [truncate_at_stop(texts[row], params.stop) for row in rows]
            yield request, completions, sum(counts[row] for row in rows)

    def _sample_with_graphs(
        self, batch: Batch
    ) -> Iterator[tuple[GenerationRequest, list[str], int]]:
        """Like :meth:`_sample`, with our own decoding loop instead of ``generate``."""
        import torch

        from multiplt.generation.graph_decoding import GraphDecoder, StopScanner

        if self._graph_decoder is None:
            self._graph_decoder = GraphDecoder(
                self.model, check_every=self.check_every, compile=self.compiles
            )
        params = batch.params
        prompts = [request.prompt for request in batch.requests]
        encoded = self.tokenizer(prompts, return_tensors="pt", padding=True).to(self.device)
        rows = len(prompts) * batch.samples
        scanner = StopScanner(self.tokenizer, rows, self._eos_token_ids(), params.stop)
        generator = torch.Generator(self.device).manual_seed(batch.seed)
        decoded = self._graph_decoder.decode(
            encoded["input_ids"],
            encoded["attention_mask"],
            samples=batch.samples,
            max_new_tokens=params.max_new_tokens,
            temperature=0.0 if params.greedy else params.temperature,
            top_p=params.top_p,
            generator=generator,
            scanner=scanner,
        )
        # As generate leaves it: each row's tokens after its end are padding.
        generated = decoded.tokens
        ends = torch.tensor(decoded.lengths)[:, None]
        columns = torch.arange(generated.shape[1])[None, :]
        generated = generated.masked_fill(columns >= ends, self.tokenizer.pad_token_id)
        generated = generated[:, : max(decoded.lengths)]
        prompt_ids = encoded["input_ids"].cpu()
        output = torch.cat([prompt_ids.repeat_interleave(batch.samples, dim=0), generated], 1)
        texts = self._completions(prompt_ids, output, batch.samples)
        counts = self._generated_token_counts(generated)
        for index, request in enumerate(batch.requests):
            rows_of = range(index * batch.samples, (index + 1) * batch.samples)
            completions = [truncate_at_stop(texts[row], params.stop) for row in rows_of]
            yield request, completions, sum(counts[row] for row in rows_of)

    def _eos_token_ids(self) -> list[int]:
        """The end-of-text tokens generate() would stop at: the generation config's."""
        eos = self.model.generation_config.eos_token_id
        if eos is None:
            return []
        return [eos] if isinstance(eos, int) else list(eos)

    def _generate_options(
        self, params: SamplingParams, samples: int, prompt_length: int
    ) -> dict[str, Any]:
        from transformers import LogitsProcessorList, StoppingCriteriaList

        from multiplt.generation.nucleus import NucleusFilter

        options: dict[str, Any] = {
            "max_new_tokens": params.max_new_tokens,
            "num_return_sequences": samples,
            "pad_token_id": self.tokenizer.pad_token_id,
            "do_sample": not params.greedy,
        }
        if not params.greedy:
            # Temperature and top-p are applied by NucleusFilter (same result, no full sort);
            # transformers' own are switched off, and so is its default top-k of 50, which
            # vLLM and MultiPL-E's nucleus sampling do not have.
            options.update(temperature=1.0, top_p=1.0, top_k=0)
            nucleus = NucleusFilter(params.temperature, params.top_p)
            options["logits_processor"] = LogitsProcessorList([nucleus])
        options.update(self._neutral_defaults())
        if params.stop:
            criteria = StopOnSequences(self.tokenizer, params.stop, prompt_length)
            options["stopping_criteria"] = StoppingCriteriaList([criteria])
        if self.compiles:
            options["cache_implementation"] = "static"
        return options

    def _neutral_defaults(self) -> dict[str, Any]:
        """Switch off what a model's own ``generation_config`` (from the hub) may turn on:
        generate() applies it to anything not passed, and MultiPL-E samples without it."""
        configured = self.model.generation_config
        return {
            name: neutral
            for name, neutral in NEUTRAL_GENERATION_SETTINGS.items()
            if getattr(configured, name, None) not in (None, neutral)
        }

    def _completions(
        self, prompt_ids: torch.Tensor, output: torch.Tensor, samples: int
    ) -> list[str]:
        """Generated text per row: the decoded sequence minus the decoded prompt.

        Decoding the whole sequence, as MultiPL-E does, keeps characters that a tokenizer
        only produces across the prompt/completion boundary (SentencePiece spaces).
        """
        prompts = decode(self.tokenizer, prompt_ids.tolist())
        full = decode(self.tokenizer, output.tolist())
        generated = decode(self.tokenizer, output[:, prompt_ids.shape[1] :].tolist())
        texts = []
        for row, text in enumerate(full):
            prompt = prompts[row // samples]
            texts.append(text[len(prompt) :] if text.startswith(prompt) else generated[row])
        return texts

    def _generated_token_counts(self, generated: torch.Tensor) -> list[int]:
        """Tokens each row generated: finished rows are filled with padding to the end."""
        import torch

        produced = generated != self.tokenizer.pad_token_id
        trailing_padding = (torch.flip(produced, dims=[1]).cumsum(dim=1) == 0).sum(dim=1)
        counts: list[int] = (generated.shape[1] - trailing_padding).tolist()
        return counts


DECODERS = ("auto", "graphs", "generate")


def default_batch_size(device: str) -> int:
    """Sequences per forward pass: a GPU step costs about the same for 1 or 256 sequences
    of a small model; a CPU step costs in proportion, and bigger batches only pad more."""
    return 256 if device.startswith("cuda") else 32


def resolve_device(device: str) -> str:
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _unique_by_key(requests: Iterable[GenerationRequest]) -> list[GenerationRequest]:
    unique: dict[str, GenerationRequest] = {}
    for request in requests:
        if request.key in unique:
            raise ValueError(f"two requests share the key {request.key!r}")
        unique[request.key] = request
    return list(unique.values())

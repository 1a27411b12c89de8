"""The one interface every sampling stage uses, and the choice of backend behind it."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Literal, Protocol, runtime_checkable

from multiplt.generation.params import Generation, GenerationRequest

BackendKind = Literal["auto", "vllm", "transformers"]


@runtime_checkable
class Backend(Protocol):
    """Samples completions; results may come back in any order, each exactly once per key.

    Completions are already cut at the first stop sequence (:func:`truncate_at_stop`).
    """

    name: str

    def generate(self, requests: Iterable[GenerationRequest]) -> Iterator[Generation]: ...


def vllm_is_installed() -> bool:
    # find_spec, not import: importing vLLM takes seconds and starts nothing we need yet.
    return importlib.util.find_spec("vllm") is not None


def cuda_is_available() -> bool:
    import torch

    return bool(torch.cuda.is_available())


def choose_backend(kind: BackendKind) -> Literal["vllm", "transformers"]:
    """``auto`` is vLLM where it is installed and a GPU is present, transformers elsewhere."""
    if kind != "auto":
        return kind
    return "vllm" if vllm_is_installed() and cuda_is_available() else "transformers"


def make_backend(
    kind: BackendKind = "auto",
    *,
    model: str | Path,
    dtype: str = "auto",
    device: str = "auto",
    batch_size: int | None = None,
    tensor_parallel_size: int = 1,
    compile: bool = False,
    max_model_len: int | None = None,
    gpu_memory_utilization: float = 0.9,
) -> Backend:
    """A loaded backend for ``model`` (hub id, local directory; see ``models.resolve_model``).

    ``batch_size`` is the number of sequences (prompts x samples) per forward pass for
    transformers (default: 256 on GPUs, 32 on CPUs), and the number of prompts handed to
    vLLM's scheduler at a time (default 256).
    ``compile`` (transformers on GPU) compiles the model with torch.compile.
    """
    chosen = choose_backend(kind)
    if chosen == "vllm":
        from multiplt.generation.vllm_backend import VLLMBackend

        return VLLMBackend.load(
            model,
            dtype=dtype,
            tensor_parallel_size=tensor_parallel_size,
            prompts_per_call=batch_size or 256,
            max_model_len=max_model_len,
            gpu_memory_utilization=gpu_memory_utilization,
        )
    from multiplt.generation.transformers_backend import TransformersBackend

    return TransformersBackend.load(
        model, device=device, dtype=dtype, batch_size=batch_size, compile=compile
    )

"""The generation engine: one sampler for every stage that samples a model.

Test generation, translation and evaluation describe their work as
:class:`GenerationRequest` values and get :class:`Generation` values back from a
:class:`Backend` (vLLM on GPUs, transformers elsewhere), usually through
:func:`generate_to_jsonl`, which makes the work resumable.

Heavy libraries (torch, transformers, vLLM) are imported only when a backend or a model is
built, so importing this package is cheap.
"""

from multiplt.generation.backend import Backend, choose_backend, make_backend
from multiplt.generation.checkpoint import (
    CheckpointMismatchError,
    GenerationError,
    generate_to_jsonl,
    read_checkpoint,
)
from multiplt.generation.models import (
    ModelNotFoundError,
    build_random_model,
    build_tiny_model,
    prepare_embedded_model,
    prepare_model,
    resolve_model,
)
from multiplt.generation.multiple_e import load_problems, problem_requests, write_completions_dir
from multiplt.generation.params import (
    Generation,
    GenerationRequest,
    SamplingParams,
    truncate_at_stop,
)

__all__ = [
    "Backend",
    "CheckpointMismatchError",
    "Generation",
    "GenerationError",
    "GenerationRequest",
    "ModelNotFoundError",
    "SamplingParams",
    "build_random_model",
    "build_tiny_model",
    "choose_backend",
    "generate_to_jsonl",
    "load_problems",
    "make_backend",
    "prepare_embedded_model",
    "prepare_model",
    "problem_requests",
    "read_checkpoint",
    "resolve_model",
    "truncate_at_stop",
    "write_completions_dir",
]

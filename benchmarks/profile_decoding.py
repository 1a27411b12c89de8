"""Where a step of the CUDA-graph decoder spends its time (GPU only; run on demand).

    python3 benchmarks/profile_decoding.py [--steps 256] [--compile]

Same model and prompts as ``bench_generation.py`` (StarCoderBase-1B's shape, random
weights, bf16, 4 prompts x 50 samples). It prints

* milliseconds per step of :class:`~multiplt.generation.graph_decoding.GraphDecoder` for
  greedy decoding (the forward pass and an argmax: the floor that sampling adds to) and
  for each way of finding the top-p set, so that sampling's share of a step is the
  difference;
* the GPU kernels of a few eager steps by total time (torch.profiler), grouped by op.

``--compile`` repeats the timings with the model's forward compiled by torch.compile
(Inductor's fused kernels, captured in our own graph; ``--compile-mode`` picks the mode).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

try:
    import multiplt  # noqa: F401
except ImportError:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import torch

from multiplt.generation.graph_decoding import NUCLEUS_METHODS, GraphDecoder
from multiplt.generation.models import build_random_model, prepare_tokenizer_for_batches

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_generation import PROMPTS  # noqa: E402


def decode_seconds(
    decoder: GraphDecoder,
    encoded: dict[str, torch.Tensor],
    samples: int,
    steps: int,
    temperature: float,
    top_p: float,
    repeats: int = 3,
) -> float:
    """The fastest of ``repeats`` timed decodes, after one warm-up."""
    times = []
    for attempt in range(repeats + 1):
        generator = torch.Generator("cuda").manual_seed(attempt)
        torch.cuda.synchronize()
        start = time.perf_counter()
        decoder.decode(
            encoded["input_ids"],
            encoded["attention_mask"],
            samples=samples,
            max_new_tokens=steps,
            temperature=temperature,
            top_p=top_p,
            generator=generator,
        )
        torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return min(times[1:])


def timing_table(
    model: torch.nn.Module, encoded: dict[str, torch.Tensor], samples: int, steps: int, label: str
) -> list[str]:
    rows = len(PROMPTS) * samples
    variants = [("greedy", 0.0, "sort")] + [(f"top-p {m}", 0.8, m) for m in NUCLEUS_METHODS]
    lines = []
    for name, temperature, nucleus in variants:
        decoder = GraphDecoder(model, use_graphs=True, nucleus=nucleus)  # type: ignore[arg-type]
        try:
            seconds = decode_seconds(decoder, encoded, samples, steps, temperature, 0.95)
        except Exception as error:  # noqa: BLE001 - report and go on with the others
            lines.append(f"| {label} | {name} | failed: {str(error).splitlines()[0][:120]} | |")
            continue
        graph = "graph" if decoder.last_graph_error is None else decoder.last_graph_error
        lines.append(
            f"| {label} | {name} ({graph}) | {1000 * seconds / steps:.3f} "
            f"| {rows * steps / seconds:,.0f} |"
        )
        print(lines[-1], file=sys.stderr, flush=True)
    return lines


def kernel_profile(
    model: torch.nn.Module, encoded: dict[str, torch.Tensor], samples: int, steps: int = 8
) -> str:
    from torch.profiler import ProfilerActivity, profile

    decoder = GraphDecoder(model, use_graphs=False)  # type: ignore[arg-type]
    arguments = dict(samples=samples, max_new_tokens=steps, temperature=0.8, top_p=0.95)
    decoder.decode(encoded["input_ids"], encoded["attention_mask"], generator=None, **arguments)
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as profiler:
        decoder.decode(encoded["input_ids"], encoded["attention_mask"], generator=None, **arguments)
        torch.cuda.synchronize()
    return str(profiler.key_averages().table(sort_by="self_device_time_total", row_limit=30))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--samples", type=int, default=50)
    parser.add_argument("--steps", type=int, default=256)
    parser.add_argument("--compile", action="store_true")
    parser.add_argument(
        "--compile-mode", help="torch.compile's mode, e.g. max-autotune-no-cudagraphs"
    )
    parser.add_argument("--no-kernels", action="store_true", help="skip the kernel profile")
    options = parser.parse_args()
    model, tokenizer = build_random_model("1b", device="cuda", dtype="bfloat16")
    model.generation_config.eos_token_id = None
    prepare_tokenizer_for_batches(tokenizer)
    encoded = tokenizer(PROMPTS, return_tensors="pt", padding=True).to("cuda")
    if not options.no_kernels:
        print(kernel_profile(model, encoded, options.samples))
    table = ["| forward | decoding | ms per step | tokens/s |", "|---|---|---:|---:|"]
    table += timing_table(model, encoded, options.samples, options.steps, "eager")
    if options.compile:
        model.forward = torch.compile(model.forward, mode=options.compile_mode)
        label = f"compiled ({options.compile_mode or 'default'})"
        table += timing_table(model, encoded, options.samples, options.steps, label)
    print(torch.cuda.get_device_name(), f"torch {torch.__version__}")
    print("\n".join(table))


if __name__ == "__main__":
    main()

"""Top-p sampling of one decoding step: the Triton kernels against torch's sort (GPU only).

    python3 benchmarks/bench_nucleus.py [--rows 200] [--vocabulary 49152]

Times one call of each sampler on [rows, vocabulary] bf16 logits (temperature 0.8, top-p
0.95), captured in a CUDA graph as the decoder runs it and replayed, for two kinds of
logits: "flat" (random weights: the nucleus is most of the vocabulary) and "peaked" (a
trained model's: a few tokens). The baseline is ``sort`` (sample_tokens' sort, cumulative
sum and race); ``fused`` rows try launch settings of nucleus_kernels.py. Each fused row
also says whether it drew exactly the tokens that the sorted nucleus and the same Exp(1)
draws give.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

try:
    import multiplt  # noqa: F401
except ImportError:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import torch

from multiplt.generation.graph_decoding import exponential_race, nucleus_sorted, sample_tokens
from multiplt.generation.nucleus_kernels import DEFAULT_LAUNCH, Launch, fused_nucleus_sample

TEMPERATURE, TOP_P = 0.8, 0.95
LAUNCHES = [
    DEFAULT_LAUNCH,
    Launch(ways=2),
    Launch(ways=8),
    Launch(ways=16),
    Launch(ways=4, block=1024, num_warps=8),
    Launch(ways=4, target_splits=8),
]


def graph_milliseconds(
    run: Callable[[], torch.Tensor], generator: torch.Generator, replays: int = 50
) -> float:
    """Median milliseconds of one replay of ``run`` (drawing from ``generator``) captured
    in a CUDA graph."""
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(3):
            run()  # compiles the kernels, warms the allocator
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    graph.register_generator_state(generator)
    with torch.cuda.graph(graph):
        run()
    times = []
    for _ in range(replays):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        graph.replay()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    return sorted(times)[len(times) // 2]


def reference_tokens(logits: torch.Tensor, race: torch.Tensor) -> torch.Tensor:
    """The sorted nucleus and the race ``argmax(p / r)`` over it, in float32."""
    kept_scores, tokens = nucleus_sorted(logits.float() / TEMPERATURE, TOP_P)
    probs = torch.softmax(kept_scores, dim=-1)  # zero outside the nucleus
    sorted_race = race.gather(1, tokens)
    return tokens.gather(1, (probs / sorted_race).argmax(dim=1, keepdim=True)).squeeze(1)


def regime_rows(regime: str, logits: torch.Tensor, generator: torch.Generator) -> list[str]:
    race = torch.empty(logits.shape, device="cuda").exponential_(generator=generator)
    expected = reference_tokens(logits, race)
    timings = {
        nucleus: graph_milliseconds(
            lambda nucleus=nucleus: sample_tokens(logits, TEMPERATURE, TOP_P, generator, nucleus),
            generator,
        )
        for nucleus in ("sort", "bisect")
    }
    baseline = timings["sort"]
    lines = [
        f"| {regime} | {nucleus} | - | {ms:.3f} | {baseline / ms:.1f}x | - |"
        for nucleus, ms in timings.items()
    ]
    for launch in LAUNCHES:
        drawn = fused_nucleus_sample(logits, race, TEMPERATURE, TOP_P, launch)
        # As sample_tokens(..., "fused") runs it: fresh draws, then the kernels.
        ms = graph_milliseconds(
            lambda launch=launch: fused_nucleus_sample(
                logits, exponential_race(logits, generator), TEMPERATURE, TOP_P, launch
            ),
            generator,
        )
        settings = (
            f"{launch.ways} ways, block {launch.block}, splits {launch.target_splits},"
            f" warps {launch.num_warps}"
        )
        same = "yes" if torch.equal(drawn, expected) else "NO"
        lines.append(
            f"| {regime} | fused | {settings} | {ms:.3f} | {baseline / ms:.1f}x | {same} |"
        )
        print(lines[-1], file=sys.stderr, flush=True)
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=200)
    parser.add_argument("--vocabulary", type=int, default=49152)
    options = parser.parse_args()
    shape = (options.rows, options.vocabulary)
    generator = torch.Generator("cuda").manual_seed(0)
    lines = [
        f"{options.rows} rows x {options.vocabulary} tokens, bf16, temperature {TEMPERATURE},"
        f" top-p {TOP_P}, {torch.cuda.get_device_name()}, torch {torch.__version__}",
        "",
        "| logits | sampler | launch | ms per step | vs sort | same tokens |",
        "|---|---|---|---:|---:|---|",
    ]
    for regime, spread in (("flat", 1.0), ("peaked", 4.0)):
        logits = torch.randn(shape, device="cuda", generator=generator) * spread
        lines += regime_rows(regime, logits.bfloat16(), generator)
    print("\n".join(lines))


if __name__ == "__main__":
    main()

"""Our own decoding loop (graph_decoding.py) on CPU, where it runs the step the GPU records
into a CUDA graph eagerly: same tokens as ``model.generate`` for greedy decoding, left
padding, the nucleus of NucleusFilter, sampling from the right distribution, end-of-text
and stop sequences."""

from __future__ import annotations

import importlib.util
import os

import pytest

torch = pytest.importorskip("torch", reason="needs torch and transformers")
pytest.importorskip("transformers", reason="needs torch and transformers")

from multiplt.generation.graph_decoding import (  # noqa: E402
    GraphDecoder,
    StopScanner,
    nucleus_bisect,
    nucleus_sorted,
    sample_tokens,
    unsupported_reason,
)
from multiplt.generation.models import build_random_model  # noqa: E402
from multiplt.generation.nucleus import NucleusFilter  # noqa: E402
from multiplt.generation.params import GenerationRequest, SamplingParams  # noqa: E402
from multiplt.generation.transformers_backend import TransformersBackend  # noqa: E402

PROMPTS = [
    "def add(a, b):\n    return",
    "import os\nimport sys\n\n\nclass Config:\n    def __init__(self, path):\n        ",
    "x",
]


@pytest.fixture(scope="module")
def tiny() -> tuple:
    return build_random_model("tiny", seed=3)


def greedy_with_generate(model, tokenizer, prompt: str, new_tokens: int) -> list[int]:
    encoded = tokenizer(prompt, return_tensors="pt")
    with torch.inference_mode():
        output = model.generate(
            **encoded,
            do_sample=False,
            max_new_tokens=new_tokens,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=None,
        )
    return output[0, encoded["input_ids"].shape[1] :].tolist()


def run(decoder: GraphDecoder, tokenizer, prompts: list[str], steps: int, **options):
    """``decoder`` on ``prompts`` (greedy, one sample each, unless ``options`` say)."""
    encoded = tokenizer(prompts, return_tensors="pt", padding=True)
    arguments = dict(samples=1, temperature=0.0, top_p=1.0, generator=None) | options
    return decoder.decode(
        encoded["input_ids"], encoded["attention_mask"], max_new_tokens=steps, **arguments
    )


def test_greedy_tokens_are_generates_with_left_padding(tiny) -> None:
    model, tokenizer = tiny
    encoded = tokenizer(PROMPTS, return_tensors="pt", padding=True)
    assert encoded["attention_mask"][2].sum() < encoded["attention_mask"].shape[1]  # padded
    decoded = run(GraphDecoder(model, check_every=4), tokenizer, PROMPTS, 24, samples=2)
    assert decoded.tokens.shape == (6, 24) and not decoded.graph
    for index, prompt in enumerate(PROMPTS):
        expected = greedy_with_generate(model, tokenizer, prompt, 24)
        assert decoded.tokens[2 * index].tolist() == expected
        assert decoded.tokens[2 * index + 1].tolist() == expected


def test_model_attention_is_restored(tiny) -> None:
    model, tokenizer = tiny
    before = model.config._attn_implementation
    run(GraphDecoder(model), tokenizer, PROMPTS[:1], 2)
    assert model.config._attn_implementation == before
    assert unsupported_reason(model) is None


@pytest.mark.parametrize("top_p", [0.3, 0.9, 0.95, 1.0])
def test_nucleus_is_nucleus_filters(top_p: float) -> None:
    logits = torch.randn(16, 500, generator=torch.Generator().manual_seed(1)) * 3
    expected = NucleusFilter(0.7, top_p, candidates=8)(torch.empty(0), logits)
    scores = logits / 0.7
    if top_p < 1:
        kept_scores, tokens = nucleus_sorted(scores, top_p)
        ours = torch.full_like(scores, float("-inf")).scatter(1, tokens, kept_scores)
    else:
        ours = scores
    assert torch.equal(torch.isfinite(ours), torch.isfinite(expected))
    assert torch.allclose(ours[torch.isfinite(ours)], expected[torch.isfinite(expected)])


@pytest.mark.parametrize("top_p", [0.3, 0.9, 0.95])
def test_bisected_nucleus_is_the_sorted_one(top_p: float) -> None:
    logits = torch.randn(16, 500, generator=torch.Generator().manual_seed(2)) * 3
    kept_scores, tokens = nucleus_sorted(logits, top_p)
    sorted_kept = torch.zeros_like(logits, dtype=torch.bool)
    sorted_kept.scatter_(1, tokens, torch.isfinite(kept_scores))
    assert torch.equal(nucleus_bisect(torch.softmax(logits, dim=-1), top_p), sorted_kept)


@pytest.mark.parametrize("nucleus", ["sort", "bisect"])
@pytest.mark.parametrize(("temperature", "top_p"), [(0.8, 0.95), (1.0, 0.6), (0.5, 1.0)])
def test_samples_follow_the_filtered_distribution(
    temperature: float, top_p: float, nucleus: str
) -> None:
    logits = torch.tensor([2.0, 1.5, 1.0, 0.5, 0.0, -0.5, -1.0, -3.0])
    filtered = NucleusFilter(temperature, top_p)(torch.empty(0), logits[None])
    expected = torch.softmax(filtered, dim=-1)[0]
    draws = 40_000
    generator = torch.Generator().manual_seed(7)
    tokens = sample_tokens(logits.expand(draws, -1), temperature, top_p, generator, nucleus)
    frequencies = torch.bincount(tokens, minlength=len(logits)).double() / draws
    assert torch.all(frequencies[expected == 0] == 0)  # never outside the nucleus
    assert torch.allclose(frequencies, expected.double(), atol=0.01)


@pytest.mark.parametrize("nucleus", ["bisect", "fused"])
def test_decoding_with_other_nucleus_methods_runs(tiny, nucleus: str) -> None:
    if nucleus == "fused" and importlib.util.find_spec("triton") is None:
        pytest.skip("Triton is not installed")
    if nucleus == "fused" and os.environ.get("TRITON_INTERPRET") != "1":
        pytest.skip("Triton runs CPU tensors in its interpreter only (GPU: *_cuda.py)")
    model, tokenizer = tiny
    # Few steps: without a GPU, Triton's interpreter runs the fused kernels.
    generator = torch.Generator().manual_seed(0)
    decoded = run(
        GraphDecoder(model, nucleus=nucleus), tokenizer, PROMPTS[:2], 3,
        samples=2, temperature=0.8, top_p=0.95, generator=generator,
    )  # fmt: skip
    assert decoded.tokens.shape == (4, 3) and decoded.lengths == [3] * 4
    assert bool(((decoded.tokens >= 0) & (decoded.tokens < len(tokenizer))).all())


def test_decoding_goes_on_without_compile_where_it_fails(tiny, monkeypatch) -> None:
    def broken(*_args, **_kwargs):
        raise torch._dynamo.exc.TorchDynamoException("backend compiler failed")

    monkeypatch.setattr(torch, "compile", lambda model: broken)
    model, tokenizer = tiny
    decoder = GraphDecoder(model, compile=True)
    decoded = run(decoder, tokenizer, PROMPTS, 4)
    assert decoded.tokens.shape == (3, 4)
    assert not decoder.compile and "backend compiler failed" in decoder.compile_error


def test_unknown_nucleus_method_is_refused(tiny) -> None:
    with pytest.raises(ValueError, match="nucleus must be auto or one of"):
        GraphDecoder(tiny[0], nucleus="topk")


def test_sampling_is_seeded() -> None:
    logits = torch.randn(32, 100)
    first = sample_tokens(logits, 0.8, 0.95, torch.Generator().manual_seed(5))
    again = sample_tokens(logits, 0.8, 0.95, torch.Generator().manual_seed(5))
    other = sample_tokens(logits, 0.8, 0.95, torch.Generator().manual_seed(6))
    assert torch.equal(first, again) and not torch.equal(first, other)


def test_scanner_finds_end_of_text_and_stop_sequences(tiny) -> None:
    _, tokenizer = tiny
    eos = tokenizer.eos_token_id
    text = [tokenizer.encode(s) for s in ("a = 1\n", "def f():\n", "print(x)")]
    rows = [
        text[0] + [eos] + text[1],  # end-of-text after the first line
        text[1] + text[0] + text[0],  # stop sequence "\n" at the end of the first line
        (text[2] * 4),  # neither
    ]
    width = max(len(row) for row in rows)
    tokens = torch.tensor([row + [eos] * (width - len(row)) for row in rows])
    tokens[2, len(rows[2]) :] = tokenizer.encode("y")[0]
    scanner = StopScanner(tokenizer, 3, eos_token_ids=[eos], stop=["\ndef", ":\n"])
    for start in range(0, width, 3):  # chunk by chunk, as the loop does
        scanner.scan(tokens, start, min(start + 3, width))
    assert scanner.lengths[0] == len(text[0]) + 1
    # The stop ":\n" is complete with the token that ends "def f():\n".
    expected = next(end for end in range(1, width) if ":\n" in tokenizer.decode(rows[1][:end]))
    assert scanner.lengths[1] == expected
    assert scanner.lengths[2] is None and not scanner.done


def backends(model, tokenizer, **options) -> tuple[TransformersBackend, TransformersBackend]:
    return (
        TransformersBackend(model, tokenizer, decoder="generate", **options),
        TransformersBackend(model, tokenizer, decoder="graphs", **options),
    )


@pytest.mark.parametrize("check_every", [1, 3, 32])
def test_greedy_completions_and_stops_are_generates(tiny, check_every: int) -> None:
    model, tokenizer = tiny
    params = SamplingParams(n=3, temperature=0, max_new_tokens=40, stop=("\n", " return"))
    requests = [GenerationRequest(f"p{i}", p, params) for i, p in enumerate(PROMPTS)]
    plain, ours = backends(model, tokenizer, check_every=check_every)
    expected = {g.key: g for g in plain.generate(requests)}
    for generation in ours.generate(requests):
        assert generation == expected[generation.key]


def test_end_of_text_ends_a_completion_like_generate(tiny) -> None:
    model, tokenizer = tiny
    # Make a token greedy decoding emits early the end of text.
    first = greedy_with_generate(model, tokenizer, PROMPTS[0], 6)
    saved = model.generation_config.eos_token_id
    model.generation_config.eos_token_id = first[3]
    try:
        params = SamplingParams(n=1, temperature=0, max_new_tokens=30)
        requests = [GenerationRequest(f"p{i}", p, params) for i, p in enumerate(PROMPTS)]
        plain, ours = backends(model, tokenizer)
        expected = {g.key: g for g in plain.generate(requests)}
        got = {g.key: g for g in ours.generate(requests)}
    finally:
        model.generation_config.eos_token_id = saved
    assert got == expected
    assert got["p0"].tokens < 30


def test_stops_early_once_every_row_finished(tiny) -> None:
    model, tokenizer = tiny
    scanner = StopScanner(tokenizer, 3, stop=[tokenizer.decode(t) for t in range(256)])
    decoded = run(GraphDecoder(model, check_every=2), tokenizer, PROMPTS, 200, scanner=scanner)
    assert scanner.done and decoded.steps < 20


def test_sampled_runs_are_repeatable(tiny) -> None:
    model, tokenizer = tiny
    params = SamplingParams(n=4, temperature=0.8, top_p=0.95, max_new_tokens=12, seed=1)
    requests = [GenerationRequest(f"p{i}", p, params) for i, p in enumerate(PROMPTS)]
    _, ours = backends(model, tokenizer)
    first = list(ours.generate(requests))
    assert first == list(ours.generate(requests))
    assert all(g.tokens == 4 * 12 and len(set(g.completions)) > 1 for g in first)
    other = [GenerationRequest(r.key, r.prompt, SamplingParams(**{**params.to_json(), "seed": 2}))
             for r in requests]  # fmt: skip
    assert list(ours.generate(other)) != first


def test_decoder_choice(tiny) -> None:
    model, tokenizer = tiny
    assert TransformersBackend(model, tokenizer).resolved_decoder == "generate"  # CPU
    assert TransformersBackend(model, tokenizer, decoder="graphs").resolved_decoder == "graphs"
    with pytest.raises(ValueError, match="decoder"):
        TransformersBackend(model, tokenizer, decoder="fast")

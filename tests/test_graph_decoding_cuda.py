"""The CUDA-graph decoder on a GPU: the graph is captured, it decodes what the eager step
decodes, the Triton nucleus runs inside it, and so does a compiled model. Skipped without
CUDA (the CPU tests in test_graph_decoding.py run the same step eagerly)."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch", reason="needs torch and transformers")
pytest.importorskip("transformers", reason="needs torch and transformers")
if not torch.cuda.is_available():
    pytest.skip("no CUDA device", allow_module_level=True)

from multiplt.generation.graph_decoding import GraphDecoder, default_nucleus  # noqa: E402
from multiplt.generation.models import (  # noqa: E402
    build_random_model,
    prepare_tokenizer_for_batches,
)

PROMPTS = ["def add(a, b):\n    return", "import os\n\n\nclass Config:\n    def ", "x"]
STEPS = 40


@pytest.fixture(scope="module")
def tiny() -> tuple:
    model, tokenizer = build_random_model("tiny", seed=3, device="cuda", dtype="float32")
    prepare_tokenizer_for_batches(tokenizer)
    return model, tokenizer


def decode(decoder: GraphDecoder, tokenizer, temperature: float, seed: int = 0):
    encoded = tokenizer(PROMPTS, return_tensors="pt", padding=True).to("cuda")
    return decoder.decode(
        encoded["input_ids"],
        encoded["attention_mask"],
        samples=4,
        max_new_tokens=STEPS,
        temperature=temperature,
        top_p=0.95,
        generator=torch.Generator("cuda").manual_seed(seed),
    )


def test_graph_replays_decode_what_the_eager_step_decodes(tiny) -> None:
    model, tokenizer = tiny
    graphed = decode(GraphDecoder(model, use_graphs=True), tokenizer, 0.0)
    eager = decode(GraphDecoder(model, use_graphs=False), tokenizer, 0.0)
    assert graphed.graph and not eager.graph
    assert torch.equal(graphed.tokens, eager.tokens)


def test_fused_nucleus_samples_inside_the_graph_reproducibly(tiny) -> None:
    model, tokenizer = tiny
    assert default_nucleus(torch.device("cuda")) == "fused"
    decoder = GraphDecoder(model, use_graphs=True)
    first = decode(decoder, tokenizer, 0.8, seed=1)
    assert first.graph and decoder.last_nucleus == "fused", decoder.last_graph_error
    again = decode(decoder, tokenizer, 0.8, seed=1)
    other = decode(decoder, tokenizer, 0.8, seed=2)
    assert torch.equal(first.tokens, again.tokens)
    assert not torch.equal(first.tokens, other.tokens)


def test_compiled_model_decodes_like_the_eager_one(tiny) -> None:
    model, tokenizer = tiny
    compiled = decode(GraphDecoder(model, use_graphs=True, compile=True), tokenizer, 0.0)
    eager = decode(GraphDecoder(model, use_graphs=True), tokenizer, 0.0)
    assert compiled.graph
    assert torch.equal(compiled.tokens, eager.tokens)

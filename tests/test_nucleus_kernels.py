"""The Triton top-p sampler: the nucleus it keeps and the token it draws.

On a GPU the kernels are compiled; elsewhere they run in Triton's interpreter on CPU
tensors (``TRITON_INTERPRET=1``, which tests/conftest.py sets on machines without a GPU).
The interpreter is slow, so the inputs are small -- but with several slices per row, a
vocabulary that is no multiple of a chunk, and bf16 logits, as on the GPU.
"""

from __future__ import annotations

import importlib.util
import math
import os
from types import ModuleType

import pytest

torch = pytest.importorskip("torch")
if importlib.util.find_spec("triton") is None:
    pytest.skip("Triton is not installed (pip install triton)", allow_module_level=True)

from multiplt.generation.graph_decoding import nucleus_sorted  # noqa: E402

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
ROWS, VOCABULARY = 8, 1300  # 3 slices of 512 logits, the last one short


@pytest.fixture(scope="module")
def kernels() -> ModuleType:
    if DEVICE == "cpu" and os.environ.get("TRITON_INTERPRET") != "1":
        pytest.skip("no GPU, and TRITON_INTERPRET=1 was not set before Triton was imported")
    return importlib.import_module("multiplt.generation.nucleus_kernels")


def random_logits(seed: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return (torch.randn(ROWS, VOCABULARY, generator=generator) * 3).to(DEVICE, dtype)


def sorted_nucleus(logits: torch.Tensor, temperature: float, top_p: float) -> torch.Tensor:
    """The reference: each row's tokens, most likely first, and how many are kept."""
    kept_scores, tokens = nucleus_sorted(logits.float() / temperature, top_p)
    return tokens, torch.isfinite(kept_scores).sum(dim=1)


def test_plan_covers_the_vocabulary_in_whole_chunks(kernels: ModuleType) -> None:
    for vocabulary in (8, 500, 1300, 32016, 49152, 262144):
        for launch in (kernels.DEFAULT_LAUNCH, kernels.Launch(block=256, target_splits=5)):
            splits, per_split = kernels.plan_splits(vocabulary, launch)
            assert per_split % launch.block == 0
            assert (splits - 1) * per_split < vocabulary <= splits * per_split
            assert splits <= launch.target_splits


@pytest.mark.parametrize(
    ("dtype", "passes"), [(torch.bfloat16, 4), (torch.float16, 4), (torch.float32, 8)]
)
def test_order_keys_order_as_the_floats_do(kernels: ModuleType, dtype, passes: int) -> None:
    values = [-math.inf, -3.5, -1e-3, -0.0, 0.0, 1e-3, 2.0, 1e4, math.inf]
    keys = [kernels.order_key(value, dtype) for value in values]
    assert keys[3] + 1 == keys[4]  # -0.0 just before 0.0
    assert keys == sorted(keys) and len(set(keys)) == len(keys)
    assert kernels.search_interval(dtype) == (keys[0] - 1, keys[-1])
    assert kernels.passes_needed(dtype, ways=16) == passes
    assert kernels.passes_needed(dtype, ways=4) == 2 * passes


@pytest.mark.parametrize(("top_p", "ways"), [(0.3, 4), (0.9, 4), (0.95, 4), (0.9, 16)])
def test_the_nucleus_boundary_is_the_sorted_ones(
    kernels: ModuleType, top_p: float, ways: int
) -> None:
    """The race is rigged so that each row's first excluded token would win if it were
    kept, and its last kept token wins otherwise: the kernel must pick the latter."""
    logits = random_logits(1)
    tokens, kept = sorted_nucleus(logits, 0.7, top_p)
    last_kept = tokens.gather(1, (kept - 1)[:, None]).squeeze(1)
    first_excluded = tokens.gather(1, kept[:, None]).squeeze(1)
    race = torch.full_like(logits, 1e30)
    rows = torch.arange(ROWS, device=DEVICE)
    race[rows, first_excluded] = 1e-30
    race[rows, last_kept] = 1e-29
    chosen = kernels.fused_nucleus_sample(logits, race, 0.7, top_p, kernels.Launch(ways=ways))
    assert torch.equal(chosen, last_kept)


@pytest.mark.parametrize(
    ("dtype", "top_p"), [(torch.float32, 0.95), (torch.bfloat16, 0.8), (torch.float32, 1.0)]
)
def test_draws_are_the_race_over_the_nucleus(
    kernels: ModuleType, dtype: torch.dtype, top_p: float
) -> None:
    """With the same Exp(1) draws, the token torch's sorted nucleus and race would pick
    (the sampler that tests/test_graph_decoding.py checks against the distribution)."""
    logits = random_logits(2, dtype)
    race = torch.empty(ROWS, VOCABULARY).exponential_(generator=torch.Generator().manual_seed(3))
    race = race.to(DEVICE)
    probs = torch.softmax(logits.float() / 0.8, dim=-1)
    if top_p < 1:
        tokens, kept = sorted_nucleus(logits, 0.8, top_p)
        rank = torch.empty_like(tokens).scatter_(
            1, tokens, torch.arange(VOCABULARY, device=DEVICE).expand(ROWS, -1)
        )
        probs = probs.masked_fill(rank >= kept[:, None], 0.0)
    expected = (probs / race).argmax(dim=1)
    assert torch.equal(kernels.fused_nucleus_sample(logits, race, 0.8, top_p), expected)


def test_bad_arguments_are_refused(kernels: ModuleType) -> None:
    logits = random_logits(4)
    with pytest.raises(ValueError, match="temperature"):
        kernels.fused_nucleus_sample(logits, torch.ones_like(logits), 0.0, 0.9)
    with pytest.raises(ValueError, match="ways must be a power of two"):
        kernels.Launch(ways=6)
    with pytest.raises(ValueError, match="rows, vocabulary"):
        kernels.fused_nucleus_sample(logits, torch.ones_like(logits[:, :-1]), 0.8, 0.9)

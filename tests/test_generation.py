"""The generation engine on CPU with a tiny random-weights StarCoder: stop sequences,
batching, seeds, MultiPL-E completions files and the command line."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from multiplt.generation.cli import main
from multiplt.generation.models import build_tiny_model
from multiplt.generation.multiple_e import load_problems, problem_requests
from multiplt.generation.params import GenerationRequest, SamplingParams, truncate_at_stop
from multiplt.generation.transformers_backend import (
    StopOnSequences,
    TransformersBackend,
    plan_batches,
)
from tests.conftest import MULTIPL_E

MULTIPL_E_FIELDS = {
    "name",
    "language",
    "temperature",
    "top_p",
    "max_tokens",
    "prompt",
    "tests",
    "completions",
    "stop_tokens",
}


def require_transformers() -> None:
    """Skip, saying why, where the generation engine's libraries are not installed."""
    reason = "needs torch and transformers (see envs/generation.yaml)"
    pytest.importorskip("torch", reason=reason)
    pytest.importorskip("transformers", reason=reason)


def shared_tiny_model(factory: pytest.TempPathFactory) -> Path:
    """One tiny model per test session, whichever module asks first builds it."""
    require_transformers()
    path = factory.getbasetemp() / "tiny-model"
    if not (path / "model.safetensors").exists():
        build_tiny_model(path)
    return path


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return shared_tiny_model(tmp_path_factory)


@pytest.fixture(scope="session")
def backend(tiny_model: Path) -> Iterator[TransformersBackend]:
    import torch

    # One thread: a tiny model gains nothing from more, and on a busy machine their
    # synchronisation costs milliseconds per operation.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield TransformersBackend.load(tiny_model, device="cpu", batch_size=16)
    torch.set_num_threads(threads)


def stop_tokens_of(language: str) -> list[str]:
    path = MULTIPL_E / f"humaneval-{language}-reworded.jsonl"
    if not path.exists():
        pytest.skip(f"{path} is missing (it is in ../shared beside the repository)")
    stops = {tuple(problem["stop_tokens"]) for problem in load_problems(path)}
    assert len(stops) == 1, f"{path}: problems disagree on stop tokens"
    return list(stops.pop())


# --- stop sequences ------------------------------------------------------------------------

# A plausible completion per language: the function's body, then what a model writes next.
COMPLETIONS = {
    "lua": (
        "    local n = #xs\n    return n * 2\nend\n\nlocal function helper(x)\n    return x\nend",
        "    local n = #xs\n    return n * 2\nend",
    ),
    "r": (
        "  n <- length(xs)\n  return(n * 2)\n}\n# test\nprint(f(1))",
        "  n <- length(xs)\n  return(n * 2)\n}",
    ),
    "rkt": (
        "  (* 2 (length xs)))\n\n(define (helper x)\n  x)\n;; done",
        "  (* 2 (length xs)))\n",
    ),
    "ml": (
        "  List.length xs * 2\n;;\n\nlet helper x = x\n(* done *)",
        "  List.length xs * 2\n;;",
    ),
    "jl": (
        "    n = length(xs)\n    return n * 2\nend\n\nfunction helper(x)\n    x\nend",
        "    n = length(xs)\n    return n * 2\nend",
    ),
    "py": (
        "    n = len(xs)\n    return n * 2  \n\nif __name__ == '__main__':\n    print(f([1]))",
        "    n = len(xs)\n    return n * 2  \n",
    ),
}


@pytest.mark.parametrize("language", sorted(COMPLETIONS))
def test_a_completion_is_cut_at_the_languages_first_stop_sequence(language: str) -> None:
    text, expected = COMPLETIONS[language]
    assert truncate_at_stop(text, stop_tokens_of(language)) == expected


@pytest.mark.parametrize("language", sorted(COMPLETIONS))
def test_every_stop_sequence_of_the_language_cuts_where_it_starts(language: str) -> None:
    stops = stop_tokens_of(language)
    body = "  x = 1  "  # trailing spaces must survive: nothing but the tail is removed
    for stop in stops:
        assert truncate_at_stop(body + stop + "tail" + stops[0], stops) == body
        assert truncate_at_stop(stop + body, stops) == ""


def test_the_earliest_stop_wins_not_the_first_listed() -> None:
    assert truncate_at_stop("a\nb\n(define x", ["\n(define ", "\n"]) == "a"
    assert truncate_at_stop("abc", ["\n"]) == "abc"
    assert truncate_at_stop("abc", []) == "abc"


@pytest.mark.parametrize("candidates", [4, 1024])
def test_the_nucleus_filter_keeps_what_transformers_keeps(candidates: int) -> None:
    require_transformers()
    import torch
    from transformers.generation.logits_process import TemperatureLogitsWarper, TopPLogitsWarper

    from multiplt.generation.nucleus import NucleusFilter

    generator = torch.Generator().manual_seed(0)
    for scale, temperature, top_p in [
        (0.5, 0.8, 0.95),
        (5, 0.2, 0.95),
        (2, 1.0, 0.5),
        (30, 0.8, 0.1),
    ]:
        logits = torch.randn(8, 1000, generator=generator) * scale
        expected = TopPLogitsWarper(top_p)(None, TemperatureLogitsWarper(temperature)(None, logits))
        ours = NucleusFilter(temperature, top_p, candidates=candidates)(None, logits)
        assert torch.equal(torch.isfinite(ours), torch.isfinite(expected))
        assert torch.allclose(ours[torch.isfinite(ours)], expected[torch.isfinite(expected)])


# --- batching and stopping -----------------------------------------------------------------


def requests(count: int, params: SamplingParams) -> list[GenerationRequest]:
    return [GenerationRequest(f"r{i}", "x = 1\n" * (i + 1), params) for i in range(count)]


def test_batches_hold_whole_prompts_or_split_a_large_n() -> None:
    few = list(plan_batches(requests(5, SamplingParams(n=4)), batch_size=8))
    assert [(len(batch.requests), batch.samples) for batch in few] == [(2, 4), (2, 4), (1, 4)]
    assert few[0].requests[0].key == "r4"  # longest prompt first
    many = list(plan_batches(requests(1, SamplingParams(n=20)), batch_size=8))
    assert [(batch.samples, batch.chunk) for batch in many] == [(8, 0), (8, 1), (4, 2)]
    greedy = list(plan_batches(requests(3, SamplingParams(n=20, temperature=0)), batch_size=8))
    assert [(len(batch.requests), batch.samples) for batch in greedy] == [(3, 1)]


def test_a_stop_sequence_that_straddles_the_prompt_does_not_stop(backend) -> None:
    tokenizer = backend.tokenizer
    prompt = tokenizer("local function f(x)\n", return_tensors="pt")["input_ids"]
    completion = tokenizer("local y = 1\nlocal", return_tensors="pt")["input_ids"]
    criteria = StopOnSequences(tokenizer, ["\nlocal"], prompt_length=prompt.shape[1])
    import torch

    finished = []
    for step in range(1, completion.shape[1] + 1):
        ids = torch.cat([prompt, completion[:, :step]], dim=1)
        finished.append(bool(criteria(ids, None)[0]))
    # Only the "\nlocal" inside the completion stops it, not the prompt's "\n" + "local".
    assert finished[-1] is True
    assert finished.index(True) == completion.shape[1] - 1


def test_sampling_gives_n_completions_without_stop_sequences(backend) -> None:
    params = SamplingParams(n=3, temperature=0.8, max_new_tokens=40, stop=("\n", "e"), seed=1)
    results = {g.key: g for g in backend.generate(requests(5, params))}
    assert sorted(results) == [f"r{i}" for i in range(5)]
    for generation in results.values():
        assert len(generation.completions) == 3
        assert generation.tokens > 0
        assert all("\n" not in c and "e" not in c for c in generation.completions)


def test_the_same_seed_gives_the_same_completions(backend) -> None:
    params = SamplingParams(n=4, temperature=0.8, max_new_tokens=16, seed=7)
    first = {g.key: g.completions for g in backend.generate(requests(3, params))}
    again = {g.key: g.completions for g in backend.generate(requests(3, params))}
    other = {g.key: g.completions for g in backend.generate(requests(3, replace(params, seed=8)))}
    assert first == again
    assert first != other


def test_a_models_own_sampling_defaults_are_switched_off(backend) -> None:
    params = SamplingParams(n=2, temperature=0.8, max_new_tokens=16, seed=5)
    plain = {g.key: g.completions for g in backend.generate(requests(2, params))}
    configured = backend.model.generation_config
    original, configured.repetition_penalty = configured.repetition_penalty, 3.0  # as on the hub
    try:
        assert {g.key: g.completions for g in backend.generate(requests(2, params))} == plain
    finally:
        configured.repetition_penalty = original


def test_greedy_decoding_repeats_one_completion(backend) -> None:
    params = SamplingParams(n=3, temperature=0, max_new_tokens=8)
    for generation in backend.generate(requests(2, params)):
        assert len(set(generation.completions)) == 1
        assert len(generation.completions) == 3


# --- MultiPL-E end to end ------------------------------------------------------------------


def test_complete_writes_multipl_e_completions_files(tiny_model: Path, tmp_path: Path) -> None:
    problems_path = MULTIPL_E / "humaneval-lua-reworded.jsonl"
    if not problems_path.exists():
        pytest.skip(f"{problems_path} is missing")
    out = tmp_path / "humaneval-lua"
    argv = ["complete", "--model", str(tiny_model), "--problems", str(problems_path)]
    argv += ["--out", str(out), "--n", "3", "--max-tokens", "24", "--limit", "4"]
    argv += ["--temperature", "0.8", "--backend", "transformers", "--quiet"]
    assert main(argv) == 0
    files = sorted(out.glob("*.json.gz"))
    problems = {p["name"]: p for p in load_problems(problems_path)[:4]}
    assert sorted(path.name.removesuffix(".json.gz") for path in files) == sorted(problems)
    for path in files:
        record = json.loads(gzip.decompress(path.read_bytes()))
        assert set(record) == MULTIPL_E_FIELDS
        problem = problems[record["name"]]
        assert record["prompt"] == problem["prompt"] and record["tests"] == problem["tests"]
        assert (record["temperature"], record["top_p"], record["max_tokens"]) == (0.8, 0.95, 24)
        assert len(record["completions"]) == 3
        for completion in record["completions"]:
            assert not any(stop in completion for stop in record["stop_tokens"])
    assert (tmp_path / "humaneval-lua.checkpoint.jsonl").exists()


def test_requests_stop_at_each_problems_own_stop_tokens() -> None:
    problems = [
        {"name": "a", "language": "lua", "prompt": "p", "tests": "t", "stop_tokens": ["\nend"]},
        {"name": "b", "language": "r", "prompt": "q", "tests": "t", "stop_tokens": ["\n#"]},
    ]
    made = problem_requests(problems, SamplingParams(n=2))
    assert [(r.key, r.prompt, r.params.stop, r.params.n) for r in made] == [
        ("a", "p", ("\nend",), 2),
        ("b", "q", ("\n#",), 2),
    ]

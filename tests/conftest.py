"""Shared fixtures: the real runtimes, the real sandbox, MultiPL-E's benchmark files."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

# Without a GPU, Triton's kernels run in its interpreter on CPU tensors
# (tests/test_nucleus_kernels.py). Triton reads this once, when it is first imported.
if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

from multiplt.execution.engine import ExecutionEngine
from multiplt.execution.limits import Limits
from multiplt.languages import Language, get_language

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
MULTIPL_E = SHARED / "benchmarks" / "multipl-e"
HANDWRITTEN = Path(__file__).parent / "data" / "handwritten_completions.json"
ALL_LANGUAGES = ("py", "jl", "lua", "ml", "r", "rkt")


def snakemake(workdir: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    """The real Snakemake on this repository's workflow, in ``workdir``, from this Python."""
    command = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(workdir)]
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    return subprocess.run(
        [*command, *arguments], capture_output=True, text=True, env=env, timeout=900
    )


def require_runtime(name: str) -> Language:
    """The language, or a skip that says why it cannot run here."""
    language = get_language(name)
    if shutil.which("bwrap") is None:
        pytest.skip("bubblewrap (bwrap) is not installed")
    if not language.is_available():
        pytest.skip(
            f"no `{language.executable}` binary on PATH: {language.display_name} cannot be "
            "tested on this machine (Debian has no Julia package; its container installs it)"
        )
    return language


def multipl_e_problems(language: str, benchmark: str = "humaneval") -> dict[str, dict]:
    path = MULTIPL_E / f"{benchmark}-{language}-reworded.jsonl"
    if not path.exists():
        pytest.skip(f"{path} is missing (it is in ../shared beside the repository)")
    records = (json.loads(line) for line in path.read_text().splitlines() if line.strip())
    return {record["name"]: record for record in records}


def handwritten_completions() -> dict[str, dict[str, list[str]]]:
    return json.loads(HANDWRITTEN.read_text())["completions"]


@pytest.fixture
def engine() -> ExecutionEngine:
    """The real engine: bubblewrap, two workers, a timeout short enough for loops to end
    quickly and long enough for a cold Racket start on a loaded 2-core machine."""
    return ExecutionEngine(workers=2, limits=Limits(timeout_s=6))

"""The real workflow, run by the real Snakemake: config validation, lint, the demo job."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

from tests.conftest import REPO, require_runtime

SCHEMA = yaml.safe_load((REPO / "schemas" / "config.schema.yaml").read_text())


def snakemake(workdir: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(workdir)]
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    return subprocess.run(
        [*command, *arguments], capture_output=True, text=True, env=env, timeout=900
    )


def merged(*paths: Path) -> dict:
    config: dict = {}
    for path in paths:
        for key, value in yaml.safe_load(path.read_text()).items():
            config[key] = (
                {**config[key], **value} if isinstance(value, dict) and key in config else value
            )
    return config


def test_paper_and_demo_configs_are_valid() -> None:
    jsonschema.validate(merged(REPO / "config.yaml"), SCHEMA)
    jsonschema.validate(merged(REPO / "config.yaml", REPO / "config" / "demo.yaml"), SCHEMA)


def test_an_unknown_key_is_named(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("execution:\n  wokers: 3\n")
    result = snakemake(tmp_path, "-n", "--configfile", str(bad))
    assert result.returncode != 0
    assert "wokers" in result.stdout + result.stderr


def test_a_mistyped_value_is_named(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("execution:\n  workers: many\n")
    result = snakemake(tmp_path, "-n", "--configfile", str(bad))
    assert result.returncode != 0
    assert "'many' is not of type 'integer'" in result.stdout + result.stderr


def test_lint_is_clean(tmp_path: Path) -> None:
    result = snakemake(tmp_path, "--lint")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Lints for" not in result.stdout + result.stderr


def read_pass_at_1(path: Path) -> float:
    with path.open() as handle:
        (row,) = list(csv.DictReader(handle))
    assert row["Pass@k"] == "1"
    return float(row["Estimate"])


def test_demo_evaluation_end_to_end(tmp_path: Path) -> None:
    for language in ("py", "lua", "ml", "r", "rkt"):
        require_runtime(language)
    result = snakemake(tmp_path, "--cores", "2", "--configfile", str(REPO / "config" / "demo.yaml"))
    assert result.returncode == 0, result.stderr[-4000:]
    tables = tmp_path / "results" / "pass_at_k"
    # One right and one wrong hand-written completion per problem.
    for language in ("lua", "ml", "r", "rkt"):
        assert read_pass_at_1(tables / f"handwritten-{language}.csv") == 0.5
    # HumanEval's canonical solutions pass under MultiPL-E's Python prompts, except the 3
    # whose prompts lost a helper or an import in MultiPL-E's rewording (see README).
    reference = read_pass_at_1(tables / "humaneval-py-reference.csv")
    assert reference == pytest.approx(158 / 161)
    rerun = snakemake(
        tmp_path, "-n", "--cores", "2", "--configfile", str(REPO / "config" / "demo.yaml")
    )
    assert "Nothing to be done" in rerun.stdout + rerun.stderr

"""The Stack path, fed a local parquet file in The Stack's format (no hub), and its errors."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fsspec.implementations.local import LocalFileSystem

from multiplt.source.cli import main
from multiplt.source.stack import StackAccessError, StackLocation, hub_token, list_parquet_files

SHARED_BENCHMARKS = Path(__file__).resolve().parents[2] / "shared" / "benchmarks"

# Columns and types of bigcode/the-stack-dedup (a representative subset of its ~30 columns;
# the max_issues_* and max_forks_* groups repeat the max_stars_* ones).
STACK_SCHEMA = pa.schema(
    [
        ("hexsha", pa.string()),
        ("size", pa.int64()),
        ("ext", pa.string()),
        ("lang", pa.string()),
        ("max_stars_repo_path", pa.string()),
        ("max_stars_repo_name", pa.string()),
        ("max_stars_repo_head_hexsha", pa.string()),
        ("max_stars_repo_licenses", pa.list_(pa.string())),
        ("max_stars_count", pa.int64()),
        ("content", pa.string()),
        ("avg_line_length", pa.float64()),
        ("max_line_length", pa.int64()),
        ("alphanum_fraction", pa.float64()),
    ]
)

GOOD = '''import os


def scale(values: list[int], factor: int) -> list[int]:
    """Multiply every non-negative value by factor."""
    result = []
    for value in values:
        if value >= 0:
            result.append(value * factor)
    return result


def cwd_name():
    """Needs a module-level import: fails the type-check alone."""
    return os.path.basename(os.getcwd())
'''
PYTHON2 = 'def greet(name):\n    """Greet."""\n    print "hello", name\n    return name\n'
# HumanEval/13 as published, in a file of The Stack: must be decontaminated.
HUMANEVAL_13 = """def greatest_common_divisor(a: int, b: int) -> int:
    \""" Return a greatest common divisor of two integers a and b
    >>> greatest_common_divisor(3, 5)
    1
    >>> greatest_common_divisor(25, 15)
    5
    \"""
    while b:
        a, b = b, a % b
    return a
"""
BINARY = "\x00\x01\x02ELF" + "\x00" * 64
ONE_LINER = "DATA = [" + "1, " * 1_700_000 + "]\n"  # 5 MB on one line


def row(index: int, content: str, repository: str, licenses: list[str]) -> dict[str, Any]:
    lines = content.split("\n")
    return {
        "hexsha": f"{index:040x}",
        "size": len(content.encode()),
        "ext": "py",
        "lang": "Python",
        "max_stars_repo_path": f"pkg/module_{index}.py",
        "max_stars_repo_name": repository,
        "max_stars_repo_head_hexsha": "0" * 40,
        "max_stars_repo_licenses": licenses,
        "max_stars_count": index,
        "content": content,
        "avg_line_length": len(content) / len(lines),
        "max_line_length": max(len(line) for line in lines),
        "alphanum_fraction": 0.5,
    }


def write_stack_parquet(directory: Path) -> None:
    rows = [
        row(1, GOOD, "alice/tools", ["MIT"]),
        row(2, PYTHON2, "bob/legacy", ["Apache-2.0"]),
        row(3, BINARY, "carol/blobs", []),
        row(4, HUMANEVAL_13, "dave/leaked", ["MIT", "BSD-3-Clause"]),
        row(5, ONE_LINER, "erin/data", ["MIT"]),
        row(6, GOOD, "frank/fork-of-tools", ["MIT"]),  # an exact copy in another repository
    ]
    table = pa.Table.from_pylist(rows, schema=STACK_SCHEMA)
    directory.mkdir()
    # Two files of several row groups each, like the dataset's data-000NN-of-000MM.parquet.
    pq.write_table(table.slice(0, 3), directory / "data-00000-of-00002.parquet", row_group_size=2)
    pq.write_table(table.slice(3), directory / "data-00001-of-00002.parquet", row_group_size=2)


def settings(parquet: Path, shards: int) -> str:
    return json.dumps(
        {
            "languages": ["lua", "rkt"],
            "source": {
                "kind": "stack",
                "shards": shards,
                "stack": {
                    "dataset": "bigcode/the-stack-dedup",
                    "data_dir": "data/python",
                    "local_parquet": str(parquet),
                },
                "local_roots": ["stdlib"],
                "exclude_dirs": [],
                "max_files": None,
                "max_functions": None,
                "max_file_bytes": 1_000_000,
                "typecheck": {
                    "checker": "basedpyright",
                    "mode": "standard",
                    "python_version": "3.11",
                    "batch_size": 50,
                    "timeout_s": 300,
                },
            },
            "decontamination": {
                "origin": "local",
                "local_dir": str(SHARED_BENCHMARKS),
                "min_substring_chars": 40,
                "ngram_size": 10,
                "ngram_overlap": 0.5,
            },
        }
    )


def test_local_parquet_through_the_stack_path(tmp_path: Path) -> None:
    if not SHARED_BENCHMARKS.is_dir():
        pytest.skip(f"{SHARED_BENCHMARKS} is missing (../shared beside the repository)")
    write_stack_parquet(tmp_path / "stack")
    options = settings(tmp_path / "stack", shards=2)
    plan, corpus = tmp_path / "plan.json", tmp_path / "benchmarks.jsonl.gz"
    assert main(["plan", "--settings", options, "--output", str(plan)]) == 0
    # Four row groups (2 + 2) over two shards.
    assert [len(units) for units in json.loads(plan.read_text())["units"]] == [2, 2]
    assert main(["benchmarks", "--settings", options, "--output", str(corpus)]) == 0
    outputs = []
    for shard in (0, 1):
        functions, funnel = (
            tmp_path / f"{shard:05d}.jsonl.gz",
            tmp_path / f"{shard:05d}.funnel.json",
        )
        arguments = [
            "shard",
            "--settings",
            options,
            "--plan",
            str(plan),
            "--benchmarks",
            str(corpus),
        ]
        arguments += ["--shard", str(shard), "--functions", str(functions), "--funnel", str(funnel)]
        assert main(arguments) == 0
        outputs.append((functions, funnel))
    result = tmp_path / "functions.jsonl.gz"
    gather = [
        "gather",
        "--functions",
        *(str(f) for f, _ in outputs),
        "--funnels",
        *(str(j) for _, j in outputs),
    ]
    gather += ["--output-functions", str(result), "--output-json", str(tmp_path / "funnel.json")]
    gather += ["--output-markdown", str(tmp_path / "funnel.md")]
    assert main(gather) == 0

    total = json.loads((tmp_path / "funnel.json").read_text())["total"]
    assert total["files"] == {
        "read": 6, "python3": 3, "syntax_error": 1, "undecodable": 0, "binary": 1,
        "too_large": 1, "parser_limit": 0, "unreadable": 0,
    }  # fmt: skip
    counts = total["functions"]
    assert counts["extracted"] == 5 and counts["with_docstring"] == 5
    # GOOD twice and HumanEval/13: the copy of GOOD lands in the other shard (row-group
    # round robin) and is removed at the gather; cwd_name fails the type-check.
    assert counts["typechecks"] == 3
    assert counts["decontaminated"] == 2
    assert counts["unique_across_shards"] == 1
    assert total["decontamination"]["removed_by_benchmark"]["humaneval"] == 1

    with gzip.open(result, "rt") as handle:
        (function,) = [json.loads(line) for line in handle]
    assert function["name"] == "scale"
    assert function["source"] == "the-stack-dedup"
    assert function["repository"] == "alice/tools"
    assert function["path"] == "pkg/module_1.py"
    assert function["licenses"] == ["MIT"]
    assert function["hexsha"] == f"{1:040x}"
    assert "| first statement is a docstring | 5 |" in (tmp_path / "funnel.md").read_text()


def test_parquet_without_the_stacks_columns_is_named(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    directory = tmp_path / "stack"
    directory.mkdir()
    pq.write_table(pa.table({"text": ["x = 1"]}), directory / "other.parquet")
    assert (
        main(
            ["plan", "--settings", settings(directory, 1), "--output", str(tmp_path / "plan.json")]
        )
        == 2
    )
    assert "other.parquet: not in The Stack's format" in caplog.text
    assert "content" in caplog.text


def test_a_missing_local_mirror_is_named() -> None:
    with pytest.raises(ValueError, match="local_parquet: /no/such/dir does not exist"):
        list_parquet_files(StackLocation(local_parquet="/no/such/dir"), LocalFileSystem())


def test_the_hub_without_a_token_fails_clearly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import huggingface_hub.constants

    for variable in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_OIDC_RESOURCE"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_TOKEN_PATH", str(tmp_path / "no-token"))
    with pytest.raises(StackAccessError, match="gated.*HF_TOKEN"):
        hub_token()
    monkeypatch.setenv("HF_TOKEN", "hf_example")
    assert hub_token() == "hf_example"

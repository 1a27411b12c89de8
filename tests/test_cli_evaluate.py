"""`multiplt evaluate` on good and bad inputs: clear errors, nothing done is lost."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from multiplt.cli import main
from multiplt.multiple.references import completions_record
from tests.conftest import require_runtime

PROBLEM = {
    "name": "p",
    "language": "py",
    "prompt": "def f():\n",
    "tests": "assert f() == 1\n",
    "stop_tokens": [],
}


def write(directory: Path, name: str, record: dict) -> Path:
    path = directory / f"{name}.json.gz"
    with gzip.open(path, "wt") as handle:
        json.dump(record, handle)
    return path


def test_evaluates_into_output_dir(tmp_path: Path) -> None:
    require_runtime("py")
    completions, out = tmp_path / "completions", tmp_path / "out"
    completions.mkdir()
    write(completions, "p", completions_record(PROBLEM, ["    return 1\n", "    return 2\n"]))
    assert main(["evaluate", str(completions), "--output-dir", str(out), "--workers", "1"]) == 0
    with gzip.open(out / "p.results.json.gz", "rt") as handle:
        record = json.load(handle)
    assert [r["status"] for r in record["results"]] == ["OK", "AssertionError"]
    assert record["temperature"] == 0.2 and "completions" not in record


def test_existing_results_are_kept(tmp_path: Path) -> None:
    require_runtime("py")
    write(tmp_path, "p", completions_record(PROBLEM, ["    return 1\n"]))
    done = tmp_path / "p.results.json.gz"
    done.write_bytes(gzip.compress(b'{"sentinel": true}'))
    assert main(["evaluate", str(tmp_path)]) == 0
    assert json.loads(gzip.decompress(done.read_bytes())) == {"sentinel": True}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\x00not gzip", "cannot read gzipped JSON"),
        (gzip.compress(b"[1, 2]"), "expected a JSON object"),
        (gzip.compress(json.dumps({"name": "p"}).encode()), "missing key(s) language"),
        (
            gzip.compress(
                json.dumps({**completions_record(PROBLEM, []), "language": "cobol"}).encode()
            ),
            "unknown language 'cobol'",
        ),
    ],
)
def test_bad_completion_files_are_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes, message: str
) -> None:
    (tmp_path / "bad.json.gz").write_bytes(content)
    assert main(["evaluate", str(tmp_path)]) == 2
    error = capsys.readouterr().err
    assert "bad.json.gz" in error and message in error


def test_empty_completions_give_empty_results(tmp_path: Path) -> None:
    write(tmp_path, "p", completions_record(PROBLEM, []))
    assert main(["evaluate", str(tmp_path)]) == 0
    with gzip.open(tmp_path / "p.results.json.gz", "rt") as handle:
        assert json.load(handle)["results"] == []


def test_missing_directory_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["evaluate", str(tmp_path / "nowhere")]) == 2
    assert "nowhere" in capsys.readouterr().err


def test_directory_without_completions_is_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["evaluate", str(tmp_path)]) == 2
    assert "no completion files" in capsys.readouterr().err

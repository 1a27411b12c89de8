"""A batch killed half-way resumes: only programs without a result run again."""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from multiplt.execution.engine import ExecutionEngine, read_checkpoint
from multiplt.execution.limits import Limits
from multiplt.execution.results import Program
from multiplt.languages import get_language
from multiplt.multiple.references import completions_record
from tests.conftest import require_runtime

SLOW = "import time\ntime.sleep(0.4)\nprint('done')\n"


class CountingEngine(ExecutionEngine):
    """Records which programs reach the sandbox."""

    ran: list[str]

    def _run_in_sandbox(self, language, programs):  # type: ignore[no-untyped-def]
        self.ran = [program.key for program in programs]
        return super()._run_in_sandbox(language, programs)


def test_killed_evaluation_resumes_without_rerunning(tmp_path: Path) -> None:
    require_runtime("py")
    completions, results, checkpoints = tmp_path / "c", tmp_path / "r", tmp_path / "ck"
    completions.mkdir()
    problem = {"name": "slow", "language": "py", "prompt": "", "tests": "", "stop_tokens": []}
    with gzip.open(completions / "slow.json.gz", "wt") as handle:
        json.dump(completions_record(problem, [SLOW] * 12), handle)
    command = [sys.executable, "-m", "multiplt", "evaluate", str(completions), "--workers", "1"]
    command += ["--output-dir", str(results), "--checkpoint-dir", str(checkpoints)]
    process = subprocess.Popen(command, start_new_session=True)
    checkpoint = checkpoints / ".multiplt-py.checkpoint.jsonl"
    deadline = time.monotonic() + 60
    while len(read_checkpoint(checkpoint)) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    done_before = read_checkpoint(checkpoint)
    assert 3 <= len(done_before) < 12
    assert not (results / "slow.results.json.gz").exists()
    with checkpoint.open("a") as handle:
        handle.write('{"key": "slow/11/trunc')  # a line cut short by the kill

    engine = CountingEngine(workers=2)
    from multiplt.multiple.evaluate import evaluate_directory

    evaluate_directory(completions, engine, results, checkpoints)

    assert len(engine.ran) == 12 - len(done_before)
    assert not set(engine.ran) & set(done_before)
    with gzip.open(results / "slow.results.json.gz", "rt") as handle:
        record = json.load(handle)
    assert [r["status"] for r in record["results"]] == ["OK"] * 12
    assert not checkpoint.exists()


def test_engine_checkpoint_skips_finished_programs(tmp_path: Path) -> None:
    language = require_runtime("lua")
    checkpoint = tmp_path / "batch.jsonl"
    programs = [Program(f"p{i}", f"print({i})") for i in range(6)]
    engine = CountingEngine(workers=2, limits=Limits(timeout_s=5))
    first = engine.run(language, programs[:4], checkpoint=checkpoint)
    second = engine.run(language, programs, checkpoint=checkpoint)
    assert sorted(engine.ran) == ["p4", "p5"]
    assert {key: r.stdout for key, r in first.items()} == {f"p{i}": f"{i}\n" for i in range(4)}
    assert [second[f"p{i}"].stdout for i in range(6)] == [f"{i}\n" for i in range(6)]


def test_unknown_language_is_named() -> None:
    try:
        get_language("cobol")
    except KeyError as error:
        assert "cobol" in str(error) and "lua" in str(error)
    else:
        raise AssertionError("expected a KeyError")

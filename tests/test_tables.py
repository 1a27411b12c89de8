"""Tables and figure: values, bootstrap intervals, formats."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest

from multiplt.multiple.tables import (
    Cell,
    bootstrap_interval,
    plot,
    read_summaries,
    summarize,
    write_summary,
    write_tables,
)


def write_results(directory: Path, name: str, passed: int, total: int) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    results = [{"status": "OK", "exit_code": 0}] * passed
    results += [{"status": "Exception", "exit_code": 1}] * (total - passed)
    record = {"name": name, "language": "lua", "temperature": 0.2, "results": results}
    with gzip.open(directory / f"{name}.results.json.gz", "wt") as handle:
        json.dump(record, handle)


def test_summary_mean_and_interval(tmp_path: Path) -> None:
    for index, passed in enumerate([20, 10, 0, 5]):
        write_results(tmp_path, f"p{index}", passed, 20)
    cell = summarize(tmp_path, "model", "humaneval", "lua")
    assert cell.estimate == pytest.approx((1 + 0.5 + 0 + 0.25) / 4)
    assert cell.ci_low <= cell.estimate <= cell.ci_high
    assert cell.ci_low >= 0.0 and cell.ci_high <= 1.0
    assert (cell.problems, cell.samples_per_problem) == (4, 20)


def test_bootstrap_interval_is_deterministic_and_narrows_with_data() -> None:
    rng = np.random.default_rng(1)
    small = rng.random(20).tolist()
    large = rng.random(2000).tolist()
    assert bootstrap_interval(small) == bootstrap_interval(small)
    low_s, high_s = bootstrap_interval(small)
    low_l, high_l = bootstrap_interval(large)
    assert high_l - low_l < high_s - low_s
    assert low_l < 0.5 < high_l  # uniform values have mean 0.5
    assert bootstrap_interval([0.3] * 10) == pytest.approx((0.3, 0.3))


def test_tables_in_three_formats_and_a_figure(tmp_path: Path) -> None:
    cells = [
        Cell("base", "humaneval", "lua", 1, 0.121, 0.08, 0.16, 161, 20),
        Cell("tuned", "humaneval", "lua", 1, 0.173, 0.13, 0.22, 161, 20),
        Cell("base", "humaneval", "rkt", 1, 0.047, 0.02, 0.08, 161, 20),
    ]
    summary = tmp_path / "cell.json"
    write_summary(cells[0], summary)
    assert read_summaries([summary]) == [cells[0]]
    csv_path, md_path, tex_path = write_tables(cells, tmp_path / "pass_at_1")
    markdown = md_path.read_text()
    assert "| humaneval Lua | 12.1 [8.0, 16.0] | 17.3 [13.0, 22.0] |" in markdown
    assert "| humaneval Racket | 4.7 [2.0, 8.0] | – |" in markdown
    assert r"humaneval Lua & 12.1\,[8.0, 16.0] & 17.3\,[13.0, 22.0] \\" in tex_path.read_text()
    assert csv_path.read_text().splitlines()[0].startswith("model,benchmark,language,k,estimate")
    figure = plot(cells, tmp_path / "pass_at_1.png")
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

"""The pass@1 tables and figure: one row per language, one column per model.

Each cell is the mean pass@1 over a benchmark's problems with a percentile-bootstrap
confidence interval over problems (problems resampled with replacement), written as CSV,
Markdown and LaTeX, plus a bar chart.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from multiplt.languages import get_language
from multiplt.multiple.files import BadInputError
from multiplt.multiple.passk import estimator, result_files, score_file

BOOTSTRAP_SAMPLES = 2000
CONFIDENCE = 0.95


@dataclass(frozen=True)
class Cell:
    """pass@k of one model on one benchmark in one language."""

    model: str
    benchmark: str
    language: str
    k: int
    estimate: float
    ci_low: float
    ci_high: float
    problems: int
    samples_per_problem: int


def bootstrap_interval(
    values: Sequence[float], seed: int = 0, samples: int = BOOTSTRAP_SAMPLES
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``values``."""
    data = np.asarray(values, dtype=float)
    rng = np.random.default_rng(seed)
    means = data[rng.integers(0, len(data), size=(samples, len(data)))].mean(axis=1)
    tail = (1 - CONFIDENCE) / 2
    low, high = np.quantile(means, [tail, 1 - tail])
    return float(low), float(high)


def summarize(results_dir: Path, model: str, benchmark: str, language: str, k: int = 1) -> Cell:
    """The cell for one directory of MultiPL-E results files."""
    scores = [score_file(path) for path in result_files(results_dir)]
    if not scores:
        raise BadInputError(f"{results_dir}: no results files")
    per_problem = [estimator(score.n, score.c, k) for score in scores]
    low, high = bootstrap_interval(per_problem)
    return Cell(
        model=model,
        benchmark=benchmark,
        language=get_language(language).name,
        k=k,
        estimate=float(np.mean(per_problem)),
        ci_low=low,
        ci_high=high,
        problems=len(scores),
        samples_per_problem=min(score.n for score in scores),
    )


def write_summary(cell: Cell, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(asdict(cell), indent=1) + "\n")


def read_summaries(paths: Sequence[Path]) -> list[Cell]:
    cells = []
    for path in paths:
        try:
            record: dict[str, Any] = json.loads(path.read_text())
            cells.append(Cell(**record))
        except (OSError, json.JSONDecodeError, TypeError) as error:
            raise BadInputError(f"{path}: not a pass@k summary: {error}") from error
    return cells


def _percent(value: float) -> str:
    return f"{100 * value:.1f}"


def _cell_text(cell: Cell | None, latex: bool = False) -> str:
    if cell is None:
        return "–"
    plus_minus = r"\," if latex else " "
    return (
        f"{_percent(cell.estimate)}{plus_minus}[{_percent(cell.ci_low)}, {_percent(cell.ci_high)}]"
    )


def _grid(cells: Sequence[Cell]) -> tuple[list[str], list[str], dict[tuple[str, str], Cell]]:
    models = sorted({cell.model for cell in cells})
    rows = sorted({f"{cell.benchmark}/{cell.language}" for cell in cells})
    lookup = {(f"{c.benchmark}/{c.language}", c.model): c for c in cells}
    return models, rows, lookup


def _row_label(row: str) -> str:
    benchmark, language = row.split("/")
    return f"{benchmark} {get_language(language).display_name}"


def write_tables(cells: Sequence[Cell], prefix: Path) -> list[Path]:
    """``prefix``.csv / .md / .tex: pass@k in percent with the 95% bootstrap interval."""
    prefix.parent.mkdir(parents=True, exist_ok=True)
    models, rows, lookup = _grid(cells)
    csv_path, md_path, tex_path = (prefix.with_suffix(s) for s in (".csv", ".md", ".tex"))
    with csv_path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([field for field in Cell.__dataclass_fields__])
        for cell in sorted(cells, key=lambda c: (c.benchmark, c.language, c.model)):
            writer.writerow(asdict(cell).values())
    header = ["benchmark / language", *models]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        texts = [_cell_text(lookup.get((row, model))) for model in models]
        lines.append("| " + " | ".join([_row_label(row), *texts]) + " |")
    note = f"pass@{cells[0].k} (%) with {int(CONFIDENCE * 100)}% bootstrap interval over problems"
    md_path.write_text("\n".join(lines) + f"\n\n{note}.\n")
    tex = [r"\begin{tabular}{l" + "r" * len(models) + "}", r"\toprule"]
    tex.append(" & ".join(["", *(_latex_escape(m) for m in models)]) + r" \\")
    tex.append(r"\midrule")
    for row in rows:
        texts = [_cell_text(lookup.get((row, model)), latex=True) for model in models]
        tex.append(" & ".join([_row_label(row), *texts]) + r" \\")
    tex += [r"\bottomrule", r"\end{tabular}", f"% {note}"]
    tex_path.write_text("\n".join(tex) + "\n")
    return [csv_path, md_path, tex_path]


def _latex_escape(text: str) -> str:
    return text.replace("_", r"\_").replace("%", r"\%").replace("&", r"\&")


def plot(cells: Sequence[Cell], path: Path) -> Path:
    """Grouped bars: one group per benchmark/language, one bar per model, CI as error bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models, rows, lookup = _grid(cells)
    width = 0.8 / max(len(models), 1)
    figure, axes = plt.subplots(figsize=(max(6.0, 1.2 * len(rows) * max(len(models), 1)), 4))
    for index, model in enumerate(models):
        found = [lookup.get((row, model)) for row in rows]
        heights = [100 * c.estimate if c else 0.0 for c in found]
        errors = [
            [100 * (c.estimate - c.ci_low) if c else 0.0 for c in found],
            [100 * (c.ci_high - c.estimate) if c else 0.0 for c in found],
        ]
        positions = [i + index * width for i in range(len(rows))]
        axes.bar(positions, heights, width, yerr=errors, capsize=3, label=model)
    axes.set_xticks([i + width * (len(models) - 1) / 2 for i in range(len(rows))])
    axes.set_xticklabels([_row_label(row) for row in rows], rotation=30, ha="right")
    axes.set_ylabel(f"pass@{cells[0].k} (%)")
    axes.legend()
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path

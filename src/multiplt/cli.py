"""The ``multiplt`` command: the entry points that the workflow's rules call."""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from multiplt.execution.engine import ExecutionEngine
from multiplt.execution.limits import Limits
from multiplt.execution.sandbox import SandboxError, make_sandbox
from multiplt.multiple.evaluate import evaluate_directory
from multiplt.multiple.files import BadInputError
from multiplt.multiple.passk import CSV_HEADER, pass_at_k_table
from multiplt.multiple.problems import (
    HUB_DATASET,
    ProblemSource,
    load_problems,
    write_problems,
    write_provenance,
)
from multiplt.multiple.references import (
    canonical_python_answers,
    handwritten_answers,
    write_completion_files,
)
from multiplt.multiple.tables import plot, read_summaries, summarize, write_summary, write_tables


def add_engine_options(parser: argparse.ArgumentParser) -> None:
    """Options that configure the execution engine (shared by every subcommand that runs code)."""
    group = parser.add_argument_group("execution engine")
    group.add_argument(
        "--sandbox",
        default="bubblewrap",
        choices=["bubblewrap", "apptainer", "UNSAFE-no-sandbox"],
        help="isolation for generated code; UNSAFE-no-sandbox runs it on the host (debug only)",
    )
    group.add_argument(
        "--unsafe-no-sandbox", action="store_true", help="same as --sandbox UNSAFE-no-sandbox"
    )
    group.add_argument(
        "--workers", type=int, default=None, help="parallel programs (default: cores)"
    )
    group.add_argument(
        "--timeout", type=float, default=None, help="seconds per program, all languages"
    )
    group.add_argument(
        "--timeouts", type=json.loads, default={}, help="per language, e.g. '{\"r\": 20}'"
    )
    group.add_argument("--memory-mb", type=int, default=Limits.memory_mb)
    group.add_argument("--processes", type=int, default=Limits.processes)
    group.add_argument("--output-bytes", type=int, default=Limits.output_bytes)
    group.add_argument(
        "--cold", action="store_true", help="one runtime start per program (no warm R/Racket)"
    )
    group.add_argument(
        "--image-dir", type=Path, default=None, help="Apptainer images (<lang>-<version>.sif)"
    )
    group.add_argument(
        "--image-versions", type=json.loads, default={}, help="language -> image version"
    )
    group.add_argument("--progress", action="store_true", help="show a progress bar")


def engine_from_options(options: argparse.Namespace) -> ExecutionEngine:
    kind = "UNSAFE-no-sandbox" if options.unsafe_no_sandbox else options.sandbox
    engine = ExecutionEngine(
        sandbox=make_sandbox(kind, options.image_dir, options.image_versions),
        limits=Limits(
            timeout_s=options.timeout,
            memory_mb=options.memory_mb,
            processes=options.processes,
            output_bytes=options.output_bytes,
        ),
        warm=not options.cold,
        timeouts={str(k): float(v) for k, v in options.timeouts.items()},
        progress=options.progress,
    )
    if options.workers:
        engine.workers = options.workers
    return engine


def command_evaluate(options: argparse.Namespace) -> int:
    engine = engine_from_options(options)
    for directory in options.directories:
        written = evaluate_directory(directory, engine, options.output_dir, options.checkpoint_dir)
        print(f"{directory}: wrote {len(written)} results files", file=sys.stderr)
    return 0


def command_pass_k(options: argparse.Namespace) -> int:
    rows = pass_at_k_table(options.directories)
    lines = ([] if options.suppress_header else [CSV_HEADER]) + [row.csv_row() for row in rows]
    text = "\n".join(lines) + "\n"
    if options.output:
        options.output.parent.mkdir(parents=True, exist_ok=True)
        options.output.write_text(text)
    sys.stdout.write(text)
    return 0


def command_reference_completions(options: argparse.Namespace) -> int:
    problems = load_problems(options.problems)
    if options.handwritten:
        language = str(problems[0]["language"]) if problems else ""
        answers = handwritten_answers(options.handwritten, language)
    else:
        answers = canonical_python_answers(problems)
    written = write_completion_files(problems, answers, options.out)
    if not written:
        raise BadInputError(f"{options.problems}: no problem has a known answer")
    print(f"wrote {len(written)} completion files to {options.out}", file=sys.stderr)
    return 0


# Stages with command lines of their own, reached as `multiplt <stage> ...`.
STAGE_COMMANDS = {
    "source": ("multiplt.source.cli", "the Python source stage (plan, benchmarks, shard, gather)"),
    "generate": ("multiplt.generation.cli", "sample a model (complete, prepare-model, tiny-model)"),
}


def command_problems(options: argparse.Namespace) -> int:
    source = ProblemSource(
        local_dir=options.local_dir,
        hub_dataset=options.hub_dataset,
        hub_revision=options.hub_revision,
        repair=not options.verbatim,
    )
    problems = source.load(options.benchmark, options.language, limit=options.limit)
    write_problems(problems, options.out)
    write_provenance(source, options.benchmark, options.language, options.out)
    print(f"wrote {len(problems)} problems to {options.out}", file=sys.stderr)
    return 0


def command_summarize(options: argparse.Namespace) -> int:
    cell = summarize(options.results, options.model, options.benchmark, options.language, options.k)
    write_summary(cell, options.out)
    return 0


def command_tables(options: argparse.Namespace) -> int:
    cells = read_summaries(options.summaries)
    if not cells:
        raise BadInputError("no pass@k summaries given")
    write_tables(cells, options.out_prefix)
    if options.figure:
        plot(cells, options.figure)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="multiplt", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    evaluate = commands.add_parser(
        "evaluate", help="run MultiPL-E completion files (NAME.json.gz) into NAME.results.json.gz"
    )
    evaluate.add_argument("directories", type=Path, nargs="+")
    evaluate.add_argument(
        "--output-dir", type=Path, help="write results here instead of beside the completions"
    )
    evaluate.add_argument(
        "--checkpoint-dir", type=Path, help="keep per-language progress here (default: results dir)"
    )
    add_engine_options(evaluate)
    evaluate.set_defaults(handler=command_evaluate)

    pass_k = commands.add_parser("pass-k", help="MultiPL-E's pass@k table for result directories")
    pass_k.add_argument("directories", type=Path, nargs="+")
    pass_k.add_argument("--suppress-header", action="store_true")
    pass_k.add_argument("--output", type=Path, help="also write the table to this CSV file")
    pass_k.set_defaults(handler=command_pass_k)

    references = commands.add_parser(
        "reference-completions",
        help="completion files with known answers (HumanEval's canonical ones, or hand-written)",
    )
    references.add_argument("--problems", type=Path, required=True, help="MultiPL-E JSONL prompts")
    references.add_argument("--out", type=Path, required=True)
    references.add_argument(
        "--handwritten", type=Path, help="JSON of hand-written completions (default: canonical)"
    )
    references.set_defaults(handler=command_reference_completions)

    problems = commands.add_parser(
        "problems", help="MultiPL-E problems of one benchmark and language, defects mended"
    )
    problems.add_argument("--benchmark", required=True, choices=["humaneval", "mbpp"])
    problems.add_argument("--language", required=True)
    problems.add_argument("--out", type=Path, required=True, help="JSON-lines file to write")
    problems.add_argument("--local-dir", type=Path, help="MultiPL-E prompt files (default: hub)")
    problems.add_argument("--hub-dataset", default=HUB_DATASET)
    problems.add_argument("--hub-revision", default="main")
    problems.add_argument("--limit", type=int, help="only the first K problems")
    problems.add_argument("--verbatim", action="store_true", help="do not mend known defects")
    problems.set_defaults(handler=command_problems)

    summary = commands.add_parser("summarize", help="pass@k of one results directory, as JSON")
    summary.add_argument("results", type=Path)
    summary.add_argument("--model", required=True)
    summary.add_argument("--benchmark", required=True)
    summary.add_argument("--language", required=True)
    summary.add_argument("--k", type=int, default=1)
    summary.add_argument("--out", type=Path, required=True)
    summary.set_defaults(handler=command_summarize)

    tables = commands.add_parser("tables", help="pass@k tables (CSV, Markdown, LaTeX), figure")
    tables.add_argument("summaries", type=Path, nargs="+")
    tables.add_argument("--out-prefix", type=Path, required=True, help="PREFIX.csv/.md/.tex")
    tables.add_argument("--figure", type=Path, help="PNG bar chart")
    tables.set_defaults(handler=command_tables)

    for name, (_, description) in STAGE_COMMANDS.items():
        commands.add_parser(name, help=description, add_help=False)  # listed in --help only
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments and arguments[0] in STAGE_COMMANDS:
        stage = importlib.import_module(STAGE_COMMANDS[arguments[0]][0])
        return int(stage.main(arguments[1:]))
    options = build_parser().parse_args(arguments)
    try:
        return int(options.handler(options))
    except (BadInputError, SandboxError, ValueError) as error:
        print(f"multiplt: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

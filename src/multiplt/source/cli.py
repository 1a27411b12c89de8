"""Command line of the source stage, called by ``rules/source.smk``.

    python -m multiplt.source.cli plan       --settings S --output plan.json
    python -m multiplt.source.cli benchmarks --settings S --output benchmarks.jsonl.gz
    python -m multiplt.source.cli shard      --settings S --plan plan.json --benchmarks B
                                             --shard 3 --threads 8 --functions F --funnel J
    python -m multiplt.source.cli gather     --functions F... --funnels J... --output-functions F
                                             --output-json J --output-markdown M

``--settings`` is a JSON object, or a YAML/JSON file, with the workflow config's ``source``,
``decontamination`` and ``languages`` keys.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml

from multiplt.source.benchmarks import benchmark_texts, read_corpus, write_corpus
from multiplt.source.decontaminate import BenchmarkIndex
from multiplt.source.funnel import markdown_report
from multiplt.source.pipeline import gather, run_shard, write_functions
from multiplt.source.plan import make_plan, read_plan, shard_files, write_plan
from multiplt.source.settings import StageSettings, stage_settings
from multiplt.source.stack import StackAccessError
from multiplt.source.typecheck import CheckerMissingError, TypeChecker

log = logging.getLogger("multiplt.source")


def load_settings(value: str) -> StageSettings:
    if value.lstrip().startswith("{"):
        config: Any = json.loads(value)
    else:
        path = Path(value)
        try:
            config = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as error:
            raise ValueError(f"{path}: cannot read settings: {error}") from error
    if not isinstance(config, dict):
        raise ValueError(f"settings must be a mapping, got {type(config).__name__}")
    return stage_settings(config)


def command_plan(args: argparse.Namespace) -> None:
    settings = load_settings(args.settings)
    plan = make_plan(settings.source)
    write_plan(plan, args.output)
    sizes = [len(units) for units in plan.units]
    log.info(
        "%s plan: %d units in %d shards (%d–%d each)",
        plan.kind,
        sum(sizes),
        plan.shards,
        min(sizes),
        max(sizes),
    )


def command_benchmarks(args: argparse.Namespace) -> None:
    settings = load_settings(args.settings).benchmarks
    texts = benchmark_texts(settings.origin, settings.local_dir, settings.languages)
    count = write_corpus(texts, args.output)
    log.info("decontamination corpus: %d texts from %s", count, settings.origin)


def command_shard(args: argparse.Namespace) -> None:
    settings = load_settings(args.settings)
    plan = read_plan(args.plan)
    typecheck_settings = replace(settings.source.typecheck, workers=args.threads)
    result = run_shard(
        shard_files(plan, args.shard),
        max_file_bytes=settings.source.max_file_bytes,
        checker=TypeChecker(typecheck_settings),
        index=BenchmarkIndex(read_corpus(args.benchmarks), settings.decontamination),
        max_functions=plan.max_functions_per_shard,
    )
    write_functions(result.functions, args.functions)
    args.funnel.write_text(json.dumps(result.funnel.to_json(), indent=1) + "\n", encoding="utf-8")
    log.info("shard %d: %s", args.shard, json.dumps(result.funnel.to_json()["functions"]))


def command_gather(args: argparse.Namespace) -> None:
    if len(args.functions) != len(args.funnels):
        raise ValueError("gather needs one --funnels file per --functions file")
    shards = [
        (funnel.name.removesuffix(".funnel.json"), functions, funnel)
        for functions, funnel in zip(args.functions, args.funnels, strict=True)
    ]
    gathered = gather(shards)
    write_functions(gathered.functions, args.output_functions)
    report = {
        "total": gathered.total.to_json(),
        "shards": {name: funnel.to_json() for name, funnel in gathered.shards.items()},
    }
    args.output_json.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    args.output_markdown.write_text(
        markdown_report(gathered.total, gathered.shards), encoding="utf-8"
    )
    log.info("%d functions from %d shards", len(gathered.functions), len(shards))


def parser() -> argparse.ArgumentParser:
    main_parser = argparse.ArgumentParser(
        prog="multiplt source", description=__doc__.split("\n\n")[0]
    )
    commands = main_parser.add_subparsers(dest="command", required=True)

    plan = commands.add_parser("plan", help="split the input into shards")
    plan.add_argument("--settings", required=True)
    plan.add_argument("--output", type=Path, required=True)
    plan.set_defaults(run=command_plan)

    benchmarks = commands.add_parser("benchmarks", help="build the decontamination corpus")
    benchmarks.add_argument("--settings", required=True)
    benchmarks.add_argument("--output", type=Path, required=True)
    benchmarks.set_defaults(run=command_benchmarks)

    shard = commands.add_parser("shard", help="extract, filter and decontaminate one shard")
    shard.add_argument("--settings", required=True)
    shard.add_argument("--plan", type=Path, required=True)
    shard.add_argument("--benchmarks", type=Path, required=True)
    shard.add_argument("--shard", type=int, required=True)
    shard.add_argument("--threads", type=int, default=1, help="type-checker processes at once")
    shard.add_argument("--functions", type=Path, required=True)
    shard.add_argument("--funnel", type=Path, required=True)
    shard.set_defaults(run=command_shard)

    gather_parser = commands.add_parser("gather", help="merge shards: functions and funnel")
    gather_parser.add_argument("--functions", type=Path, nargs="+", required=True)
    gather_parser.add_argument("--funnels", type=Path, nargs="+", required=True)
    gather_parser.add_argument("--output-functions", type=Path, required=True)
    gather_parser.add_argument("--output-json", type=Path, required=True)
    gather_parser.add_argument("--output-markdown", type=Path, required=True)
    gather_parser.set_defaults(run=command_gather)
    return main_parser


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        args.run(args)
    except (ValueError, StackAccessError, CheckerMissingError) as error:
        log.error("%s", error)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

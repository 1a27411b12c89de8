"""How long `snakemake -n --profile slurm` takes to build the DAG (target: under 10 s).

Run on demand (not a test): ``python benchmarks/bench_dag.py [--repeats 3]``.

A dry run submits nothing, so no SLURM is needed. Each case runs Snakemake as a user would,
from the repository root, in a fresh empty working directory (so every job of the
configuration is in the DAG), and times the whole command: start-up, the profile (a YTE
template reading slurm/site.yaml), the executor plugin, parsing the workflow, building and
printing the DAG. Cases:

* ``paper``: the paper's configuration (config.yaml) with the SLURM profile;
* ``paper, no profile``: the same with Snakemake's local defaults, to show what the profile costs;
* ``demo``: the embedded default (config/demo.yaml) with the SLURM profile;
* ``paper + source``: while the Snakefile does not include rules/source.smk yet, a wrapper
  Snakefile includes both and targets the source stage (256 shards);
* ``... 4096``: the paper's configuration with 4096 source shards instead of 256, to show how
  the DAG time grows with its size (informative: no target).
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TARGET_S = 10.0


@dataclass
class Case:
    name: str
    arguments: list[str]
    # Whether the 10 s target applies (the configurations users run with the profile).
    target: bool = True


CASES = [
    Case("paper", ["--profile", "slurm"]),
    Case("paper, no profile", ["--profile", "none", "--cores", "1"], target=False),
    Case("demo", ["--profile", "slurm", "--configfile", str(REPO / "config" / "demo.yaml")]),
]

# The source stage's rules, until the Snakefile includes them.
WRAPPER = """include: "{repo}/Snakefile"
include: "{repo}/rules/source.smk"


rule bench_source:
    default_target: True
    input:
        source_targets(),
"""


def source_cases(directory: Path) -> list[Case]:
    """The source stage at 256 shards (until the Snakefile includes it) and at 4096."""
    source = REPO / "rules" / "source.smk"
    if not source.exists():
        return []
    many_shards = directory / "shards.yaml"
    many_shards.write_text("source:\n  shards: 4096\n")
    paper = ["--profile", "slurm", "--configfile", str(REPO / "config.yaml")]
    if "rules/source.smk" in (REPO / "Snakefile").read_text():
        return [Case("paper, 4096 shards", [*paper, str(many_shards)], target=False)]
    wrapper = directory / "Snakefile"
    wrapper.write_text(WRAPPER.format(repo=REPO))
    with_source = [*paper, "--snakefile", str(wrapper)]
    return [
        Case("paper + source", with_source),
        Case("paper + source 4096", [*with_source, str(many_shards)], target=False),
    ]


def dry_run(case: Case, extra: list[str]) -> tuple[float, int, str]:
    """Seconds the dry run took, the number of jobs in its DAG, and its output."""
    with tempfile.TemporaryDirectory(prefix="bench-dag-") as workdir:
        command = [
            sys.executable,
            "-m",
            "snakemake",
            "--dry-run",
            "--directory",
            workdir,
            *case.arguments,
            *extra,
        ]
        env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
        env.pop("SNAKEMAKE_PROFILE", None)
        start = time.perf_counter()
        result = subprocess.run(
            command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300
        )
        elapsed = time.perf_counter() - start
    output = result.stdout + result.stderr
    if result.returncode != 0:
        raise SystemExit(f"{case.name}: snakemake failed ({result.returncode}):\n{output[-3000:]}")
    totals = re.findall(r"^total\s+(\d+)\s*$", output, flags=re.MULTILINE)
    jobs = int(totals[0]) if totals else 0
    return elapsed, jobs, output


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "extra", nargs="*", help="more Snakemake arguments for every case (e.g. targets)"
    )
    args = parser.parse_args()

    print(
        f"# snakemake --dry-run, {args.repeats} runs per case; {platform.node()}, "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}"
    )
    print(f"{'case':<22} {'jobs':>6} {'min s':>7} {'median s':>9} {'max s':>7}  target")
    over = False
    wrapper_directory = tempfile.TemporaryDirectory(prefix="bench-dag-wrapper-")
    cases = CASES + source_cases(Path(wrapper_directory.name))
    for case in cases:
        times = []
        jobs = 0
        for _ in range(args.repeats):
            elapsed, jobs, _ = dry_run(case, args.extra)
            times.append(elapsed)
        median = statistics.median(times)
        verdict = ""
        if case.target:
            ok = median < TARGET_S
            over = over or not ok
            verdict = f"{'ok' if ok else 'OVER'} (< {TARGET_S:.0f} s)"
        print(
            f"{case.name:<22} {jobs:>6} {min(times):>7.2f} {median:>9.2f} {max(times):>7.2f}  "
            f"{verdict}"
        )
    wrapper_directory.cleanup()
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())

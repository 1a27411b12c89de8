"""The source stage run by the real Snakemake on a slice of the standard library."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SHARED_BENCHMARKS = REPO.parent / "shared" / "benchmarks"
TARGETS = [
    "results/source/functions.jsonl.gz",
    "results/source/funnel.json",
    "results/source/funnel.md",
]


def snakefile(tmp_path: Path) -> Path:
    """The repository's Snakefile once it includes rules/source.smk; until then, one that
    validates the config and includes the same rule files."""
    main = REPO / "Snakefile"
    if "rules/source.smk" in main.read_text():
        return main
    scratch = tmp_path / "Snakefile"
    scratch.write_text(
        "from snakemake.utils import validate\n\n"
        f'configfile: "{REPO}/config.yaml"\n'
        f'validate(config, "{REPO}/schemas/config.schema.yaml")\n\n'
        f'include: "{REPO}/rules/common.smk"\n'
        f'include: "{REPO}/rules/source.smk"\n'
    )
    return scratch


@pytest.mark.slow
def test_snakemake_builds_the_stdlib_function_set_and_funnel(tmp_path: Path) -> None:
    if not SHARED_BENCHMARKS.is_dir():
        pytest.skip(f"{SHARED_BENCHMARKS} is missing (../shared beside the repository)")
    overrides = {
        "source": {
            "kind": "local",
            "shards": 2,
            "max_files": 120,
            "threads": 1,
            "mem_mb": 1000,
            "runtime": 10,
        },
        "decontamination": {"origin": "local", "local_dir": str(SHARED_BENCHMARKS)},
    }
    config = tmp_path / "source-slice.yaml"
    config.write_text(yaml.safe_dump(overrides))
    workdir = tmp_path / "run"
    command = [
        sys.executable,
        "-m",
        "snakemake",
        "-s",
        str(snakefile(tmp_path)),
        "-d",
        str(workdir),
    ]
    # Targets first: --configfile takes every argument after it.
    command += [*TARGETS, "--cores", "2", "--configfile", str(REPO / "config.yaml"), str(config)]
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-4000:]

    results = workdir / "results" / "source"
    funnel = json.loads((results / "funnel.json").read_text())
    total = funnel["total"]
    assert sorted(funnel["shards"]) == ["00000", "00001"]
    assert total["files"]["read"] == 120
    counts = list(total["functions"].values())
    assert counts == sorted(counts, reverse=True) and counts[-1] > 0  # a funnel narrows
    with gzip.open(results / "functions.jsonl.gz", "rt") as handle:
        functions = [json.loads(line) for line in handle]
    assert len(functions) == total["functions"]["unique_across_shards"]
    assert all(
        f["repository"].startswith("cpython-") and f["licenses"] == ["PSF-2.0"] for f in functions
    )
    report = (results / "funnel.md").read_text()
    assert "This run:" in report and "| mbpp-test |" in report
    assert (workdir / "logs" / "source" / "shards" / "00000.log").is_file()


def test_rule_settings_resolve_relative_paths_against_the_repository() -> None:
    from multiplt.source.settings import stage_settings
    from multiplt.source.workflow import settings_argument, shard_names

    config = yaml.safe_load((REPO / "config.yaml").read_text())
    config["source"]["stack"]["local_parquet"] = "mirror/python"
    config["source"]["local_roots"] = ["stdlib", "vendor/tree"]
    settings = json.loads(settings_argument(config, "/repo"))
    assert settings["source"]["stack"]["local_parquet"] == "/repo/mirror/python"
    assert settings["source"]["local_roots"] == ["stdlib", "/repo/vendor/tree"]
    assert settings["decontamination"]["local_dir"] == "/repo/../shared/benchmarks"
    # The paper's configuration reads as valid stage settings, with its 256 shards.
    assert stage_settings(settings).source.shards == 256
    assert shard_names(config)[-1] == "00255"

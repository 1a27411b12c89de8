"""The SLURM profile (slurm/) without a SLURM: how it renders, what the rules ask for.

`snakemake --profile slurm --dry-run` needs no cluster (nothing is submitted), so these tests run
everywhere the executor plugin is installed. tests/test_slurm.py runs the profile against a
real SLURM.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import REPO

PROFILE = REPO / "slurm"

needs_plugin = pytest.mark.skipif(
    importlib.util.find_spec("snakemake_executor_plugin_slurm") is None,
    reason="snakemake-executor-plugin-slurm is not installed (bash scripts/install-slurm.sh)",
)


def render(site: dict[str, Any] | None, tmp_path: Path, profile: Path = PROFILE) -> dict[str, Any]:
    """The profile as Snakemake reads it, for a given site file (None: the repository's)."""
    env = dict(os.environ)
    if site is not None:
        site_path = tmp_path / "site.yaml"
        site_path.write_text(yaml.safe_dump(site))
        env["MULTIPLT_SLURM_SITE"] = str(site_path)
    else:
        env.pop("MULTIPLT_SLURM_SITE", None)
    code = (
        "import sys, yaml, yte\n"
        "with open(sys.argv[1]) as stream:\n"
        "    print(yaml.safe_dump(yte.process_yaml(stream, require_use_yte=True)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(profile / "config.yaml")],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    rendered: dict[str, Any] = yaml.safe_load(result.stdout)
    return rendered


def dry_run(
    tmp_path: Path, site: dict[str, Any], *arguments: str, profile: str = "slurm"
) -> subprocess.CompletedProcess[str]:
    site_path = tmp_path / "site.yaml"
    site_path.write_text(yaml.safe_dump(site))
    env = {
        **os.environ,
        "MULTIPLT_SLURM_SITE": str(site_path),
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
    }
    env.pop("SNAKEMAKE_PROFILE", None)
    command = [
        "timeout",
        "-k",
        "5",
        "120",
        sys.executable,
        "-m",
        "snakemake",
        "--profile",
        profile,
        "--dry-run",
        "--directory",
        str(tmp_path / "work"),
        *arguments,
    ]
    return subprocess.run(command, capture_output=True, text=True, env=env, cwd=REPO, timeout=150)


def job_resources(output: str) -> dict[str, list[dict[str, str]]]:
    """Rule name -> the resources line of each of its jobs in a dry run's output."""
    jobs: dict[str, list[dict[str, str]]] = {}
    for block in re.split(r"\n(?=[ \t]*rule \w+:)", output):
        match = re.match(r"\s*rule (\w+):", block)
        resources = re.search(r"\n\s+resources: (.*)", block)
        if match and resources:
            pairs = (item.split("=", 1) for item in resources.group(1).split(", "))
            jobs.setdefault(match.group(1), []).append({key: value for key, value in pairs})
    return jobs


def test_repository_site_renders_a_slurm_profile(tmp_path: Path) -> None:
    profile = render(None, tmp_path)
    assert profile["executor"] == "slurm"
    assert profile["slurm-status-command"] == "sacct"
    # No account configured: submit without one, never guess it (that asks slurmdbd).
    assert profile["slurm-no-account"] is True
    assert "slurm_account" not in profile["default-resources"]
    assert profile["retries"] >= 1
    assert set(profile["group-components"]) == {"completions", "evaluation"}
    assert "software-deployment-method" not in profile


def test_every_site_setting_reaches_its_option(tmp_path: Path) -> None:
    site = {
        "account": "proj42",
        "partition": "cpu",
        "gpu_partition": "gpu",
        "gpu_model": "a100",
        "qos": "normal",
        "reservation": "paper",
        "slurm_extra": "--mail-type=FAIL",
        "node_cores": 48,
        "max_jobs": 50,
        "status_command": "squeue",
        "status_check_delay": 30,
        "software_deployment": ["conda", "apptainer"],
        "apptainer_binds": ["/scratch", "/data"],
        "apptainer_prefix": "/scratch/images",
    }
    profile = render(site, tmp_path)
    resources = profile["default-resources"]
    assert resources["slurm_account"] == "'proj42'"
    assert resources["slurm_partition"] == "'cpu'"
    assert resources["slurm_extra"] == "'--mail-type=FAIL'"
    assert "slurm-no-account" not in profile
    assert profile["jobs"] == 50 and profile["cores"] == 48
    assert profile["slurm-qos"] == "normal" and profile["slurm-reservation"] == "paper"
    assert profile["slurm-status-command"] == "squeue"
    assert profile["slurm-init-seconds-before-status-checks"] == 30
    assert profile["software-deployment-method"] == ["conda", "apptainer"]
    assert profile["apptainer-args"] == "--bind /scratch --bind /data"
    assert profile["apptainer-prefix"] == "/scratch/images"


def test_partition_limits_go_to_the_plugins_partition_choice(tmp_path: Path) -> None:
    site = {"partitions": {"cpu": {"max_gpu": 0}, "gpu": {"max_gpu": 4}}}
    profile = render(site, tmp_path)
    assert profile["slurm-partition-config"] == str(tmp_path / "site.yaml")
    assert "slurm_partition" not in profile["default-resources"]


def test_default_resources_grow_with_each_attempt(tmp_path: Path) -> None:
    defaults = render(None, tmp_path)["default-resources"]

    class Input:
        size_mb = 10

    def value(name: str, attempt: int) -> int:
        result: int = eval(defaults[name], {"input": Input(), "attempt": attempt})
        return result

    assert [value("mem_mb", attempt) for attempt in (1, 2, 3)] == [2000, 4000, 8000]
    assert value("runtime", 1) < value("runtime", 2)


@needs_plugin
def test_an_unknown_site_setting_is_named(tmp_path: Path) -> None:
    result = dry_run(tmp_path, {"acount": "proj42"})
    assert result.returncode != 0
    assert "acount" in result.stdout + result.stderr


@needs_plugin
def test_dry_run_shows_every_job_with_its_resources(tmp_path: Path) -> None:
    paper = dry_run(tmp_path, {"partition": "cpu"})
    assert paper.returncode == 0, paper.stderr[-4000:]
    result = dry_run(
        tmp_path, {"partition": "cpu"}, "--configfile", str(REPO / "config" / "demo.yaml")
    )
    assert result.returncode == 0, result.stderr[-4000:]
    jobs = job_resources(result.stdout + result.stderr)
    assert {"reference_completions", "handwritten_completions", "evaluate_completions"} <= set(jobs)
    for rule, resources in jobs.items():
        for job in resources:
            assert {"mem_mb", "runtime"} <= set(job), (rule, job)
            assert job["slurm_partition"] == "cpu", (rule, job)


@needs_plugin
def test_gpu_rules_get_the_sites_gpu_partition_and_model(tmp_path: Path) -> None:
    # A copy of the profile whose GPU_RULES lists the test workflow's GPU rule.
    profile = tmp_path / "profile"
    shutil.copytree(PROFILE, profile)
    text = (profile / "config.yaml").read_text()
    assert "GPU_RULES = [" in text
    text = re.sub(r"GPU_RULES = \[[^\]]*\]", 'GPU_RULES = ["gpu_job"]', text)
    (profile / "config.yaml").write_text(text)
    site = {"partition": "cpu", "gpu_partition": "gpu", "gpu_model": "a100"}
    result = dry_run(
        tmp_path,
        site,
        "--snakefile",
        str(REPO / "tests" / "slurm" / "Snakefile"),
        "fails",
        "gpu_job",
        profile=str(profile),
    )
    assert result.returncode == 0, result.stderr[-4000:]
    jobs = job_resources(result.stdout + result.stderr)
    (gpu_job,) = jobs["gpu_job"]
    assert (gpu_job["gpu"], gpu_job["slurm_partition"], gpu_job["gpu_model"]) == (
        "1",
        "gpu",
        "a100",
    )
    (cpu_job,) = jobs["fails"]
    assert cpu_job["slurm_partition"] == "cpu" and "gpu_model" not in cpu_job


def workflow_rules() -> tuple[list[Any], set[str]]:
    """The main workflow's rules as Snakemake parsed them (paper config), and the local ones."""
    from snakemake.api import SnakemakeApi
    from snakemake.settings.types import OutputSettings, ResourceSettings

    with SnakemakeApi(OutputSettings()) as api:
        workflow = api.workflow(
            resource_settings=ResourceSettings(),
            snakefile=REPO / "Snakefile",
            workdir=REPO,
        )._workflow
        return list(workflow.rules), set(workflow._localrules)


def test_every_rule_declares_what_it_needs() -> None:
    """A rule that runs as a SLURM job names its memory and time; a GPU rule names its GPUs,
    the cores per GPU, and is in the profile's GPU_RULES (where the site's GPU partition and
    model are applied)."""
    text = (PROFILE / "config.yaml").read_text()
    listed = re.search(r"GPU_RULES = \[([^\]]*)\]", text)
    assert listed, "slurm/config.yaml defines no GPU_RULES"
    gpu_rules = set(re.findall(r'"(\w+)"', listed.group(1)))
    rules, local = workflow_rules()
    problems = []
    for rule in rules:
        if rule.norun or rule.name in local:
            continue
        declared = set(rule.resources)
        for name in ("mem_mb", "runtime"):
            if name not in declared:
                problems.append(f"rule {rule.name} declares no {name}")
        if "gpu" in declared:
            if "cpus_per_gpu" not in declared:
                problems.append(f"rule {rule.name} asks for GPUs but declares no cpus_per_gpu")
            if rule.name not in gpu_rules:
                problems.append(f"rule {rule.name} asks for GPUs but is not in GPU_RULES")
    assert not problems, "\n".join(problems)


def test_slurm_test_puts_etc_slurm_back(tmp_path: Path) -> None:
    """tests/test_slurm.py writes /etc/slurm/*.conf: a different file is backed up and restored,
    the same file is left alone, a missing one is removed again."""
    from tests.slurm.cluster import ConfigFile

    backups = tmp_path / "backup"
    backups.mkdir()
    different, same, absent = tmp_path / "a.conf", tmp_path / "b.conf", tmp_path / "c.conf"
    different.write_text("the site's own\n")
    same.write_text("ours\n")
    files = [ConfigFile(path, "ours\n", backups) for path in (different, same, absent)]
    for config_file in files:
        config_file.install()
    assert [path.read_text() for path in (different, same, absent)] == ["ours\n"] * 3
    for config_file in files:
        config_file.restore()
    assert different.read_text() == "the site's own\n"
    assert same.read_text() == "ours\n"
    assert not absent.exists()

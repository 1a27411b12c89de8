"""A real single-node SLURM (Debian 12's 22.05) for tests, started and stopped by process id.

`SingleNodeSlurm` writes a slurm.conf (one node, one partition, a fake `gpu` GRES backed by
/dev/null), starts its own munged (private socket and key), slurmctld and slurmd in the
foreground as child processes, waits until the node is idle, and at `stop()` cancels what is
left, stops the daemons by pid and restores /etc/slurm. Every command it runs is bounded by a
timeout, and each daemon runs under `timeout -k`, so a test that dies hard still leaves nothing
running for longer than `lifetime_s`.

The job side (slurmstepd, srun inside a job) reads /etc/slurm/slurm.conf and ignores
SLURM_CONF, so the configuration is written there: only where no file exists or the same one
does; an existing different file is backed up and put back at the end.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

SLURM_ETC = Path("/etc/slurm")
REQUIRED_PROGRAMS = (
    "slurmctld",
    "slurmd",
    "munged",
    "mungekey",
    "sinfo",
    "sbatch",
    "squeue",
    "scontrol",
    "scancel",
    "timeout",
)
PARTITION = "multiplt"
# Uncommon ports, so that a SLURM already running on a developer's machine is not disturbed.
CONTROLLER_PORT = 16817
NODE_PORT = 16818
# Completed jobs stay visible to squeue this long (seconds). The executor plugin's squeue
# status check needs at least 3 x its first status-check delay.
MIN_JOB_AGE = 600


def missing_requirements() -> str | None:
    """Why a real SLURM cannot run here, or None."""
    missing = [name for name in REQUIRED_PROGRAMS if shutil.which(name) is None]
    if missing:
        return (
            f"SLURM is not installed ({', '.join(missing)} missing): "
            "run `bash scripts/install-slurm.sh` (Debian: slurmctld slurmd slurm-client munge)"
        )
    if os.geteuid() != 0:
        return "a real SLURM test needs root (slurmd, and the config in /etc/slurm)"
    for port in (CONTROLLER_PORT, NODE_PORT):
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return f"port {port} is in use: another SLURM is running here"
    return None


def run(
    command: Sequence[str], timeout_s: float = 20, check: bool = True, **kwargs: object
) -> subprocess.CompletedProcess[str]:
    """A short command, bounded by `timeout -k` and by the subprocess timeout."""
    bounded = ["timeout", "-k", "5", str(int(timeout_s)), *command]
    return subprocess.run(  # type: ignore[call-overload, no-any-return]
        bounded,
        capture_output=True,
        text=True,
        timeout=timeout_s + 10,
        check=check,
        **kwargs,
    )


def node_line() -> tuple[str, int, str]:
    """The node's name, memory for jobs (MB) and hardware as slurmd itself reports them."""
    report = run(["slurmd", "-C"]).stdout.splitlines()[0]
    fields = dict(item.split("=", 1) for item in report.split())
    real_memory = int(fields["RealMemory"])
    # Leave room for the daemons and the test itself.
    usable = max(1024, int(real_memory * 0.8))
    hardware = " ".join(
        f"{key}={fields[key]}"
        for key in ("CPUs", "Boards", "SocketsPerBoard", "CoresPerSocket", "ThreadsPerCore")
        if key in fields
    )
    return fields["NodeName"], usable, hardware


@dataclass
class ConfigFile:
    """A file under /etc/slurm written for the test and put back as it was afterwards."""

    path: Path
    text: str
    backup_dir: Path
    backup: Path | None = None
    created: bool = False

    def install(self) -> None:
        if self.path.exists():
            if self.path.read_text() == self.text:
                return
            self.backup = self.backup_dir / f"{self.path.name}.orig"
            shutil.copy2(self.path, self.backup)
        else:
            self.created = True
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(self.text)

    def restore(self) -> None:
        if self.backup is not None:
            shutil.copy2(self.backup, self.path)
        elif self.created:
            self.path.unlink(missing_ok=True)


@dataclass
class SingleNodeSlurm:
    state: Path
    lifetime_s: int = 900
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    config_files: list[ConfigFile] = field(default_factory=list)
    node: str = ""
    memory_mb: int = 0
    cpus: int = 0

    @property
    def munge_socket(self) -> Path:
        return self.state / "munge" / "munge.socket"

    @property
    def controller_log(self) -> Path:
        return self.state / "slurmctld.log"

    @property
    def node_log(self) -> Path:
        return self.state / "slurmd.log"

    def slurm_conf(self, hardware: str) -> str:
        state = self.state
        return "\n".join(
            [
                "# Written by tests/slurm/cluster.py for a test; removed afterwards.",
                "ClusterName=multiplt-test",
                f"SlurmctldHost={self.node}(127.0.0.1)",
                f"SlurmctldPort={CONTROLLER_PORT}",
                f"SlurmdPort={NODE_PORT}",
                "AuthType=auth/munge",
                "CredType=cred/munge",
                f"AuthInfo=socket={self.munge_socket}",
                "SlurmUser=root",
                "SlurmdUser=root",
                f"StateSaveLocation={state}/ctld",
                f"SlurmdSpoolDir={state}/spool",
                f"SlurmctldPidFile={state}/slurmctld.pid",
                f"SlurmdPidFile={state}/slurmd.pid",
                f"SlurmctldLogFile={self.controller_log}",
                f"SlurmdLogFile={self.node_log}",
                "SlurmctldDebug=info",
                "SlurmdDebug=info",
                # No cgroups and no accounting daemon: nothing beyond the three daemons.
                "ProctrackType=proctrack/linuxproc",
                "TaskPlugin=task/none",
                "JobAcctGatherType=jobacct_gather/none",
                "AccountingStorageType=accounting_storage/none",
                "JobCompType=jobcomp/none",
                "SwitchType=switch/none",
                "MpiDefault=none",
                "SelectType=select/cons_tres",
                "SelectTypeParameters=CR_Core_Memory",
                "GresTypes=gpu",
                "PropagateResourceLimits=NONE",
                "ReturnToService=2",
                f"MinJobAge={MIN_JOB_AGE}",
                "KillWait=5",
                "InactiveLimit=0",
                "SlurmdTimeout=120",
                "SchedulerType=sched/builtin",
                f"NodeName={self.node} NodeAddr=127.0.0.1 {hardware} RealMemory={self.memory_mb}"
                " Gres=gpu:1 State=UNKNOWN",
                f"PartitionName={PARTITION} Nodes={self.node} Default=YES MaxTime=INFINITE"
                " State=UP",
                "",
            ]
        )

    def gres_conf(self) -> str:
        return "\n".join(
            [
                "# Written by tests/slurm/cluster.py: a fake GPU, for GPU requests.",
                "AutoDetect=off",
                f"NodeName={self.node} Name=gpu File=/dev/null",
                "",
            ]
        )

    def start(self) -> None:
        for directory in ("ctld", "spool", "munge", "backup"):
            (self.state / directory).mkdir(parents=True, exist_ok=True)
        (self.state / "munge").chmod(0o700)
        self.node, self.memory_mb, hardware = node_line()
        self.cpus = int(re.search(r"CPUs=(\d+)", hardware).group(1))  # type: ignore[union-attr]
        self.config_files = [
            ConfigFile(SLURM_ETC / "slurm.conf", self.slurm_conf(hardware), self.state / "backup"),
            ConfigFile(SLURM_ETC / "gres.conf", self.gres_conf(), self.state / "backup"),
        ]
        try:
            for config_file in self.config_files:
                config_file.install()
            self._start_munge()
            self._daemon("slurmctld", ["slurmctld", "-D", "-c", "-i"])
            self._daemon("slurmd", ["slurmd", "-D", "-N", self.node])
            self._wait_until_idle(timeout_s=90)
        except BaseException:
            self.stop()
            raise

    def _start_munge(self) -> None:
        # A private munged: own key, own socket (slurm.conf's AuthInfo names it), so that a
        # system munged, its key and /run/munge stay untouched.
        key = self.state / "munge" / "munge.key"
        if not key.exists():
            run(["mungekey", "--create", f"--keyfile={key}"])
        key.chmod(0o600)
        self._daemon(
            "munged",
            [
                "munged",
                "--foreground",
                "--force",
                f"--socket={self.munge_socket}",
                f"--key-file={key}",
                f"--pid-file={self.state}/munge/munged.pid",
                f"--log-file={self.state}/munge/munged.log",
                f"--seed-file={self.state}/munge/munged.seed",
            ],
        )
        deadline = time.monotonic() + 20
        while not self.munge_socket.exists():
            self._check_alive("munged")
            if time.monotonic() > deadline:
                raise RuntimeError(f"munged did not create {self.munge_socket}")
            time.sleep(0.2)

    def _daemon(self, name: str, command: list[str]) -> None:
        log = open(self.state / f"{name}.out", "wb")  # noqa: SIM115 - kept with the process
        # `timeout -k` outlives nothing: even if this test process is killed, the daemon
        # is stopped after lifetime_s.
        self.processes[name] = subprocess.Popen(
            ["timeout", "-k", "10", str(self.lifetime_s), *command],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        log.close()

    def _check_alive(self, name: str) -> None:
        process = self.processes[name]
        if process.poll() is not None:
            raise RuntimeError(
                f"{name} exited with {process.returncode}:\n{self.tail(self.state / f'{name}.out')}"
                f"\n{self.diagnostics()}"
            )

    def _wait_until_idle(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        state = ""
        while time.monotonic() < deadline:
            for name in self.processes:
                self._check_alive(name)
            result = run(["sinfo", "-h", "-N", "-n", self.node, "-o", "%T"], check=False)
            state = result.stdout.strip()
            if state == "idle":
                return
            time.sleep(0.5)
        raise RuntimeError(
            f"node {self.node} not idle after {timeout_s} s (state {state!r})\n{self.diagnostics()}"
        )

    def stop(self) -> None:
        """Cancel leftover jobs, stop the daemons by pid, put /etc/slurm back."""
        if "slurmctld" in self.processes and self.processes["slurmctld"].poll() is None:
            run(["scancel", f"--partition={PARTITION}"], check=False)
        for name in ("slurmd", "slurmctld", "munged"):
            process = self.processes.get(name)
            if process is None or process.poll() is not None:
                continue
            # `timeout` passes SIGTERM on to the daemon and exits with it.
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
        for config_file in self.config_files:
            config_file.restore()

    # -- looking at the cluster ------------------------------------------------------------

    def jobs(self) -> dict[str, dict[str, str]]:
        """Every job slurmctld still knows (finished ones for MIN_JOB_AGE): id -> fields."""
        result = run(["squeue", "--states=all", "-h", "-o", "%i|%T|%j|%b|%m|%C|%P|%k"], check=True)
        jobs = {}
        for line in result.stdout.splitlines():
            job_id, state, name, gres, memory, cpus, partition, comment = line.split("|")
            jobs[job_id] = dict(
                state=state,
                name=name,
                gres=gres,
                memory=memory,
                cpus=cpus,
                partition=partition,
                comment=comment,
            )
        return jobs

    def show_job(self, job_id: str) -> str:
        return run(["scontrol", "show", "job", "-d", job_id]).stdout

    @staticmethod
    def tail(path: Path, lines: int = 40) -> str:
        if not path.exists():
            return f"({path} does not exist)"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def diagnostics(self) -> str:
        return (
            f"--- slurmctld log ---\n{self.tail(self.controller_log)}\n"
            f"--- slurmd log ---\n{self.tail(self.node_log)}"
        )

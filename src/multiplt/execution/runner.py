"""The worker pool that runs a batch of programs inside one sandbox.

This file runs *inside* the sandbox (bubblewrap or an Apptainer image) under whatever
``python3`` the sandbox has, so it uses the standard library only and imports nothing
from the package. The host side (:mod:`multiplt.execution.engine`) talks to it over
stdin and stdout, one JSON object per line:

* first line, host to runner: the batch header (run command, limits, workers, warm runtime);
* then one line per program, ``{"key": ..., "source": ...}``; end of input ends the batch;
* runner to host: one line per finished program, in completion order, with ``key``,
  ``exit_code``, ``stdout``, ``stderr``, ``timed_out``, ``duration_s`` and ``killed_for``.

The workers are processes, not threads, so that starting a program is a cheap
``vfork``/``exec`` and never waits for a lock. Each worker enters a user namespace of its
own where the kernel allows one, starts its programs in a PID namespace of their own (a
program that signals everything it may reaches only its own worker's processes), and sets
its rlimits once (memory, processes, file size, no core dumps); every program it runs
inherits them. A worker runs one program at a time, so the process count of its namespace
is that program's alone: a fork bomb exhausts its own allowance, not its batch-mates'.
Each program gets its own scratch directory (its working directory, ``HOME`` and
``TMPDIR``) and its own session, killed as a whole at the end; anything that escaped its
session dies with the sandbox at the end of the batch.

Warm runtimes
-------------
For runtimes whose start-up dominates (R, Racket), each worker keeps one server process
and hands it programs over a line protocol on the server's stdin and stdout::

    runner -> server   RUN <TAB> program path <TAB> scratch dir <TAB> stdout path <TAB> stderr path
    server -> runner   STARTED <TAB> pid      (pid of the process running it, 0 = in-process)
    server -> runner   DONE <TAB> exit code

The server prints ``READY`` once after start-up. It never runs user code in its own
state: R forks a child per program, Racket evaluates each in a fresh namespace under a
fresh custodian. On a timeout the runner kills the child (or the whole server, which is
restarted for the next program).
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import multiprocessing
import os
import resource
import select
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from multiprocessing.util import Finalize
from typing import Any

_CLONE_NEWUSER = 0x10000000
_CLONE_NEWPID = 0x20000000
_PR_SET_PDEATHSIG = 1
_READ_CHUNK = 65536
_EXIT_POLL_S = 0.1
_SCRATCH_ROOT = os.path.join(tempfile.gettempdir(), "multiplt-scratch")


def _new_user_namespace() -> bool:
    """Count this worker's processes in a namespace of its own (best effort)."""
    libc = ctypes.CDLL(None, use_errno=True)
    return bool(libc.unshare(_CLONE_NEWUSER) == 0)


def _new_pid_namespace() -> None:
    """Start this worker's programs in a PID namespace of their own (best effort).

    Every process of the sandbox runs as the same user, so without it a program that
    signals all it may (``kill(-1, SIGKILL)``) would kill the runner and the whole batch
    with it. Inside, it reaches only its own worker's processes. The namespace's first
    process (its init) is a reaper forked here; when the worker exits, the kernel kills
    the reaper and with it whatever a program left running. /proc stays the sandbox's:
    pids read there (and reported by warm servers) are the worker's, not the namespace's.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(_CLONE_NEWPID) != 0:
        return
    if os.fork() == 0:
        _reap_orphans(libc)


def _reap_orphans(libc: ctypes.CDLL) -> None:
    """The PID namespace's init: reaps orphans until its worker exits; never returns."""
    try:
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        # An init ignores signals left at their default from inside its namespace: a
        # program cannot stop it (Python's own SIGINT handler would let it).
        for number in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGUSR1):
            signal.signal(number, signal.SIG_DFL)
        os.closerange(3, 65536)  # hold none of the pool's pipes open
        while True:
            try:
                os.waitpid(-1, 0)
            except ChildProcessError:
                time.sleep(0.2)
    finally:
        os._exit(0)


class Batch:
    """The settings shared by every program of one batch (the header line)."""

    def __init__(self, header: dict[str, Any]) -> None:
        self.command: list[str] = header["command"]
        self.suffix: str = header["suffix"]
        self.workers: int = max(1, int(header["workers"]))
        self.timeout_s: float = float(header["timeout_s"])
        self.limits: dict[str, Any] = header["limits"]
        self.environment: dict[str, str] = header.get("environment", {})
        self.signals_ready: bool = bool(header.get("signals_ready", False))
        self.limit_address_space: bool = bool(header.get("limit_address_space", True))
        self.isolate_process_counts: bool = bool(header.get("isolate_process_counts", True))
        self.warm_command: list[str] | None = header.get("warm_command")

    def confine_worker(self) -> None:
        """Enter the worker's own user and PID namespaces and set the limits its programs
        inherit."""
        # Before lowering RLIMIT_NPROC: the kernel checks the parent namespace's count
        # against the limit in force when the child namespace was made, so only this
        # namespace is held to the per-program limit.
        if self.isolate_process_counts and _new_user_namespace():
            _new_pid_namespace()
        memory = int(self.limits["memory_mb"]) * 1024 * 1024
        kind = resource.RLIMIT_AS if self.limit_address_space else resource.RLIMIT_DATA
        resource.setrlimit(kind, (memory, memory))
        file_size = int(self.limits["file_size_mb"]) * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_FSIZE, (file_size, file_size))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        processes = int(self.limits["processes"]) + 2  # the worker and its reaper count
        resource.setrlimit(resource.RLIMIT_NPROC, (processes, processes))
        # Writing past RLIMIT_FSIZE should fail the write, not kill a warm server; an
        # ignored signal stays ignored across exec.
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)

    def environment_for(self, scratch: str) -> dict[str, str]:
        env = {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "LANG": "C.UTF-8",
            "LC_ALL": "C.UTF-8",
            "HOME": scratch,
            "TMPDIR": scratch,
        }
        env.update(self.environment)
        return env


def _exit_notifier(pid: int) -> int:
    """A pidfd that becomes readable when ``pid`` exits (Linux 5.3+), or -1."""
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):
        return -1


def _decode(data: bytes, limit: int) -> str:
    return data[:limit].decode("utf-8", errors="ignore")


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def _descendants(pid: int) -> list[int]:
    """``pid``'s descendants, from /proc (all of them live in this sandbox's pid namespace)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as handle:
                stat = handle.read()
        except OSError:
            continue
        parent = int(stat[stat.rindex(b")") + 2 :].split()[1])
        children.setdefault(parent, []).append(int(entry))
    found, frontier = [], [pid]
    while frontier:
        found.extend(frontier)
        frontier = [child for parent in frontier for child in children.get(parent, [])]
    return found


def _kill_tree(pid: int) -> None:
    """Kill a process that may not lead its own group (a forked warm-runtime child)."""
    for process in _descendants(pid):
        _kill_group(process)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(process, signal.SIGKILL)


class ColdRun:
    """One program in one fresh runtime process, its output read through pipes."""

    def __init__(self, batch: Batch, key: str, program_path: str, scratch: str) -> None:
        self.batch = batch
        self.key = key
        self.program_path = program_path
        self.scratch = scratch

    def run(self) -> dict[str, Any]:
        batch = self.batch
        argv = [part.replace("{file}", self.program_path) for part in batch.command]
        ready_read, ready_write = os.pipe() if batch.signals_ready else (-1, -1)
        env = batch.environment_for(self.scratch)
        pass_fds: tuple[int, ...] = ()
        if batch.signals_ready:
            pass_fds = (ready_write,)
            env["MULTIPLT_READY_FD"] = str(ready_write)
        started = time.monotonic()
        try:
            process = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                cwd=self.scratch,
                env=env,
                start_new_session=True,
                pass_fds=pass_fds,
                close_fds=True,
            )
        except OSError as error:  # e.g. the runtime is missing from the image
            return _record(self.key, 127, "", f"cannot start {argv[0]}: {error}", False, 0.0)
        finally:
            if batch.signals_ready:
                os.close(ready_write)
        try:
            return self._collect(process, ready_read, started)
        finally:
            _kill_group(process.pid)
            process.wait()
            if ready_read >= 0:
                os.close(ready_read)

    def _collect(
        self, process: subprocess.Popen[bytes], ready_fd: int, started: float
    ) -> dict[str, Any]:
        batch = self.batch
        keep = int(batch.limits["output_bytes"])
        kill_at = int(batch.limits["output_kill_bytes"])
        buffers = {"stdout": bytearray(), "stderr": bytearray()}
        totals = {"stdout": 0, "stderr": 0}
        selector = selectors.DefaultSelector()
        assert process.stdout is not None and process.stderr is not None
        selector.register(process.stdout, selectors.EVENT_READ, "stdout")
        selector.register(process.stderr, selectors.EVENT_READ, "stderr")
        if ready_fd >= 0:
            selector.register(ready_fd, selectors.EVENT_READ, "ready")
            deadline = started + float(batch.limits["startup_timeout_s"])
        else:
            deadline = started + batch.timeout_s
        clock_started = started if ready_fd < 0 else None
        exit_fd = _exit_notifier(process.pid)
        if exit_fd >= 0:
            selector.register(exit_fd, selectors.EVENT_READ, "exit")
        killed_for: str | None = None
        timed_out = False
        open_streams, exited = 2, False
        while open_streams or not exited:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                timed_out = clock_started is not None
                killed_for = None if timed_out else "startup"
                break
            # Once the program has exited, only drain what its pipes already hold: a
            # background process may keep them open. Without a pidfd, poll for the exit.
            wait = 0.0 if exited else remaining if exit_fd >= 0 else min(remaining, _EXIT_POLL_S)
            events = selector.select(wait)
            if exit_fd < 0 and not exited:
                exited = process.poll() is not None
            if exited and not events:
                break
            for event, _ in events:
                name = event.data
                if name == "exit":
                    exited = True
                    selector.unregister(exit_fd)
                    continue
                if name == "ready":
                    os.read(ready_fd, 1)
                    selector.unregister(ready_fd)
                    clock_started = time.monotonic()
                    deadline = clock_started + batch.timeout_s
                    continue
                chunk = os.read(event.fd, _READ_CHUNK)
                if not chunk:
                    selector.unregister(event.fileobj)
                    open_streams -= 1
                    continue
                totals[name] += len(chunk)
                if len(buffers[name]) < keep:
                    buffers[name] += chunk[: keep - len(buffers[name])]
            if totals["stdout"] + totals["stderr"] > kill_at:
                killed_for = "output"
                break
        selector.close()
        if exit_fd >= 0:
            os.close(exit_fd)
        if killed_for or timed_out:
            _kill_group(process.pid)
        exit_code = process.wait()
        duration = time.monotonic() - (clock_started or started)
        stderr = _decode(bytes(buffers["stderr"]), keep)
        if killed_for == "output":
            stderr += f"\n[multiplt: stopped after printing more than {kill_at} bytes]"
        if killed_for == "startup":
            stderr += "\n[multiplt: the runtime did not start in time]"
        return _record(
            self.key,
            -1 if timed_out else exit_code,
            _decode(bytes(buffers["stdout"]), keep),
            stderr,
            timed_out,
            duration,
            killed_for,
        )


class WarmServer:
    """A runtime server owned by one worker process; restarted whenever it dies or is killed."""

    # How often the output files of a running program are checked against the output limit.
    OUTPUT_POLL_S = 0.05

    def __init__(self, batch: Batch) -> None:
        assert batch.warm_command is not None
        self.batch = batch
        self.process: subprocess.Popen[bytes] | None = None
        self.reader: LineReader | None = None
        self.home = tempfile.mkdtemp(prefix="warm-", dir=_SCRATCH_ROOT)

    def _start(self) -> subprocess.Popen[bytes]:
        batch = self.batch
        process = subprocess.Popen(
            batch.warm_command or [],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            cwd=self.home,
            env=batch.environment_for(self.home),
            start_new_session=True,
            bufsize=0,
        )
        assert process.stdout is not None
        self.reader = LineReader(process.stdout.fileno())
        line = self.reader.read_line(float(batch.limits["startup_timeout_s"]))
        if line.strip() != "READY":
            _kill_group(process.pid)
            process.wait()
            raise RuntimeError(f"warm runtime {batch.warm_command} failed to start: {line!r}")
        return process

    def stop(self) -> None:
        if self.process is not None:
            _kill_group(self.process.pid)
            self.process.wait()
            self.process = None

    def _submit(self, request: str) -> tuple[str, float]:
        """Send a RUN request; return the first reply and when the request was sent (a
        server restart is not the program's time). A server found dead before it took the
        program (it died after its previous one) is restarted and asked again, so no
        program is reported as failed without having run."""
        for attempt in range(2):
            if self.process is None or self.process.poll() is not None:
                self.process = self._start()
            assert self.process.stdin is not None and self.reader is not None
            sent = time.monotonic()
            with contextlib.suppress(BrokenPipeError):  # a dead server shows in its reply
                self.process.stdin.write(request.encode())
            reply = self.reader.read_line(self.batch.timeout_s)
            if reply != "EOF" or attempt:
                return reply, sent
            self.stop()
        raise AssertionError("unreachable")

    def run(self, key: str, program_path: str, scratch: str) -> dict[str, Any]:
        out_path = os.path.join(scratch, ".stdout")
        err_path = os.path.join(scratch, ".stderr")
        reply, started = self._submit(f"RUN\t{program_path}\t{scratch}\t{out_path}\t{err_path}\n")
        child = int(reply.split("\t")[1]) if reply.startswith("STARTED\t") else 0
        killed_for = None
        if reply.startswith("STARTED\t"):
            reply, killed_for = self._await_done(started, (out_path, err_path))
        duration = time.monotonic() - started
        timed_out = reply == "" and killed_for is None
        if reply == "":
            self._stop_program(child)
            exit_code = -1 if timed_out else -9  # -9: killed, as a cold run would be
        elif reply.startswith("DONE\t"):
            exit_code = int(reply.split("\t")[1])
        else:  # the server died under the program (it was killed, or crashed)
            self.stop()
            exit_code = -9
        keep = int(self.batch.limits["output_bytes"])
        stderr = _read_head(err_path, keep)
        if killed_for == "output":
            kill_at = int(self.batch.limits["output_kill_bytes"])
            stderr += f"\n[multiplt: stopped after printing more than {kill_at} bytes]"
        out = _read_head(out_path, keep)
        return _record(key, exit_code, out, stderr, timed_out, duration, killed_for)

    def _await_done(self, started: float, outputs: tuple[str, str]) -> tuple[str, str | None]:
        """The server's DONE line; "" on timeout, or "" and "output" once the program printed
        more than a cold run may (here its output goes to files, not through pipes)."""
        assert self.reader is not None
        kill_at = int(self.batch.limits["output_kill_bytes"])
        deadline = started + self.batch.timeout_s
        while (remaining := deadline - time.monotonic()) > 0:
            line = self.reader.read_line(min(remaining, self.OUTPUT_POLL_S))
            if line:
                return line, None
            if sum(self._file_size(path) for path in outputs) > kill_at:
                return "", "output"
        return "", None

    def _stop_program(self, child: int) -> None:
        """Kill a program that ran too long or printed too much: the forked child, or the
        whole server when it runs programs in-process (pid 0) or does not report the kill."""
        assert self.reader is not None
        if child <= 0:
            self.stop()
            return
        _kill_tree(child)
        # A DONE line left unread would be taken for the next program's reply.
        if not self.reader.read_line(5.0).startswith("DONE\t"):
            self.stop()

    @staticmethod
    def _file_size(path: str) -> int:
        try:
            return os.path.getsize(path)
        except OSError:
            return 0


class LineReader:
    """Lines from a pipe with a timeout; its own buffer, so no line hides in a file object's."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.buffer = b""

    def read_line(self, timeout: float) -> str:
        """The next line; "" if none came within ``timeout`` seconds; "EOF" at end of stream."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([self.fd], [], [], remaining)[0]:
                return ""
            chunk = os.read(self.fd, 4096)
            if not chunk:
                return "EOF"
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return line.decode("utf-8", errors="replace")


def _read_head(path: str, limit: int) -> str:
    try:
        with open(path, "rb") as handle:
            return _decode(handle.read(limit), limit)
    except OSError:
        return ""


def _record(
    key: str,
    exit_code: int,
    stdout: str,
    stderr: str,
    timed_out: bool,
    duration_s: float,
    killed_for: str | None = None,
) -> dict[str, Any]:
    return {
        "key": key,
        "exit_code": exit_code,
        "stdout": stdout,
        "stderr": stderr,
        "timed_out": timed_out,
        "duration_s": round(duration_s, 4),
        "killed_for": killed_for,
    }


# Each worker process's batch settings and warm runtime (set by _start_worker).
_batch: Batch | None = None
_server: WarmServer | None = None


def _start_worker(batch: Batch) -> None:
    global _batch, _server
    batch.confine_worker()
    _batch = batch
    if batch.warm_command:
        _server = WarmServer(batch)
        Finalize(_server, _server.stop, exitpriority=10)


def _run_job(job: dict[str, Any]) -> dict[str, Any]:
    batch = _batch
    assert batch is not None
    scratch = tempfile.mkdtemp(prefix="p-", dir=_SCRATCH_ROOT)
    program_path = os.path.join(scratch, "program" + batch.suffix)
    try:
        with open(program_path, "w", encoding="utf-8") as handle:
            handle.write(job["source"])
        if _server is not None:
            return _server.run(job["key"], program_path, scratch)
        return ColdRun(batch, job["key"], program_path, scratch).run()
    except Exception as error:  # report it, never lose the rest of the batch
        return _record(job["key"], -2, "", f"[multiplt runner error] {error!r}", False, 0.0)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _jobs(lines: Iterator[str]) -> Iterator[dict[str, Any]]:
    for line in lines:
        if line.strip():
            yield json.loads(line)


def main() -> int:
    os.makedirs(_SCRATCH_ROOT, exist_ok=True)
    header_line = sys.stdin.readline()
    if not header_line:
        return 0
    batch = Batch(json.loads(header_line))
    context = multiprocessing.get_context("fork")
    with context.Pool(batch.workers, initializer=_start_worker, initargs=(batch,)) as pool:
        for record in pool.imap_unordered(_run_job, _jobs(iter(sys.stdin)), chunksize=1):
            sys.stdout.write(json.dumps(record) + "\n")
            sys.stdout.flush()
        pool.close()
        pool.join()
    return 0


if __name__ == "__main__":
    sys.exit(main())

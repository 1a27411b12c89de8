"""Hostile programs are contained and classified; their batch-mates and the host are not touched."""

from __future__ import annotations

import os
import socket
import subprocess
import threading
import time
import uuid
from pathlib import Path

import pytest

from multiplt.execution.engine import ExecutionEngine
from multiplt.execution.limits import Limits
from multiplt.execution.results import Program, Status
from tests.conftest import require_runtime

HEALTHY = "import sys\nprint(sum(range(10)))\n"
FORK_BOMB = (
    "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n"
)


class Listener:
    """A TCP listener on 127.0.0.1 that counts connections: the sandbox must never reach it."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.server.settimeout(0.2)
        self.port = self.server.getsockname()[1]
        self.connections = 0
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while not self.stopped.is_set():
            try:
                connection, _ = self.server.accept()
            except TimeoutError:
                continue
            self.connections += 1
            connection.close()

    def close(self) -> None:
        self.stopped.set()
        self.thread.join()
        self.server.close()


@pytest.fixture
def listener():
    listener = Listener()
    yield listener
    listener.close()


@pytest.fixture
def home_secret():
    """A file in the real home directory that no sandboxed program may read."""
    path = Path.home() / f".multiplt-test-secret-{uuid.uuid4().hex}"
    path.write_text("token-that-must-not-leak")
    yield path
    path.unlink()


def hostile_programs(
    canary: Path, listener: Listener, secret: Path
) -> dict[str, tuple[str, Status]]:
    return {
        "fork_bomb": (
            FORK_BOMB,
            Status.TIMEOUT,
        ),
        "memory_bomb": (
            "blocks = []\nwhile True:\n    blocks.append(bytearray(64 * 1024 * 1024))\n",
            Status.EXCEPTION,
        ),
        "infinite_loop": ("while True:\n    pass\n", Status.TIMEOUT),
        "gigabyte_print": (
            "import sys\nchunk = 'x' * (1 << 20)\n"
            "for _ in range(1024):\n    sys.stdout.write(chunk)\n",
            Status.EXCEPTION,
        ),
        "network": (
            f"import socket\nsocket.create_connection(('127.0.0.1', {listener.port}), timeout=2)\n",
            Status.EXCEPTION,
        ),
        "write_outside_scratch": (
            f"open({str(canary)!r}, 'w').write('escaped')\n",
            Status.EXCEPTION,
        ),
        "write_system": ("open('/usr/multiplt-canary', 'w').write('escaped')\n", Status.EXCEPTION),
        "read_home": (
            f"print(open({str(secret)!r}).read())\n",
            Status.EXCEPTION,
        ),
        "list_home": (
            f"import os\nassert os.listdir({str(secret.parent)!r}) == []\n",
            Status.EXCEPTION,
        ),
    }


def test_hostile_programs_are_contained(
    tmp_path: Path, listener: Listener, home_secret: Path
) -> None:
    language = require_runtime("py")
    canary = tmp_path / "canary"
    cases = hostile_programs(canary, listener, home_secret)
    programs = [Program(name, source) for name, (source, _) in cases.items()]
    programs += [Program(f"healthy_{i}", HEALTHY) for i in range(6)]
    engine = ExecutionEngine(workers=2, limits=Limits(timeout_s=3, memory_mb=512, processes=32))

    results = engine.run(language, programs)

    for name, (_, expected) in cases.items():
        assert results[name].status is expected, f"{name}: {results[name]}"
    for i in range(6):
        assert results[f"healthy_{i}"].status is Status.OK
        assert results[f"healthy_{i}"].stdout == "45\n"
    assert "token-that-must-not-leak" not in results["read_home"].stdout
    assert "MemoryError" in results["memory_bomb"].stderr
    assert len(results["gigabyte_print"].stdout) == engine.limits.output_bytes
    assert "stopped after printing" in results["gigabyte_print"].stderr
    # The host: no file written, no connection received, no process left behind.
    assert not canary.exists()
    assert not Path("/usr/multiplt-canary").exists()
    assert listener.connections == 0
    assert not _leftover_processes(str(canary))


def _leftover_processes(marker: str) -> list[str]:
    listing = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    return [line for line in listing.splitlines() if marker in line]


def test_a_fork_bomb_does_not_starve_its_batch_mates() -> None:
    """Process limits are counted per program, so healthy programs still start beside a bomb."""
    language = require_runtime("py")
    spawner = "import subprocess\nprint(subprocess.run(['true']).returncode)\n"
    programs = [Program("bomb", FORK_BOMB)] + [Program(f"spawn_{i}", spawner) for i in range(8)]
    engine = ExecutionEngine(workers=2, limits=Limits(timeout_s=4, processes=32))
    results = engine.run(language, programs)
    assert results["bomb"].status is Status.TIMEOUT
    for i in range(8):
        assert results[f"spawn_{i}"].status is Status.OK, results[f"spawn_{i}"]


@pytest.mark.parametrize("name", ["py", "r"])
def test_a_program_that_kills_everything_it_may_kills_only_itself(name: str) -> None:
    """Every process of a sandbox runs as the same user; ``kill(-1, SIGKILL)`` must still
    reach neither the runner nor a batch-mate (each worker's programs have their own PID
    namespace), with a cold runtime (Python) and a warm one (R's forking server)."""
    language = require_runtime(name)
    killers = {
        "py": "import os, signal, time\ntime.sleep(0.3)\nos.kill(-1, signal.SIGKILL)\n",
        "r": "Sys.sleep(0.3)\nsystem('kill -9 -1')\n",
    }
    sleepers = {
        "py": "import time\ntime.sleep(1.5)\nprint('alive')\n",
        "r": "Sys.sleep(1.5)\ncat('alive\\n')\n",
    }
    programs = [Program("killer", killers[name])]
    programs += [Program(f"sleeper_{i}", sleepers[name]) for i in range(3)]
    results = ExecutionEngine(workers=4, limits=Limits(timeout_s=6)).run(language, programs)
    for i in range(3):
        assert results[f"sleeper_{i}"].status is Status.OK, results[f"sleeper_{i}"]
        assert results[f"sleeper_{i}"].stdout == "alive\n"


def test_sandbox_runs_unprivileged_when_started_as_root() -> None:
    language = require_runtime("py")
    if os.geteuid() != 0:
        pytest.skip("only meaningful when the tests run as root")
    program = Program("whoami", "import os\nprint(os.getuid() != 0 or 'mapped')\n")
    result = ExecutionEngine(workers=1).run(language, [program])["whoami"]
    assert result.status is Status.OK


def test_programs_that_outlive_their_pipes_are_handled() -> None:
    """A daemon holding stdout open does not stall the batch; a program that closes its
    output and keeps running still times out."""
    language = require_runtime("py")
    programs = [
        Program("daemon", "import subprocess\nsubprocess.Popen(['sleep', '100'])\nprint('bye')\n"),
        Program("silent", "import os, time\nos.close(1)\nos.close(2)\ntime.sleep(100)\n"),
    ]
    engine = ExecutionEngine(workers=2, limits=Limits(timeout_s=2))
    started = time.monotonic()
    results = engine.run(language, programs)
    assert time.monotonic() - started < 20
    assert results["daemon"].status is Status.OK and results["daemon"].stdout == "bye\n"
    assert results["silent"].status is Status.TIMEOUT

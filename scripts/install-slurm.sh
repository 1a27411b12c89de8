#!/usr/bin/env bash
# Installs a single-node SLURM for tests/test_slurm.py on Debian 12: the controller, the node
# daemon, the client commands and munge (authentication).
# The packages' own services are NOT started or enabled here: the test starts the daemons as its
# own subprocesses and stops them by process id. Safe to run again; installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

source scripts/debian.sh
# Debian 12 (bookworm): SLURM 22.05.8, munge 0.5.15. Their services must not start on install.
DEBIAN_NO_SERVICES=1 install_missing_debian_packages slurmctld slurmd slurm-client munge

# The executor plugins come with the package (pyproject.toml, extra "workflow").

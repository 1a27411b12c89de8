#!/usr/bin/env bash
# The test suite, from a fresh Debian machine: installs what the tests need, then runs them.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
bash scripts/install-slurm.sh   # a real single-node SLURM for tests/test_slurm.py
source .venv/bin/activate
# SLURM's and munge's daemons live in sbin, which a login shell's PATH may lack.
export PATH="$PATH:/usr/sbin:/sbin"
python -m pytest "$@"

#!/usr/bin/env bash
# The test suite, from a fresh Debian machine: installs what the tests need, then runs them.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
bash scripts/install-slurm.sh   # a real single-node SLURM for tests/test_slurm.py
source .venv/bin/activate
# SLURM's and munge's daemons live in sbin, which a login shell's PATH may lack.
export PATH="$PATH:/usr/sbin:/sbin"
# Static checks first: seconds, and they name the line.
python -m ruff check .
python -m ruff format --check .
python -m mypy src/multiplt
snakefmt --check Snakefile rules
python -m pytest "$@"

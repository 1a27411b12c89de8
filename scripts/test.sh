#!/usr/bin/env bash
# The test suite, from a fresh Debian machine: installs what the tests need, then runs them.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
source .venv/bin/activate
python -m pytest "$@"

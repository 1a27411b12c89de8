#!/usr/bin/env bash
# The main job on the embedded default (config/demo.yaml), from a fresh Debian machine.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
source .venv/bin/activate
snakemake --cores all --configfile config/demo.yaml "$@"

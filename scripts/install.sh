#!/usr/bin/env bash
# Installs what the workflow and its tests need on Debian 12: the language runtimes that
# generated code runs in, bubblewrap for the sandbox, and a Python virtual environment
# (.venv) with the package. Safe to run again; it installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/debian.sh

apt_packages=(
  python3 python3-venv bubblewrap procps   # the sandbox runs the batch runner with /usr/bin/python3
  lua5.3 lua-unit r-base-core ocaml-nox racket
)
install_missing_debian_packages "${apt_packages[@]}"

python3 -m venv .venv
.venv/bin/pip install -q --upgrade pip
# torch first and pinned: a bare `torch` requirement would fetch a multi-GB CUDA build
# (the development machines keep a CPU build of this version on disk).
.venv/bin/pip install -q "torch==2.13.0"
.venv/bin/pip install -q -e ".[workflow,generation,test]"

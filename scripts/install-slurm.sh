#!/usr/bin/env bash
# Installs a single-node SLURM for tests/test_slurm.py on Debian 12: the controller, the node
# daemon, the client commands and munge (authentication).
# The packages' own services are NOT started or enabled here: the test starts the daemons as its
# own subprocesses and stops them by process id. Safe to run again; installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian 12 (bookworm): SLURM 22.05.8, munge 0.5.15.
apt_packages=(slurmctld slurmd slurm-client munge)
missing=()
for package in "${apt_packages[@]}"; do
  dpkg-query -W -f='${db:Status-Status}' "$package" 2>/dev/null | grep -qx installed \
    || missing+=("$package")
done
if [ "${#missing[@]}" -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  # policy-rc.d exit 101: the packages' postinst scripts must not start daemons on a CI machine.
  policy=/usr/sbin/policy-rc.d
  created_policy=""
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
    $sudo chmod +x "$policy"
    created_policy=1
  fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
  [ -z "$created_policy" ] || $sudo rm -f "$policy"
fi

# The executor plugins come with the package (pyproject.toml, extra "workflow").

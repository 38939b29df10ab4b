#!/usr/bin/env bash
# Debian packages for the test infrastructure only (the workflow itself needs none).
# Installed when running as root; otherwise the tests that need them skip and say why.
set -euo pipefail
packages=(slurm-wlm munge chromium chromium-driver)  # SLURM cluster (test_slurm), Chromium (test_report)
if [ ${#packages[@]} -eq 0 ]; then exit 0; fi
missing=()
for p in "${packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "not root: skipping install of ${missing[*]}; tests that need them will be skipped" >&2
  exit 0
fi
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"

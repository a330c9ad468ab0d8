#!/usr/bin/env bash
# Installs the Debian packages the tests drive, when missing: prometheus (a real Prometheus scrapes a
# peer: test/observations/) and chromium (the dashboard's browser test: test/ui/). Run by .ci/run and,
# on a fresh machine, by the test command itself (test/run.ts). Needs root or sudo; without either it
# says what to install and the tests that need them fail with the same words.
set -euo pipefail
need=()
command -v prometheus >/dev/null 2>&1 || need+=(prometheus)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
((${#need[@]})) || exit 0
sudo=()
if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    sudo=(sudo -n)
  else
    echo "install-debian-packages: run as root: apt-get install -y ${need[*]}" >&2
    exit 1
  fi
fi
echo "install-debian-packages: installing ${need[*]} (first run only)…" >&2
"${sudo[@]}" apt-get update -qq >&2
DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "${need[@]}" >&2

#!/usr/bin/env bash
# What `make bench` needs beyond `scripts/bootstrap.sh --test`, from the package registries:
#   wrk     the load generator (Debian package; apt-get, as root or through sudo)
#   py-spy  the sampling profiler for --profile (PyPI, into .venv)
# Idempotent: does nothing when both are there.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PY_SPY_VERSION=0.4.3

if ! command -v wrk >/dev/null; then
  echo "==> installing wrk (Debian package)"
  SUDO=()
  if [[ $(id -u) -ne 0 ]]; then
    command -v sudo >/dev/null || { echo "bench: wrk is missing; install it (apt-get install wrk)" >&2; exit 1; }
    SUDO=(sudo)
  fi
  "${SUDO[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -qq wrk >/dev/null
fi
echo "==> $(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2)"

if [[ ! -x $ROOT/.venv/bin/py-spy ]]; then
  echo "==> installing py-spy $PY_SPY_VERSION into .venv"
  "$ROOT/.venv/bin/python" -m pip install -q --disable-pip-version-check "py-spy==$PY_SPY_VERSION"
fi
echo "==> $("$ROOT/.venv/bin/py-spy" --version)"

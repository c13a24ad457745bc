#!/usr/bin/env bash
# Install the reference Docker Compose v2 CLI as a standalone binary at
# <repo>/.tools/bin/docker-compose, built from source with Go (no Docker engine needed; its
# `config` command only parses, interpolates and validates compose.yaml).
#
#   scripts/install-compose.sh            # idempotent: does nothing if the right version is there
#   COMPOSE_VERSION=v2.40.3 scripts/install-compose.sh
#
# Why built from source: only package registries are reachable here, so the release binaries
# can't be downloaded; the Go module proxy serves Compose's source as an ordinary Go module.
# Why not `go install github.com/docker/compose/v2/cmd@VERSION`: Compose's go.mod has `exclude`
# directives, which `go install pkg@version` refuses. So: `go mod download` the module and
# `go build ./cmd` inside it, the way Compose's own Makefile does.
#
# A build takes ~3 min on 2 cores with Go's module/build caches warm, longer from cold. The
# finished binary is also kept in ${GATEHOUSE_TOOLS_CACHE:-~/.cache/gatehouse-tools} so other
# clones of the repo on the same machine (CI) copy it instead of building again.
set -euo pipefail

COMPOSE_VERSION="${COMPOSE_VERSION:-v2.40.3}"
COMPOSE_MODULE="github.com/docker/compose/v2"

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEST_DIR="$ROOT/.tools/bin"
DEST="$DEST_DIR/docker-compose"
CACHE_DIR="${GATEHOUSE_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/gatehouse-tools}"
CACHED="$CACHE_DIR/docker-compose-$COMPOSE_VERSION"

log() { echo "[install-compose] $*" >&2; }

# `docker-compose version --short` prints e.g. "2.40.3".
version_of() { "$1" version --short 2>/dev/null || true; }
want="${COMPOSE_VERSION#v}"

if [[ -x "$DEST" ]] && [[ "$(version_of "$DEST")" == "$want" ]]; then
    log "docker-compose $COMPOSE_VERSION already installed at $DEST"
    exit 0
fi

mkdir -p "$DEST_DIR"

if [[ -x "$CACHED" ]] && [[ "$(version_of "$CACHED")" == "$want" ]]; then
    log "copying cached docker-compose $COMPOSE_VERSION from $CACHED"
    cp "$CACHED" "$DEST.tmp.$$"
    mv -f "$DEST.tmp.$$" "$DEST"
    log "installed $("$DEST" version)"
    exit 0
fi

GO="$(command -v go || true)"
if [[ -z "$GO" && -x /usr/local/go/bin/go ]]; then
    GO=/usr/local/go/bin/go
fi
if [[ -z "$GO" ]]; then
    log "ERROR: Go is needed to build docker-compose $COMPOSE_VERSION from source, and 'go' is not on PATH"
    exit 1
fi
log "using $("$GO" version)"

log "downloading module $COMPOSE_MODULE@$COMPOSE_VERSION (Go module proxy)"
src="$("$GO" mod download -json "$COMPOSE_MODULE@$COMPOSE_VERSION" \
       | sed -n 's/^[[:space:]]*"Dir":[[:space:]]*"\(.*\)",\{0,1\}[[:space:]]*$/\1/p')"
if [[ -z "$src" || ! -d "$src" ]]; then
    log "ERROR: 'go mod download $COMPOSE_MODULE@$COMPOSE_VERSION' gave no source directory"
    exit 1
fi

log "building docker-compose $COMPOSE_VERSION (takes a few minutes on 2 cores; dependencies are fetched first)"
start=$SECONDS
tmp="$DEST.tmp.$$"
trap 'rm -f "$tmp"' EXIT
(
    cd "$src"
    # The module cache is read-only and has no VCS metadata: -buildvcs=false; -mod=readonly keeps
    # the build to exactly the versions in Compose's go.sum.
    GOFLAGS="${GOFLAGS:-} -buildvcs=false -mod=readonly" CGO_ENABLED=0 \
        "$GO" build -trimpath \
        -ldflags "-s -w -X $COMPOSE_MODULE/internal.Version=$COMPOSE_VERSION" \
        -o "$tmp" ./cmd
)
got="$(version_of "$tmp")"
if [[ "$got" != "$want" ]]; then
    log "ERROR: built binary reports version '$got', expected '$want'"
    exit 1
fi
mv -f "$tmp" "$DEST"
trap - EXIT
log "built in $((SECONDS - start))s"

if mkdir -p "$CACHE_DIR" 2>/dev/null && cp "$DEST" "$CACHED.tmp.$$" 2>/dev/null; then
    mv -f "$CACHED.tmp.$$" "$CACHED"
    log "cached a copy at $CACHED"
fi

log "installed $("$DEST" version) at $DEST"

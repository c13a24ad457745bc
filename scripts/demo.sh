#!/usr/bin/env bash
# `make demo`: the stack exactly as `make dev` runs it (scripts/dev.sh), plus, on 127.0.0.1,
#   demo-idp  8090  the demo identity provider (demo/idp.py: the tests' oidc-provider)
#   toolbox   8091  an open demo MCP server         (demo/servers.py toolbox)
#   notes     8092  an OAuth-protected one, notes per user (demo/servers.py notes)
# then demo/provision.py creates the demo gateway and its targets through the admin APIs and
# prints what to do next. Ctrl-C, or any process exiting, stops all of them.
set -euo pipefail

# shellcheck source=scripts/dev.sh
source "$(dirname "${BASH_SOURCE[0]}")/dev.sh"

DEMO_IDP_PORT=8090
DEMO_TOOLBOX_PORT=8091
DEMO_NOTES_PORT=8092
DEMO_DATA=$DATA/demo

start_demo_servers() {
  local port
  for port in "$DEMO_IDP_PORT" "$DEMO_TOOLBOX_PORT" "$DEMO_NOTES_PORT"; do
    ensure_port_free "$port" "stop it: the demo's ports are fixed (docs/demo.md)"
  done
  mkdir -p "$DEMO_DATA"
  # A fresh secret per run for the provider's admin API (only demo/provision.py uses it).
  DEMO_IDP_ADMIN_SECRET=$("$VENV/bin/python" -c 'import secrets; print(secrets.token_urlsafe(32))')
  export DEMO_IDP_ADMIN_SECRET
  local py=$VENV/bin/python issuer=http://127.0.0.1:$DEMO_IDP_PORT
  say "starting the demo identity provider on $issuer"
  start demo-idp "$py" demo/idp.py --port "$DEMO_IDP_PORT" --keys "$DEMO_DATA/idp-keys.json"
  wait_port demo-idp 127.0.0.1 "$DEMO_IDP_PORT"
  say "starting the demo MCP servers: toolbox (open) on $DEMO_TOOLBOX_PORT, notes (OAuth) on $DEMO_NOTES_PORT"
  start toolbox "$py" demo/servers.py toolbox --port "$DEMO_TOOLBOX_PORT"
  start notes "$py" demo/servers.py notes --port "$DEMO_NOTES_PORT" --issuer "$issuer"
  wait_port toolbox 127.0.0.1 "$DEMO_TOOLBOX_PORT"
  wait_port notes 127.0.0.1 "$DEMO_NOTES_PORT"
}

demo_main() {
  start_stack --demo
  start_demo_servers
  say "creating the demo gateway and its targets (demo/provision.py)"
  "$VENV/bin/python" demo/provision.py --state "$DEMO_DATA/state.json" || die "the demo set-up failed (above)"
  wait_for_exit
  exit 1
}

demo_main "$@"

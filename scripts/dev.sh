#!/usr/bin/env bash
# Run the whole Gatehouse stack on 127.0.0.1 in the foreground (`make dev`) until Ctrl-C:
#   nats-server with JetStream   unless NATS_URL is set     (data in .data/nats)
#   mongod, else FerretDB        unless MONGODB_URL is set  (data in .data/mongo, .data/ferretdb)
#   gatehouse-identity, gatehouse-sync-worker, gatehouse-gateway, gatehouse-audit, gatehouse-console
# Every line of output goes to stdout, prefixed with the process name. Ctrl-C, or any process
# exiting, stops all of them.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

VENV=$ROOT/.venv
DATA=$ROOT/.data
NATS_PORT=4222
MONGO_PORT=27017
GATEWAY_PORT=${GATEWAY_PORT:-8080}
IDENTITY_PORT=${IDENTITY_PORT:-8081}
SYNC_WORKER_PORT=${SYNC_WORKER_HEALTH_PORT:-8082}
AUDIT_PORT=${AUDIT_HEALTH_PORT:-8083}
CONSOLE_PORT=${CONSOLE_PORT:-8084}
START_TIMEOUT=30  # seconds to wait for a port

OWN_NATS=false
NAMES=()  # process name, in start order
PIDS=()   # its pid, which is also its process group id (started with setsid)
STOPPING=false

say() { echo "==> $*"; }
die() { echo "dev: error: $*" >&2; exit 1; }

# Copies stdin to stdout with "name | " in front of every line. Ignores Ctrl-C, so it lives
# until its process closes the pipe and the process's last lines still get printed.
prefix_lines() {
  trap '' INT TERM
  local line
  while IFS= read -r line || [[ -n $line ]]; do
    printf '%-12s | %s\n' "$1" "$line"
  done
}

# start NAME COMMAND...: runs COMMAND in the background in its own process group.
start() {
  local name=$1
  shift
  setsid "$@" </dev/null > >(prefix_lines "$name") 2>&1 &
  NAMES+=("$name")
  PIDS+=("$!")
}

pid_of() {
  local i
  for i in "${!NAMES[@]}"; do
    if [[ ${NAMES[i]} == "$1" ]]; then echo "${PIDS[i]}"; fi
  done
}

port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

# wait_port NAME HOST PORT: waits until HOST:PORT accepts connections, or NAME has exited.
wait_port() {
  local name=$1 host=$2 port=$3 pid i
  pid=$(pid_of "$name")
  for ((i = 0; i < START_TIMEOUT * 10; i++)); do
    port_open "$host" "$port" && return 0
    kill -0 "$pid" 2>/dev/null || die "$name exited before listening on $host:$port"
    sleep 0.1
  done
  die "$name did not listen on $host:$port within ${START_TIMEOUT}s"
}

# ensure_port_free PORT HINT
ensure_port_free() {
  if port_open 127.0.0.1 "$1"; then
    die "port $1 on 127.0.0.1 is already in use; stop whatever listens there, or $2"
  fi
}

# any_alive PID...: is any process left in these process groups?
any_alive() {
  local pid
  for pid in "$@"; do
    if kill -0 -- "-$pid" 2>/dev/null; then return 0; fi
  done
  return 1
}

# stop_pids PID...: SIGTERM to each process group, SIGKILL to what is left after 10 s.
stop_pids() {
  local pid i
  for pid in "$@"; do kill -TERM -- "-$pid" 2>/dev/null; done
  for ((i = 0; i < 100; i++)); do
    any_alive "$@" || return 0
    sleep 0.1
  done
  for pid in "$@"; do kill -KILL -- "-$pid" 2>/dev/null; done
}

# Stops the services first, then the servers they use (reverse start order).
stop_all() {
  $STOPPING && return
  STOPPING=true
  # Keep going whatever happens, also when stdout went away with Ctrl-C (`make dev | tee log`).
  set +e
  trap '' INT TERM HUP PIPE
  ((${#PIDS[@]})) || return 0
  say "stopping ${NAMES[*]}"
  local i
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
    stop_pids "${PIDS[i]}"
  done
  wait 2>/dev/null || true  # the output prefixers
  say "stopped"
}

start_nats() {
  if [[ -n ${NATS_URL:-} ]]; then
    say "NATS: using NATS_URL=$NATS_URL"
    return
  fi
  ensure_port_free "$NATS_PORT" "set NATS_URL to use that server"
  mkdir -p "$DATA/nats"
  say "starting nats-server (JetStream, data in .data/nats) on 127.0.0.1:$NATS_PORT"
  start nats "$VENV/bin/nats-server" -c "$ROOT/config/nats.conf" -js -sd "$DATA/nats" -a 127.0.0.1 -p "$NATS_PORT"
  wait_port nats 127.0.0.1 "$NATS_PORT"
  NATS_URL=nats://127.0.0.1:$NATS_PORT
  OWN_NATS=true  # ours: every service connects as its own user of config/nats.conf
}

start_mongodb() {
  if [[ -n ${MONGODB_URL:-} ]]; then
    say "MongoDB: using MONGODB_URL"
    return
  fi
  ensure_port_free "$MONGO_PORT" "set MONGODB_URL to use that server"
  if command -v mongod >/dev/null; then
    mkdir -p "$DATA/mongo"
    say "starting mongod (data in .data/mongo) on 127.0.0.1:$MONGO_PORT"
    start mongod mongod --dbpath "$DATA/mongo" --bind_ip 127.0.0.1 --port "$MONGO_PORT"
    wait_port mongod 127.0.0.1 "$MONGO_PORT"
  else
    mkdir -p "$DATA/ferretdb"
    say "starting FerretDB (SQLite, data in .data/ferretdb) on 127.0.0.1:$MONGO_PORT"
    start ferretdb "$ROOT/.tools/bin/ferretdb" --handler=sqlite --sqlite-url="file:$DATA/ferretdb/" \
      --listen-addr="127.0.0.1:$MONGO_PORT" --state-dir=- --debug-addr=- --telemetry=disable \
      --log-level=warn
    wait_port ferretdb 127.0.0.1 "$MONGO_PORT"
  fi
  MONGODB_URL=mongodb://127.0.0.1:$MONGO_PORT
}

# start_service NAME PORT PORT_VARIABLE
start_service() {
  local name=$1 port=$2 bin=$VENV/bin/gatehouse-$1
  [[ -x $bin ]] || die "$bin is missing; is services/$name installed? (scripts/bootstrap.sh)"
  ensure_port_free "$port" "set $3 to another port"
  say "starting gatehouse-$name on 127.0.0.1:$port"
  if $OWN_NATS; then
    local password_var
    password_var=GATEHOUSE_NATS_$(echo "$name" | tr 'a-z-' 'A-Z_')_PASSWORD
    NATS_USER=$name NATS_PASSWORD=${!password_var} start "$name" "$bin"
  else
    start "$name" "$bin"
  fi
}

# The web console talks to the others over HTTP only (no NATS user, no database).
start_console() {
  local bin=$VENV/bin/gatehouse-console
  [[ -x $bin ]] || die "$bin is missing; is services/console installed? (scripts/bootstrap.sh)"
  ensure_port_free "$CONSOLE_PORT" "set CONSOLE_PORT to another port"
  say "starting gatehouse-console on 127.0.0.1:$CONSOLE_PORT"
  CONSOLE_PORT=$CONSOLE_PORT CONSOLE_GATEWAY_URL=http://127.0.0.1:$GATEWAY_PORT \
    CONSOLE_IDENTITY_URL=http://127.0.0.1:$IDENTITY_PORT CONSOLE_AUDIT_URL=http://127.0.0.1:$AUDIT_PORT \
    CONSOLE_PUBLIC_URL=${CONSOLE_PUBLIC_URL:-http://127.0.0.1:$CONSOLE_PORT} start console "$bin"
}

set_dev_defaults() {
  if [[ -z ${GATEHOUSE_ADMIN_TOKEN:-} ]]; then
    GATEHOUSE_ADMIN_TOKEN=gatehouse-dev-admin-token
    say "GATEHOUSE_ADMIN_TOKEN not set; using the dev default: $GATEHOUSE_ADMIN_TOKEN"
  else
    say "GATEHOUSE_ADMIN_TOKEN taken from the environment"
  fi
  GATEHOUSE_SESSION_SECRET=${GATEHOUSE_SESSION_SECRET:-gatehouse-dev-session-secret-not-for-production}
  # dev-only keys: the vault key ring (kid:base64 of 32 bytes) and the workload-token signing key
  IDENTITY_VAULT_KEYS=${IDENTITY_VAULT_KEYS:-dev1:ZGV2LW9ubHktdmF1bHQta2V5LW5vdC1mb3ItcHJvZCE=}
  IDENTITY_TOKEN_KEYS=${IDENTITY_TOKEN_KEYS:-dev1:gatehouse-dev-token-signing-key-not-for-production}
  export GATEHOUSE_ADMIN_TOKEN GATEHOUSE_SESSION_SECRET IDENTITY_VAULT_KEYS IDENTITY_TOKEN_KEYS PYTHONUNBUFFERED=1
  # dev-only passwords of the NATS users in config/nats.conf
  local user var
  for user in GATEWAY IDENTITY SYNC_WORKER AUDIT ADMIN; do
    var=GATEHOUSE_NATS_${user}_PASSWORD
    export "$var=${!var:-dev-nats-${user,,}-password}"
  done
}

print_banner() {
  local gateway=${GATEWAY_PUBLIC_URL:-http://127.0.0.1:$GATEWAY_PORT}
  local identity=${IDENTITY_PUBLIC_URL:-http://127.0.0.1:$IDENTITY_PORT}
  say "Gatehouse is up: gateway $gateway, identity $identity"
  say "admin token: $GATEHOUSE_ADMIN_TOKEN   (Ctrl-C stops everything)"
  say "audit trail: .venv/bin/gatehouse-audit tail --follow"
  say "console: ${CONSOLE_PUBLIC_URL:-http://127.0.0.1:$CONSOLE_PORT} (sign in with the admin token)"
}

# name_of PID
name_of() {
  local i
  for i in "${!PIDS[@]}"; do
    if [[ ${PIDS[i]} == "$1" ]]; then echo "${NAMES[i]}"; fi
  done
}

# Returns when the first process exits; says which one. (`wait -n` alone would miss a process
# that died during start-up, so look first, then wait.)
wait_for_exit() {
  local pid died status
  while true; do
    for pid in "${PIDS[@]}"; do
      if ! kill -0 "$pid" 2>/dev/null; then
        status=0
        wait "$pid" || status=$?
        say "$(name_of "$pid") exited with status $status"
        return
      fi
    done
    died=
    status=0
    wait -n -p died "${PIDS[@]}" || status=$?
    if [[ -n $died ]]; then
      say "$(name_of "$died") exited with status $status"
      return
    fi
  done
}

# start_stack [BOOTSTRAP_OPTION]: bootstrap, then every process above, until all listen.
start_stack() {
  bash "$ROOT/scripts/bootstrap.sh" "$@"
  # Ctrl-C (or a TERM/HUP) is the normal way to stop: exit 0. A process exiting by itself: exit 1.
  trap 'echo; exit 0' INT
  trap 'exit 0' TERM HUP
  trap stop_all EXIT
  set_dev_defaults
  start_nats
  start_mongodb
  export NATS_URL MONGODB_URL
  start_service identity "$IDENTITY_PORT" IDENTITY_PORT  # first: it creates the event stream the others wait for
  start_service sync-worker "$SYNC_WORKER_PORT" SYNC_WORKER_HEALTH_PORT
  start_service gateway "$GATEWAY_PORT" GATEWAY_PORT
  start_service audit "$AUDIT_PORT" AUDIT_HEALTH_PORT
  start_console
  wait_port identity 127.0.0.1 "$IDENTITY_PORT"
  wait_port sync-worker 127.0.0.1 "$SYNC_WORKER_PORT"
  wait_port gateway 127.0.0.1 "$GATEWAY_PORT"
  wait_port audit 127.0.0.1 "$AUDIT_PORT"
  wait_port console 127.0.0.1 "$CONSOLE_PORT"
}

main() {
  start_stack
  print_banner
  wait_for_exit
  exit 1
}

# scripts/demo.sh sources this file for its functions
if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
  main "$@"
fi

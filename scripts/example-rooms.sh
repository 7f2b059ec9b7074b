#!/usr/bin/env bash
# scripts/example-rooms.sh — runs the rooms example (examples/rooms): the
# Socket.IO rooms-chat tutorial on chatgate, with its Go backend behind the
# gateway's backend proxy. See docs/backend.md.
#
# Installs the socket.io-client bundle the gateway serves (npm ci --prefix
# sioclient; the page loads it from /socket.io/socket.io.js, which the
# backend forwards to the gateway), builds the gateway and the backend,
# starts both on loopback, prints the URL to open (in two tabs, to chat with
# yourself), and stops both on exit, Ctrl-C or SIGTERM.
#
# Environment (all optional):
#   GATEWAY_PORT  the gateway's public port (default 8080)
#   API_PORT      its server API (default 9091)
#   ADMIN_PORT    its admin listener, /metrics (default 9090)
#   BACKEND_PORT  the backend: the page and the proxy URLs (default 3000)
#   CHATGATE_API_KEY, CHATGATE_PROXY_SECRET
#                 the gateway's -api-key and -proxy-secret, read by the
#                 gateway and the backend alike (default: random, per run)
set -euo pipefail
cd "$(dirname "$0")/.."

HOST=127.0.0.1
GATEWAY_PORT=${GATEWAY_PORT:-8080}
API_PORT=${API_PORT:-9091}
ADMIN_PORT=${ADMIN_PORT:-9090}
BACKEND_PORT=${BACKEND_PORT:-3000}
BACKEND_URL="http://$HOST:$BACKEND_PORT"
GATEWAY_URL="http://$HOST:$GATEWAY_PORT"

random() { od -An -tx1 -N16 /dev/urandom | tr -d ' \n'; }
# Passed through the environment, which the gateway reads for -api-key and
# -proxy-secret: a command line shows up in ps.
export CHATGATE_API_KEY=${CHATGATE_API_KEY:-$(random)}
export CHATGATE_PROXY_SECRET=${CHATGATE_PROXY_SECRET:-$(random)}

bindir=$(mktemp -d)
pids=()
# shellcheck disable=SC2317  # run by the EXIT trap
cleanup() {
  local pid
  for pid in "${pids[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${pids[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$bindir"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# wait_http waits (at most 10 s) until url answers 200, while pid runs.
wait_http() {
  local url=$1 pid=$2 what=$3 i
  for ((i = 0; i < 200; i++)); do
    kill -0 "$pid" 2>/dev/null || { echo "$what exited" >&2; return 1; }
    curl -fsS -o /dev/null "$url" 2>/dev/null && return 0
    sleep 0.05
  done
  echo "$what did not answer $url in 10 s" >&2
  return 1
}

echo "==> npm ci --prefix sioclient (the socket.io-client bundle the gateway serves)"
npm ci --prefix sioclient --no-audit --no-fund --loglevel=error

echo "==> building the gateway and the backend"
go build -o "$bindir/gateway" ./cmd/gateway
go build -o "$bindir/rooms-backend" ./examples/rooms/backend

echo "==> starting the backend on $BACKEND_URL"
"$bindir/rooms-backend" -addr "$HOST:$BACKEND_PORT" -root examples/rooms \
  -gateway-url "$GATEWAY_URL" -api-url "http://$HOST:$API_PORT" &
pids+=($!)
wait_http "$BACKEND_URL/healthz" "${pids[-1]}" "the backend"

echo "==> starting the gateway on $GATEWAY_URL"
# From the repository root, so that its default -sio-client-dir
# (sioclient/node_modules/socket.io-client/dist) is the bundle just installed.
"$bindir/gateway" -addr "$HOST:$GATEWAY_PORT" \
  -api-addr "$HOST:$API_PORT" -admin-addr "$HOST:$ADMIN_PORT" \
  -proxy-event-url "$BACKEND_URL/chatgate/event" \
  -proxy-disconnect-url "$BACKEND_URL/chatgate/disconnect" \
  -sio-cors-origins "$BACKEND_URL" \
  -drain-timeout 2s &
pids+=($!)
wait_http "$GATEWAY_URL/healthz" "${pids[-1]}" "the gateway"
# The page's <script src="/socket.io/socket.io.js">: the gateway's bundle,
# through the backend.
curl -fsS -o /dev/null "$BACKEND_URL/socket.io/socket.io.js" ||
  { echo "the page's /socket.io/socket.io.js did not load from the gateway" >&2; exit 1; }

cat <<EOF

  The rooms example is running. Open, in two or more tabs:

      $BACKEND_URL/

  gateway  $GATEWAY_URL   (metrics: http://$HOST:$ADMIN_PORT/metrics)
  backend  $BACKEND_URL   (the page, /chatgate/event, /chatgate/disconnect)

  Ctrl-C stops both.

EOF

# Until either stops (or a signal comes): the other is then stopped too.
set +e
wait -n "${pids[@]}"
status=$?
set -e
echo "a process exited (status $status); stopping the other" >&2
exit 1

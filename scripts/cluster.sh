#!/usr/bin/env bash
# scripts/cluster.sh — a local chatgate cluster: one NATS server, three
# gateway nodes and haproxy in front, all on loopback. Prints where to
# connect; Ctrl-C stops everything it started (by PID).
#
#   scripts/cluster.sh [--port 8080]
#
# Needs haproxy (Debian: apt-get install haproxy). The NATS server is the
# official nats-server, built from the Go module this repository already
# requires. Ports: haproxy PORT, gateways 18081-18083 (admin 19091-19093),
# NATS 14222.
set -euo pipefail
cd "$(dirname "$0")/.."

PORT=8080
while [ $# -gt 0 ]; do
  case "$1" in
    --port) PORT=$2; shift 2 ;;
    -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done
HAPROXY=$(command -v haproxy || echo /usr/sbin/haproxy)
[ -x "$HAPROXY" ] || { echo "haproxy not found: apt-get install haproxy" >&2; exit 1; }

work=$(mktemp -d)
pids=()
cleanup() {
  trap - INT TERM EXIT
  echo
  echo "stopping..."
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup INT TERM EXIT

echo "building gateway and nats-server..."
go build -o "$work/gateway" ./cmd/gateway
go build -o "$work/nats-server" github.com/nats-io/nats-server/v2

"$work/nats-server" -a 127.0.0.1 -p 14222 >"$work/nats.log" 2>&1 &
pids+=($!)

for i in 1 2 3; do
  "$work/gateway" -addr 127.0.0.1:1808$i -admin-addr 127.0.0.1:1909$i \
    -nats nats://127.0.0.1:14222 -node n$i -proxy-protocol required \
    >"$work/gw$i.log" 2>&1 &
  pids+=($!)
done

# The shipped haproxy.cfg, pointed at the three local nodes.
sed -e "s/bind :80\$/bind 127.0.0.1:$PORT/" \
    -e 's/10\.0\.0\.11:8080/127.0.0.1:18081/g' \
    -e 's/10\.0\.0\.12:8080/127.0.0.1:18082/g' \
    -e '/server gw2 127.0.0.1:18082 cookie gw2/a\    server gw3 127.0.0.1:18083 cookie gw3' \
    -e '/server gw2 127.0.0.1:18082$/a\    server gw3 127.0.0.1:18083' \
    -e '/^    chroot /d' -e '/^    user /d' -e '/^    group /d' \
    -e 's/maxconn 200000$/maxconn 4000/' scripts/haproxy.cfg >"$work/haproxy.cfg"
"$HAPROXY" -W -db -f "$work/haproxy.cfg" >"$work/haproxy.log" 2>&1 &
pids+=($!)

for i in $(seq 1 100); do
  curl -fsS "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break
  sleep 0.1
done
cat <<TXT

chatgate cluster is up:
  chat page        http://127.0.0.1:$PORT/
  native protocol  ws://127.0.0.1:$PORT/ws
  Socket.IO        http://127.0.0.1:$PORT  (path /socket.io/)
  nodes            127.0.0.1:18081-18083 (metrics at 127.0.0.1:19091-19093/metrics)
  NATS             nats://127.0.0.1:14222
  logs             $work/*.log
Press Ctrl-C to stop.
TXT
wait "${pids[@]}"

#!/usr/bin/env bash
# scripts/cluster.sh — a local chatgate cluster: one NATS server, three
# gateway nodes and haproxy in front, all on loopback. Prints where to
# connect; Ctrl-C stops everything it started (by PID).
#
#   scripts/cluster.sh [--port 8080]
#
# Needs haproxy (Debian: apt-get install haproxy). The NATS server is the
# official nats-server, built from the version go.mod records as a tool.
# Ports: haproxy PORT, gateways 18081-18083 (admin 19091-19093), NATS 14222.
# If a process fails to start or exits, the script prints the end of its
# log, stops the others and exits with status 1.
set -Eeuo pipefail
trap 'echo "cluster.sh: line $LINENO: \"$BASH_COMMAND\" failed with status $?" >&2' ERR
cd "$(dirname "$0")/.."

PORT=8080
while [ $# -gt 0 ]; do
  case "$1" in
    --port) PORT=$2; shift 2 ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done
HAPROXY=$(command -v haproxy || echo /usr/sbin/haproxy)
[ -x "$HAPROXY" ] || { echo "haproxy not found: apt-get install haproxy" >&2; exit 1; }

work=$(mktemp -d)
pids=()
names=()
cleanup() {
  trap - INT TERM EXIT ERR
  echo
  echo "stopping..."
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
# start NAME COMMAND... runs COMMAND in the background, output to
# $work/NAME.log.
start() {
  local name=$1
  shift
  "$@" >"$work/$name.log" 2>&1 &
  pids+=($!)
  names+=("$name")
}
# show_logs prints the end of every log (they are deleted on exit).
show_logs() {
  local f
  for f in "$work"/*.log; do
    [ -e "$f" ] || continue
    echo "--- $(basename "$f")" >&2
    tail -n 20 "$f" >&2
  done
}

echo "building gateway and nats-server..."
go build -o "$work/gateway" ./cmd/gateway
go build -o "$work/nats-server" github.com/nats-io/nats-server/v2

start nats "$work/nats-server" -a 127.0.0.1 -p 14222 -js -sd "$work/jetstream" # JetStream: the shared room history (docs/cluster.md)

for i in 1 2 3; do
  start "gw$i" "$work/gateway" -addr "127.0.0.1:1808$i" -admin-addr "127.0.0.1:1909$i" -api-addr "127.0.0.1:1919$i" \
    -nats nats://127.0.0.1:14222 -node "n$i" -proxy-protocol required
done

# The shipped haproxy.cfg, pointed at the three local nodes.
sed -e "s/bind :80\$/bind 127.0.0.1:$PORT/" \
    -e 's/10\.0\.0\.11:8080/127.0.0.1:18081/g' \
    -e 's/10\.0\.0\.12:8080/127.0.0.1:18082/g' \
    -e '/server gw2 127.0.0.1:18082 cookie gw2/a\    server gw3 127.0.0.1:18083 cookie gw3' \
    -e '/server gw2 127.0.0.1:18082$/a\    server gw3 127.0.0.1:18083' \
    -e '/^    chroot /d' -e '/^    user /d' -e '/^    group /d' \
    -e 's/maxconn 200000$/maxconn 4000/' scripts/haproxy.cfg >"$work/haproxy.cfg"
start haproxy "$HAPROXY" -W -db -f "$work/haproxy.cfg"

# healthy: haproxy answers /healthz from a gateway (with curl), or at least
# accepts connections (without).
healthy() {
  if command -v curl >/dev/null; then
    curl -fsS -o /dev/null "http://127.0.0.1:$PORT/healthz" 2>/dev/null
  else
    (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null
  fi
}
up=0
for _ in $(seq 1 100); do
  if healthy; then
    up=1
    break
  fi
  sleep 0.1
done
for i in "${!pids[@]}"; do
  if ! kill -0 "${pids[$i]}" 2>/dev/null; then
    echo "cluster.sh: ${names[$i]} exited during startup" >&2
    up=0
  fi
done
if [ "$up" = 0 ]; then
  echo "cluster.sh: the cluster did not come up on 127.0.0.1:$PORT within 10 s" >&2
  show_logs
  exit 1
fi
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
# Until Ctrl-C: any process that exits on its own is a failure.
status=0
wait -n "${pids[@]}" || status=$?
for i in "${!pids[@]}"; do
  if ! kill -0 "${pids[$i]}" 2>/dev/null; then
    echo "cluster.sh: ${names[$i]} exited (status $status)" >&2
  fi
done
show_logs
exit 1

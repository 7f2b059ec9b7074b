#!/usr/bin/env bash
# A rolling restart of a local 3-node cluster under load, with nothing lost.
#
#   scripts/rolling-restart.sh                     600 clients through haproxy
#   scripts/rolling-restart.sh --clients N --spread 3s --delay 5s
#   scripts/rolling-restart.sh --direct            no haproxy: clients dial the nodes
#   scripts/rolling-restart.sh --no-hint           clients ignore the reconnect hint
#
# Starts nats-server with JetStream (the shared room history, so a client
# resumes on any node), three gateway nodes in cluster mode and haproxy in
# front with the shipped scripts/haproxy.cfg (health check GET /healthz
# every 2 s, fall 2, rise 2). The load tool's resume scenario with -drop
# roll (bench/README.md) connects N clients in rooms of 50, each room with
# a publisher numbering its messages, and every client checks what it gets
# by sequence number and offset: missing, doubled or out of order.
#
# Then each node in turn: SIGTERM; the node turns /readyz and /healthz to
# 503 and keeps serving for --delay (-drain-delay, above haproxy's
# inter x fall = 4 s) so haproxy takes it out of rotation; then it closes
# every client with 1012 "server restarting; reconnect=<ms>" (--spread,
# -drain-spread); each client waits a random time within the hint and
# resumes its session on another node with its last offset; the node exits;
# the script starts it again on the same ports, waits for /readyz 200 and
# for haproxy's rise (--settle) before the next node.
#
# Reports the load tool's summary: connection ends, resumes, recovered,
# the peak of resumes per 100 ms, messages lost (missing) and duplicates.
# Exits 1 when a message was lost or doubled, a session was not recovered,
# or anything failed to start or stop in time. Every wait is bounded (the
# whole run takes about a minute; the load tool's -deadline is 4 minutes).
# Everything started is stopped by PID on exit. Output in
# bench/out/rolling/ (summary.txt, results.jsonl, every process's log).
set -Eeuo pipefail
trap 'echo "rolling-restart.sh: line $LINENO: \"$BASH_COMMAND\" failed with status $?" >&2' ERR
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

CLIENTS=600
SPREAD=3s
DELAY=5s
SETTLE=5s
RATE=5
DIRECT=0
NOHINT=0
while [ $# -gt 0 ]; do
	case "$1" in
	--clients) CLIENTS=$2; shift 2 ;;
	--spread) SPREAD=$2; shift 2 ;;
	--delay) DELAY=$2; shift 2 ;;
	--settle) SETTLE=$2; shift 2 ;;
	--rate) RATE=$2; shift 2 ;;
	--direct) DIRECT=1; shift ;;
	--no-hint) NOHINT=1; shift ;;
	-h | --help) sed -n '2,31p' "$0"; exit 0 ;;
	*) echo "rolling-restart.sh: unknown argument $1" >&2; exit 2 ;;
	esac
done
log() { echo "rolling-restart.sh: $*" >&2; }
HAPROXY=""
if [ "$DIRECT" = 0 ]; then
	HAPROXY=$(command -v haproxy || echo /usr/sbin/haproxy)
	[ -x "$HAPROXY" ] || { log "haproxy not found (apt-get install haproxy), or use --direct"; exit 1; }
fi
# seconds SPEC prints a Go duration of whole or fractional seconds (5s,
# 1500ms) as seconds for sleep.
seconds() {
	case "$1" in
	*ms) awk -v v="${1%ms}" 'BEGIN { printf "%.3f", v / 1000 }' ;;
	*s) echo "${1%s}" ;;
	*) log "durations are given in s or ms: $1"; exit 2 ;;
	esac
}

OUT=$ROOT/bench/out/rolling
mkdir -p "$OUT"
rm -f "$OUT"/*.log
WORK=$(mktemp -d)
BIN=$WORK/bin
PORT_BASE=37080
# shellcheck source=scripts/lib/procs.sh
. "$ROOT/scripts/lib/procs.sh"

log "building the gateway, the load tool and nats-server"
mkdir -p "$BIN"
go build -o "$BIN/gateway" ./cmd/gateway
(cd bench && go build -o "$BIN/load" ./cmd/load)
go build -o "$BIN/nats-server" github.com/nats-io/nats-server/v2

nport="" hport=""
free_port nport
start nats "$BIN/nats-server" -a 127.0.0.1 -p "$nport" -js -sd "$WORK/jetstream"
wait_listening "$nport" "$STARTED" || { log "nats-server did not start (see $OUT/nats.log)"; exit 1; }

# A fresh cluster key per run, in the environment of the nodes only.
KEY=$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')
PROXY_FLAGS=()
[ "$DIRECT" = 1 ] || PROXY_FLAGS=(-proxy-protocol required)
GATEWAY_FLAGS=(-presence=false -rate-messages=-1 -rate-bytes=-1 -max-connections-per-ip=-1 -api-addr=
	-nats "nats://127.0.0.1:$nport" -drain-delay "$DELAY" -drain-spread "$SPREAD" -drain-timeout 10s
	"${PROXY_FLAGS[@]}")
declare -a PORT ADMIN GW
for i in 1 2 3; do
	free_port "PORT[$i]"
	free_port "ADMIN[$i]"
done
# start_node I starts node I on its ports and waits (bounded) until its
# /readyz answers 200.
start_node() {
	local i=$1
	CHATGATE_CLUSTER_KEY=$KEY start "gw$i" "$BIN/gateway" -addr "127.0.0.1:${PORT[$i]}" \
		-admin-addr "127.0.0.1:${ADMIN[$i]}" -node "n$i" "${GATEWAY_FLAGS[@]}"
	GW[i]=$STARTED
	for _ in $(seq 200); do
		if [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:${ADMIN[$i]}/readyz")" = 200 ]; then
			return 0
		fi
		kill -0 "${GW[$i]}" 2>/dev/null || break
		sleep 0.1
	done
	log "node $i did not become ready (see $OUT/gw$i.log)"
	return 1
}
for i in 1 2 3; do start_node "$i"; done

ADDR="127.0.0.1:${PORT[1]},127.0.0.1:${PORT[2]},127.0.0.1:${PORT[3]}"
if [ "$DIRECT" = 0 ]; then
	free_port hport
	# The shipped haproxy.cfg, pointed at the three local nodes (as
	# scripts/cluster.sh does).
	sed -e "s/bind :80\$/bind 127.0.0.1:$hport/" \
		-e "s/10\.0\.0\.11:8080/127.0.0.1:${PORT[1]}/g" \
		-e "s/10\.0\.0\.12:8080/127.0.0.1:${PORT[2]}/g" \
		-e "/server gw2 127.0.0.1:${PORT[2]} cookie gw2/a\\    server gw3 127.0.0.1:${PORT[3]} cookie gw3" \
		-e "/server gw2 127.0.0.1:${PORT[2]}\$/a\\    server gw3 127.0.0.1:${PORT[3]}" \
		-e '/^    chroot /d' -e '/^    user /d' -e '/^    group /d' \
		-e 's/maxconn 200000$/maxconn 4000/' scripts/haproxy.cfg >"$WORK/haproxy.cfg"
	cp "$WORK/haproxy.cfg" "$OUT/haproxy.cfg"
	start haproxy "$HAPROXY" -W -db -f "$WORK/haproxy.cfg"
	wait_listening "$hport" "$STARTED" || { log "haproxy did not start (see $OUT/haproxy.log)"; exit 1; }
	ADDR="127.0.0.1:$hport"
fi

READY=$WORK/ready
DONE=$WORK/done
HINT_FLAGS=()
[ "$NOHINT" = 0 ] || HINT_FLAGS=(-no-hint)
load_cmd=("$BIN/load" -scenario resume -drop roll -label rolling -addr "$ADDR" -resume-addr "$ADDR"
	-n "$CLIENTS" -room-size 50 -rate "$RATE" -drop-after 2s -drop-signal "$READY" -roll-done "$DONE"
	-drop-timeout 150s -resume-timeout 30s -tail 2s -deadline 4m -out "$OUT/results.jsonl" "${HINT_FLAGS[@]}")
SUMMARY=$OUT/summary.txt
{
	echo "# $(date -u +%FT%TZ) rolling restart of 3 nodes, $CLIENTS clients, -drain-delay $DELAY -drain-spread $SPREAD$([ "$NOHINT" = 0 ] || echo ", clients ignore the hint")$([ "$DIRECT" = 0 ] && echo ", through haproxy" || echo ", direct")"
	echo "# ${load_cmd[*]#"$WORK/bin/"}"
} >"$SUMMARY"
log "load: ${load_cmd[*]#"$WORK/bin/"}"
"${load_cmd[@]}" >>"$SUMMARY" 2>"$OUT/load-progress.log" &
LOAD=$!
PIDS+=("$LOAD")
for _ in $(seq 600); do
	[ -e "$READY" ] && break
	kill -0 "$LOAD" 2>/dev/null || break
	sleep 0.1
done
[ -e "$READY" ] || { log "the load tool did not get ready (see $OUT/load-progress.log)"; exit 1; }

# forget PID drops a process that has exited and been waited for from PIDS.
forget() {
	local keep=() p
	for p in "${PIDS[@]}"; do
		[ "$p" = "$1" ] || keep+=("$p")
	done
	PIDS=("${keep[@]}")
}
status() { curl -s -o /dev/null -w '%{http_code}' "$@" || true; }
# The public port wants a PROXY header behind haproxy.
PUBLIC_CURL=()
[ "$DIRECT" = 1 ] || PUBLIC_CURL=(--haproxy-protocol)
for i in 1 2 3; do
	t0=$(date +%s.%N)
	log "node $i: SIGTERM (pid ${GW[$i]})"
	kill -TERM "${GW[$i]}"
	# The order of a drain: unready first, clients closed after the delay.
	for _ in $(seq 50); do
		[ "$(status "http://127.0.0.1:${ADMIN[$i]}/readyz")" = 503 ] && break
		sleep 0.05
	done
	log "node $i: /readyz $(status "http://127.0.0.1:${ADMIN[$i]}/readyz"), public /healthz $(status "${PUBLIC_CURL[@]}" "http://127.0.0.1:${PORT[$i]}/healthz") after $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }')s"
	exited=0
	for _ in $(seq 400); do
		if ! kill -0 "${GW[$i]}" 2>/dev/null; then
			exited=1
			break
		fi
		sleep 0.1
	done
	[ "$exited" = 1 ] || { log "node $i did not exit within 40 s"; exit 1; }
	wait "${GW[$i]}" 2>/dev/null || { log "node $i exited with an error (see $OUT/gw$i.log)"; exit 1; }
	forget "${GW[$i]}"
	log "node $i: exited after $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }')s; starting it again"
	start_node "$i"
	log "node $i: ready again after $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }')s"
	# haproxy puts a node back after rise x inter (2 x 2 s).
	sleep "$(seconds "$SETTLE")"
done
touch "$DONE"

status=0
wait "$LOAD" || status=$?
forget "$LOAD"
cat "$SUMMARY"
check=$(grep '^check:' "$SUMMARY" || true)
missing=$(sed -n 's/.*missing \([0-9]*\).*/\1/p' <<<"$check")
dups=$(sed -n 's/.*duplicates \([0-9]*\).*/\1/p' <<<"$check")
echo "messages lost: ${missing:-?}, duplicates: ${dups:-?}"
# The load tool's verdict (result: ok) also needs every session recovered,
# nothing out of order and every member verified.
if [ -z "$missing" ] || [ "$missing" != 0 ] || [ "$dups" != 0 ] || [ "$status" != 0 ] || ! grep -q '^result: ok' "$SUMMARY"; then
	log "FAIL (load tool status $status; see $SUMMARY and $OUT/load-progress.log)"
	exit 1
fi
log "ok"

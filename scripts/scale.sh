#!/usr/bin/env bash
# 100,000 live clients on this box across gateway nodes, with the load
# tool's scale scenario (bench/README.md), and one node killed.
#
#   scripts/scale.sh                 100,000 clients, 7 nodes, 100 rooms of 1,000
#   scripts/scale.sh --quick         10,000 clients, 3 nodes, 10 rooms of 1,000
#   scripts/scale.sh --clients N --nodes K --rate R --duration D
#
# Starts a nats-server (monitoring on, for /varz) and K gateway nodes in
# cluster mode, each on its own loopback port (directly, no proxy), then
# runs the load tool's worker processes (at most 15,000 clients each, each
# on its own source address 127.0.0.2, .3, ...). Client i dials node
# i mod K, so each room's 1,000 members are spread over every node. One
# member per room publishes; R room messages/s in all (default 30: about
# 30,000 deliveries/s) for D (60s). The load tool reports deliveries/s,
# p50/p99/p999, loss and duplicates (both must be 0), each node's RSS and
# NATS messages per room message. Then, 3 s into a 20 s publishing step,
# it kills node 1 with SIGKILL; its clients reconnect to the next node and
# join their rooms again; it reports the time until all are back and the
# deliveries they missed meanwhile (the clients do not resume: see
# scripts/bench-recovery.sh for recovery), and a last 10 s step must
# deliver everything.
#
# K must leave every survivor under the open-files limit (20,000 here)
# after the kill: N/(K-1) + 1,000 <= limit; each node runs with
# -max-connections 500 below the limit. Exits non-zero if a goal is missed or
# anything fails to start. Every wait is bounded; the load tool's own
# -deadline is 8 minutes. Everything started is stopped by PID on exit.
# Results go to bench/out/scale/ (results.jsonl, summary.txt, the logs).
set -Eeuo pipefail
trap 'echo "scale.sh: line $LINENO: \"$BASH_COMMAND\" failed with status $?" >&2' ERR

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

CLIENTS=100000
NODES=7
RATE=30
DURATION=60s
while [ $# -gt 0 ]; do
	case "$1" in
	--quick) CLIENTS=10000; NODES=3; DURATION=10s; RATE=10 ;;
	--clients) CLIENTS=$2; shift ;;
	--nodes) NODES=$2; shift ;;
	--rate) RATE=$2; shift ;;
	--duration) DURATION=$2; shift ;;
	-h | --help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
	*) echo "scale.sh: unknown argument $1" >&2; exit 2 ;;
	esac
	shift
done
ROOM_SIZE=1000
if [ "$NODES" -lt 2 ]; then
	echo "scale.sh: --nodes must be at least 2 (one is killed)" >&2
	exit 2
fi
if [ $((CLIENTS / (NODES - 1) + 1000)) -gt "$(ulimit -n)" ]; then
	echo "scale.sh: $CLIENTS clients on $((NODES - 1)) surviving nodes exceed the open-files limit of $(ulimit -n) per node: use more --nodes" >&2
	exit 2
fi

OUT="$ROOT/bench/out/scale"
BIN="$OUT/bin"
RESULTS="$OUT/results.jsonl"
SUMMARY="$OUT/summary.txt"
mkdir -p "$BIN"
: >"$RESULTS"
rm -f "$OUT"/*.log
WORK=$(mktemp -d)
START_SECONDS=$SECONDS

log() { printf '[scale %4ds] %s\n' "$((SECONDS - START_SECONDS))" "$*" >&2; }

# Process helpers (PIDS, stop_pid, cleanup and the traps, start,
# free_port, wait_listening). Ports come from 39080..39979, a range neither
# bench.sh nor bench-recovery.sh uses.
PORT_BASE=39080
# shellcheck source=scripts/lib/procs.sh
. "$ROOT/scripts/lib/procs.sh"

# --- build -------------------------------------------------------------
log "building the gateway, the load tool and nats-server"
go build -o "$BIN/gateway" ./cmd/gateway
# bench/ is its own module: build the load tool from inside it.
(cd bench && go build -o "$BIN/load" ./cmd/load)
# The official nats-server: the installed one, else the version go.mod
# records as a tool.
if command -v nats-server >/dev/null; then
	NATS_BIN=$(command -v nats-server)
else
	go build -o "$BIN/nats-server" github.com/nats-io/nats-server/v2
	NATS_BIN="$BIN/nats-server"
fi

# --- start -------------------------------------------------------------
nport="" nmon=""
free_port nport
free_port nmon
start nats "$NATS_BIN" -a 127.0.0.1 -p "$nport" -m "$nmon"
nats=$STARTED
if ! wait_listening "$nport" "$nats" || ! wait_listening "$nmon" "$nats"; then
	log "nats-server did not start (see $OUT/nats.log)"
	exit 1
fi

# Presence off and no abuse limits, as in scripts/bench.sh; every client
# comes from loopback. -max-connections stays under the open-files limit
# (less room for NATS, listeners and logs): a node that runs out of
# descriptors fails accept(2), which stops gnet's engine and the node with
# it, whereas a node at -max-connections closes the newcomer, which then
# reconnects to another node. A fresh cluster key per run, in the
# environment.
NOFILE=$(ulimit -n)
MAXCONN=$((NOFILE - 500))
GATEWAY_FLAGS=(-presence=false -rate-messages=-1 -rate-bytes=-1 -max-connections-per-ip=-1 -max-connections="$MAXCONN" -api-addr=)
CHATGATE_CLUSTER_KEY=$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')
export CHATGATE_CLUSTER_KEY
addrs=() admins=() gws=()
for i in $(seq 1 "$NODES"); do
	gp="" ga=""
	free_port gp
	free_port ga
	start "gateway-n$i" "$BIN/gateway" -addr "127.0.0.1:$gp" -admin-addr "127.0.0.1:$ga" -nats "nats://127.0.0.1:$nport" -node "n$i" "${GATEWAY_FLAGS[@]}"
	gws+=("$STARTED")
	addrs+=("127.0.0.1:$gp")
	admins+=("127.0.0.1:$ga")
done
unset CHATGATE_CLUSTER_KEY
for i in "${!gws[@]}"; do
	if ! wait_listening "${addrs[$i]##*:}" "${gws[$i]}" || ! wait_listening "${admins[$i]##*:}" "${gws[$i]}"; then
		log "gateway node $((i + 1)) did not start (see $OUT/gateway-n$((i + 1)).log)"
		exit 1
	fi
done
# Every node sees the others before the clients arrive.
for i in "${!admins[@]}"; do
	seen=""
	for _ in $(seq 100); do
		seen=$(metric "${admins[$i]}" chatgate_cluster_nodes)
		[ "$seen" = "$((NODES - 1))" ] && break
		sleep 0.1
	done
	[ "$seen" = "$((NODES - 1))" ] || log "node $((i + 1)) sees ${seen:-no} other nodes, not $((NODES - 1)); going on"
done

# --- run ---------------------------------------------------------------
addr_list=$(IFS=,; echo "${addrs[*]}")
pid_list=$(IFS=,; echo "${gws[*]}")
cmd=("$BIN/load" -scenario scale -label chatgate -addr "$addr_list" -n "$CLIENTS" -room-size "$ROOM_SIZE"
	-rate "$RATE" -duration "$DURATION" -node-pids "$pid_list" -nats-monitor "127.0.0.1:$nmon"
	-kill-node 1 -kill-after 3s -failover 20s -after 10s -reconnect-timeout 60s
	-per-worker 15000 -stats none -deadline 8m -out "$RESULTS")
log "$CLIENTS clients in rooms of $ROOM_SIZE on $NODES nodes, $RATE room msgs/s for $DURATION, then node 1 (pid ${gws[0]}) killed"
{
	echo "# $(date -u +%FT%TZ) $(nproc) CPUs, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), $(go version | awk '{ print $3 }')"
	echo "# $CLIENTS clients, $NODES gateway nodes, nats-server $("$NATS_BIN" --version 2>/dev/null | awk '{ print $NF }')"
	echo "# ${cmd[*]#"$ROOT/"}"
} >"$SUMMARY"
status=0
"${cmd[@]}" >>"$SUMMARY" 2>"$OUT/load-progress.log" || status=$?
cat "$SUMMARY"
# The killed node is gone; every other process must still run.
for i in "${!gws[@]}"; do
	[ "$i" = 0 ] && continue
	if ! kill -0 "${gws[$i]}" 2>/dev/null; then
		log "gateway node $((i + 1)) exited during the run (see $OUT/gateway-n$((i + 1)).log)"
		status=1
	fi
done
kill -0 "$nats" 2>/dev/null || { log "nats-server exited during the run"; status=1; }
log "done in $((SECONDS - START_SECONDS)) s, status $status; results in ${OUT#"$ROOT/"}"
exit "$status"

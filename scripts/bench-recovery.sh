#!/usr/bin/env bash
# Measures connection state recovery under reconnect storms with the load
# tool's resume scenario (bench/README.md), and prints the results.
#
#   scripts/bench-recovery.sh              1,000 and 10,000 clients on one
#                                          node, then 1,000 across nodes
#   scripts/bench-recovery.sh --quick      100 and 1,000, then 100 across nodes
#   scripts/bench-recovery.sh --no-cluster the single-node runs only
#
# 1. Single node: for each size a fresh gateway; the clients join rooms of
#    50 (one publisher per room, 2 msgs/s), then all reset their TCP
#    connections at once (-drop clients); once the gateway's /metrics
#    count every session as kept, all resume at once.
# 2. Cluster, when nats-server builds: nats-server with JetStream on a
#    temporary store, two gateway nodes sharing a cluster key, 1,000
#    clients on node 1. When the load tool is ready, node 1 is killed with
#    SIGKILL and the clients resume on node 2 (-drop external). Without a
#    shared JetStream history, node 2 answers recovered:false; the run
#    still ends and prints what it got.
#
# Everything listens on loopback. The script ends only the processes it
# started, by PID. Results go to bench/out/recovery/ (results.jsonl, the
# summaries, the servers' logs and the load tool's progress).
set -Eeuo pipefail
trap 'echo "bench-recovery.sh: line $LINENO: \"$BASH_COMMAND\" failed with status $?" >&2' ERR

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

SIZES=(1000 10000)
CLUSTER_N=1000
CLUSTER=1
while [ $# -gt 0 ]; do
	case "$1" in
	--quick) SIZES=(100 1000); CLUSTER_N=100 ;;
	--no-cluster) CLUSTER=0 ;;
	-h | --help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
	*) echo "bench-recovery.sh: unknown argument $1" >&2; exit 2 ;;
	esac
	shift
done

WORK=$(mktemp -d)
START_SECONDS=$SECONDS
SUMMARIES=()

log() { printf '[recovery %4ds] %s\n' "$((SECONDS - START_SECONDS))" "$*" >&2; }

# Process helpers (PIDS, stop_pid, cleanup and the traps, start,
# free_port, wait_listening). Ports come from 38080..38979, not bench.sh's
# range.
PORT_BASE=38080
# shellcheck source=scripts/lib/procs.sh
. "$ROOT/scripts/lib/procs.sh"
# kill_and_resume: the two-node run below.
# shellcheck source=scripts/lib/killnode.sh
. "$ROOT/scripts/lib/killnode.sh"
out_dirs recovery
READY_TIMEOUT=120
port="" admin=""

# --- build -------------------------------------------------------------
log "building the gateway, the load tool and nats-server"
go build -o "$BIN/gateway" ./cmd/gateway
# bench/ is its own module: build the load tool from inside it.
(cd bench && go build -o "$BIN/load" ./cmd/load)
NATS=0
if [ "$CLUSTER" = 1 ]; then
	# The version go.mod records as a tool (go tool nats-server).
	if go build -o "$BIN/nats-server" github.com/nats-io/nats-server/v2 2>"$OUT/nats-build.log"; then
		NATS=1
	else
		log "nats-server does not build (see $OUT/nats-build.log): skipping the cluster run"
	fi
fi

# Presence off and no abuse limits, as in scripts/bench.sh; recovery and
# history at their defaults (100 messages per room, a 2-minute window).
GATEWAY_FLAGS=(-presence=false -rate-messages=-1 -rate-bytes=-1 -max-connections-per-ip=-1 -api-addr=)
LOAD_FLAGS=(-scenario resume -label chatgate -room-size 50 -rate 2 -drop-after 3s -outage 1s -tail 3s
	-per-worker 5000 -deadline 5m -out "$RESULTS")

# --- 1. single node ------------------------------------------------------
for n in "${SIZES[@]}"; do
	free_port port
	free_port admin
	start "gateway-single" "$BIN/gateway" -addr "127.0.0.1:$port" -admin-addr "127.0.0.1:$admin" "${GATEWAY_FLAGS[@]}"
	gw=$STARTED
	if ! wait_listening "$port" "$gw" || ! wait_listening "$admin" "$gw"; then
		log "the gateway did not start (see $OUT/gateway-single.log)"
		exit 1
	fi
	summary="$OUT/single-$n.txt"
	cmd=("$BIN/load" "${LOAD_FLAGS[@]}" -addr "127.0.0.1:$port" -admin "127.0.0.1:$admin" -n "$n" -server-pid "$gw")
	log "single node, $n clients: ${cmd[*]#"$ROOT/"}"
	{
		echo "# $(date -u +%FT%TZ), single node, -drop clients"
		echo "# ${cmd[*]#"$ROOT/"}"
	} >"$summary"
	status=0
	"${cmd[@]}" >>"$summary" 2>>"$PROGRESS" || status=$?
	[ "$status" = 0 ] || log "the load tool exited with status $status (see $PROGRESS)"
	SUMMARIES+=("$summary")
	stop_pid "$gw"
done

# --- 2. two nodes, one killed --------------------------------------------
if [ "$NATS" = 1 ]; then
	kill_and_resume "cluster-$CLUSTER_N" "$CLUSTER_N" :
fi

# --- report ------------------------------------------------------------
log "done in $((SECONDS - START_SECONDS)) s; results in ${RESULTS#"$ROOT/"}"
for s in "${SUMMARIES[@]}"; do
	echo
	cat "$s"
done

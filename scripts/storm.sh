#!/usr/bin/env bash
# Measures a reconnect storm with and without storm control
# (docs/deploy.md, "Reconnect storms"), in one run, and prints the results.
#
#   scripts/storm.sh                 19,000 clients (a gateway's open-files
#                                    limit of 20,000 less its reserve and
#                                    the publishers), rate 2,000/s
#   scripts/storm.sh --quick         1,000 clients, rate 200/s
#   scripts/storm.sh -n N --rate R   N clients, -handshake-rate R (a
#                                    comma-separated list: one case each)
#
# Each case starts nats-server with JetStream on a temporary store and two
# gateway nodes sharing a cluster key (the room history is the shared
# JetStream stream, so node 2 can resume node 1's sessions). The load
# tool's resume scenario (bench/README.md) puts every client on node 1 in
# rooms of 50, with a publisher per room at 2 msgs/s; once they are all in,
# node 1 is killed with SIGKILL, and every client resumes on node 2 at
# once (?resume=<token>&offset=<offset>). Case "off": node 2 without
# -handshake-rate. Case "rate-R", for each R: node 2 with -handshake-rate R
# (-handshake-burst R); the load tool waits out each 503's Retry-After
# (plus up to a second at random) and tries again.
#
# Reported per case (bench/out/storm/<case>.txt): time from the first
# resume to the last member recovered, per member the handshake that
# succeeded (p50/p99/max) and the time to recovered, refusals waited out,
# resumes that failed for good (not retried), node 2's CPU over the
# resume, and the recovery check (missing, duplicates, out of order).
#
# Everything listens on loopback; the load workers bind 127.0.0.2, .3, …
# The script ends only the processes it started, by PID.
set -Eeuo pipefail
trap 'echo "storm.sh: line $LINENO: \"$BASH_COMMAND\" failed with status $?" >&2' ERR

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

N=19000
RATE=2000
while [ $# -gt 0 ]; do
	case "$1" in
	--quick) N=1000; RATE=200 ;;
	-n) N=$2; shift ;;
	--rate) RATE=$2; shift ;;
	-h | --help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
	*) echo "storm.sh: unknown argument $1" >&2; exit 2 ;;
	esac
	shift
done

OUT="$ROOT/bench/out/storm"
BIN="$OUT/bin"
RESULTS="$OUT/results.jsonl"
PROGRESS="$OUT/load-progress.log"
mkdir -p "$BIN"
: >"$RESULTS"
: >"$PROGRESS"
WORK=$(mktemp -d)
START_SECONDS=$SECONDS
SUMMARIES=()

log() { printf '[storm %4ds] %s\n' "$((SECONDS - START_SECONDS))" "$*" >&2; }

PORT_BASE=36080
# shellcheck source=scripts/lib/procs.sh
. "$ROOT/scripts/lib/procs.sh"
nport="" p1="" a1="" p2="" a2=""

# metric ADDR NAME prints the value of metric NAME at http://ADDR/metrics.
metric() {
	curl -fsS --max-time 2 "http://$1/metrics" 2>/dev/null | awk -v n="$2" '$1 == n { print $2 }' || true
}

log "building the gateway, the load tool and nats-server"
go build -o "$BIN/gateway" ./cmd/gateway
(cd bench && go build -o "$BIN/load" ./cmd/load)
go build -o "$BIN/nats-server" github.com/nats-io/nats-server/v2

GATEWAY_FLAGS=(-presence=false -rate-messages=-1 -rate-bytes=-1 -max-connections-per-ip=-1 -api-addr=)
LOAD_FLAGS=(-scenario resume -label chatgate -room-size 50 -rate 2 -drop-after 3s -outage 1s -tail 3s
	-per-worker 5000 -deadline 6m -out "$RESULTS")

# run_case NAME NODE2_FLAGS... runs one storm.
run_case() {
	local name=$1
	shift
	free_port nport
	rm -rf "$WORK/jetstream"
	start "nats-$name" "$BIN/nats-server" -a 127.0.0.1 -p "$nport" -js -sd "$WORK/jetstream"
	local nats=$STARTED
	wait_listening "$nport" "$nats" || { log "nats-server did not start (see $OUT/nats-$name.log)"; exit 1; }
	CHATGATE_CLUSTER_KEY=$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')
	export CHATGATE_CLUSTER_KEY
	free_port p1
	free_port a1
	free_port p2
	free_port a2
	start "gateway-$name-n1" "$BIN/gateway" -addr "127.0.0.1:$p1" -admin-addr "127.0.0.1:$a1" -nats "nats://127.0.0.1:$nport" -node n1 "${GATEWAY_FLAGS[@]}"
	local gw1=$STARTED
	start "gateway-$name-n2" "$BIN/gateway" -addr "127.0.0.1:$p2" -admin-addr "127.0.0.1:$a2" -nats "nats://127.0.0.1:$nport" -node n2 "${GATEWAY_FLAGS[@]}" "$@"
	local gw2=$STARTED
	unset CHATGATE_CLUSTER_KEY
	for pp in "$p1 $gw1" "$a1 $gw1" "$p2 $gw2" "$a2 $gw2"; do
		# shellcheck disable=SC2086
		wait_listening $pp || { log "a gateway node did not start (see $OUT/gateway-$name-n*.log)"; exit 1; }
	done
	# Node 2 must know node 1 before the clients arrive, or it cannot keep
	# their sessions when node 1 dies.
	for _ in $(seq 100); do
		[ "$(metric "127.0.0.1:$a2" chatgate_cluster_nodes)" = 1 ] && break
		sleep 0.1
	done
	local signal="$WORK/cut-$name"
	local summary="$OUT/$name.txt"
	local cmd=("$BIN/load" "${LOAD_FLAGS[@]}" -addr "127.0.0.1:$p1" -drop external -drop-signal "$signal"
		-resume-addr "127.0.0.1:$p2" -admin "127.0.0.1:$a2" -n "$N" -server-pid "$gw2")
	log "case $name: node 2 flags: ${*:-(none)}; ${cmd[*]#"$ROOT/"}"
	{
		echo "# $(date -u +%FT%TZ), case $name: $N clients on node 1, killed with SIGKILL, resumed on node 2; node 2 flags: ${*:-(none)}"
		echo "# ${cmd[*]#"$ROOT/"}"
	} >"$summary"
	"${cmd[@]}" >>"$summary" 2>>"$PROGRESS" &
	local loadpid=$!
	PIDS+=("$loadpid")
	local cut=0
	for _ in $(seq 3000); do
		if [ -e "$signal" ]; then
			log "case $name: killing node 1 (pid $gw1)"
			kill -9 "$gw1"
			wait "$gw1" 2>/dev/null || true
			cut=1
			break
		fi
		kill -0 "$loadpid" 2>/dev/null || break
		sleep 0.1
	done
	[ "$cut" = 1 ] || log "case $name: the load tool never got ready to be cut (see $PROGRESS)"
	local status=0
	wait "$loadpid" || status=$?
	[ "$status" = 0 ] || log "case $name: the load tool exited with status $status (see $PROGRESS)"
	stop_pid "$loadpid"
	{
		echo "node 2 metrics: handshakes refused by the rate $(metric "127.0.0.1:$a2" 'chatgate_handshakes_failed_total{reason="rate_limited"}'), recovery reads $(metric "127.0.0.1:$a2" 'chatgate_recovery_reads_total{merged="false"}') from the log and $(metric "127.0.0.1:$a2" 'chatgate_recovery_reads_total{merged="true"}') merged"
	} >>"$summary"
	SUMMARIES+=("$summary")
	stop_pid "$gw1"
	stop_pid "$gw2"
	stop_pid "$nats"
}

run_case off
IFS=, read -ra RATES <<<"$RATE"
for r in "${RATES[@]}"; do
	run_case "rate-$r" -handshake-rate "$r" -handshake-burst "$r"
done

log "done in $((SECONDS - START_SECONDS)) s; results in ${RESULTS#"$ROOT/"}"
for s in "${SUMMARIES[@]}"; do
	echo
	cat "$s"
done

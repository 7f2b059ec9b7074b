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

WORK=$(mktemp -d)
START_SECONDS=$SECONDS
SUMMARIES=()

log() { printf '[storm %4ds] %s\n' "$((SECONDS - START_SECONDS))" "$*" >&2; }

PORT_BASE=36080
# shellcheck source=scripts/lib/procs.sh
. "$ROOT/scripts/lib/procs.sh"
# kill_and_resume: each case.
# shellcheck source=scripts/lib/killnode.sh
. "$ROOT/scripts/lib/killnode.sh"
out_dirs storm
READY_TIMEOUT=300

log "building the gateway, the load tool and nats-server"
go build -o "$BIN/gateway" ./cmd/gateway
(cd bench && go build -o "$BIN/load" ./cmd/load)
go build -o "$BIN/nats-server" github.com/nats-io/nats-server/v2

GATEWAY_FLAGS=(-presence=false -rate-messages=-1 -rate-bytes=-1 -max-connections-per-ip=-1 -api-addr=)
LOAD_FLAGS=(-scenario resume -label chatgate -room-size 50 -rate 2 -drop-after 3s -outage 1s -tail 3s
	-per-worker 5000 -deadline 6m -out "$RESULTS")

# node2_metrics ADMIN2 SUMMARY adds node 2's refusals and recovery reads
# to the case's summary.
node2_metrics() {
	echo "node 2 metrics: handshakes refused by the rate $(metric "$1" 'chatgate_handshakes_failed_total{reason="rate_limited"}'), recovery reads $(metric "$1" 'chatgate_recovery_reads_total{merged="false"}') from the log and $(metric "$1" 'chatgate_recovery_reads_total{merged="true"}') merged" >>"$2"
}

# run_case NAME NODE2_FLAGS... runs one storm.
run_case() {
	local name=$1
	shift
	kill_and_resume "$name" "$N" node2_metrics "$@"
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

# shellcheck shell=bash
# procs.sh: process management shared by the benchmark scripts (scale.sh,
# bench-recovery.sh, bench.sh, idle-memory.sh, storm.sh,
# rolling-restart.sh). Sourced, never run:
#
#   . "$ROOT/scripts/lib/procs.sh"
#
# Before sourcing, the script must set (under set -Eeuo pipefail):
#   ROOT       the repository root (start strips it from the logged command)
#   OUT        the directory start writes NAME.log into
#   log        a function: log MESSAGE... writes one line to stderr with
#              the script's own prefix (free_port logs "no free port")
#   WORK       a temporary directory, removed on exit, or "" for none (set
#              it even then: a WORK inherited from the environment would
#              be removed)
# and may set:
#   PORT_BASE  the first port of the script's own 900-port range; free_port
#              (and NEXT_PORT) are defined only when it is set, so a script
#              with its own free_port keeps it
#
# It defines:
#   PIDS                  every process started with start (or added by the
#                         script) and not yet stopped
#   stop_pid PID          SIGTERM, SIGKILL after 5 s, wait; drops PID from PIDS
#   SERVER_PID, stop_server
#                         one server at a time: stop_server stops SERVER_PID
#                         (if set) like stop_pid and clears it
#   cleanup               stops SERVER_PID, then PIDS newest first, then
#                         removes WORK
#   STARTED, start NAME COMMAND...
#                         runs COMMAND in the background, its output appended
#                         to $OUT/NAME.log; its pid goes into STARTED and PIDS
#   NEXT_PORT, free_port VAR
#                         (with PORT_BASE) sets VAR to a loopback port in
#                         PORT_BASE..PORT_BASE+899 with no socket on it in any
#                         state (TIME_WAIT included), rotating so a server
#                         never gets the port its predecessor just closed. Not
#                         to be called in a subshell: it must advance NEXT_PORT.
#   wait_listening PORT PID
#                         waits up to 10 s for PORT to accept connections
#                         while PID runs; non-zero if it does not
#   metric ADDR NAME      prints the value of metric NAME (with its labels,
#                         as exposed) at http://ADDR/metrics, or nothing
# and installs the traps: EXIT runs cleanup; INT and TERM exit with 130
# (through the EXIT trap). A script that wants other traps sets them after
# sourcing.

# PIDS holds every process this script started and has not yet stopped.
PIDS=()
# stop_pid PID ends one of our processes: SIGTERM, then SIGKILL after 5 s.
stop_pid() {
	local pid=$1 keep=() p
	kill "$pid" 2>/dev/null || true
	for _ in $(seq 50); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -9 "$pid" 2>/dev/null || true
	# The process may have exited already, and wait returns its status.
	wait "$pid" 2>/dev/null || true
	for p in "${PIDS[@]}"; do
		[ "$p" = "$pid" ] || keep+=("$p")
	done
	PIDS=("${keep[@]}")
}

# SERVER_PID is the one server of scripts that run one at a time.
SERVER_PID=""
stop_server() {
	[ -n "$SERVER_PID" ] || return 0
	stop_pid "$SERVER_PID"
	SERVER_PID=""
}

# shellcheck disable=SC2317  # run by the EXIT trap
cleanup() {
	trap - EXIT INT TERM
	local i
	stop_server
	for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
		stop_pid "${PIDS[$i]}"
	done
	[ -z "${WORK:-}" ] || rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# start NAME COMMAND... runs COMMAND in the background, its output
# appended to $OUT/NAME.log; its pid is in STARTED.
STARTED=""
start() {
	local name=$1
	shift
	echo "== $(date -u +%FT%TZ) ${*#"$ROOT/"}" >>"$OUT/$name.log"
	"$@" >>"$OUT/$name.log" 2>&1 &
	STARTED=$!
	PIDS+=("$STARTED")
}

# free_port VAR sets VAR to a loopback port with no socket on it in any
# state (TIME_WAIT included: a listener without SO_REUSEADDR cannot bind
# next to one), from PORT_BASE..PORT_BASE+899, rotating so a server never
# gets the port its predecessor just closed. (Not called in a subshell: it
# must advance NEXT_PORT.)
if [ -n "${PORT_BASE:-}" ]; then
	NEXT_PORT=$PORT_BASE
	free_port() {
		local i p
		for i in $(seq 0 899); do
			p=$((PORT_BASE + (NEXT_PORT - PORT_BASE + i) % 900))
			if [ -n "$(ss -Htan "sport = :$p" 2>/dev/null)" ] || (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
				continue
			fi
			NEXT_PORT=$((p + 1))
			printf -v "$1" '%s' "$p"
			return 0
		done
		log "no free port"
		return 1
	}
fi

# wait_listening PORT PID waits up to 10 s for PORT to accept connections
# while PID runs.
wait_listening() {
	for _ in $(seq 100); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then
			return 0
		fi
		kill -0 "$2" 2>/dev/null || return 1
		sleep 0.1
	done
	return 1
}

# metric ADDR NAME prints the value of metric NAME (with its labels, as
# exposed) at http://ADDR/metrics, or nothing.
metric() {
	curl -fsS --max-time 2 "http://$1/metrics" 2>/dev/null | awk -v n="$2" '$1 == n { print $2 }' || true
}

#!/usr/bin/env bash
# Runs the standard chatgate comparison against the gorilla/websocket and
# Socket.IO baselines, and writes the results table and charts.
#
#   scripts/bench.sh            full run (about 12-15 minutes), writes
#                               docs/benchmarks-latest.md and docs/bench/*.svg
#   scripts/bench.sh --quick    smoke test with small N (under 2 minutes),
#                               writes into bench/out/quick/ instead of docs/
#   scripts/bench.sh --servers gorilla,socketio   only these servers
#   scripts/bench.sh --servers chatgate --append  re-run some servers and
#                               keep the other servers' earlier results
#   scripts/bench.sh --servers chatgate,chatgate-sio --before REV
#                               the gateway built at git revision REV too,
#                               as chatgate-before (and chatgate-sio-before),
#                               each scenario on both in turn: a before and
#                               after comparison in one run
#
# Servers: chatgate (cmd/gateway, native protocol), chatgate-sio (the same
# binary over Socket.IO, included when its endpoint answers), gorilla
# (bench/baseline/gorilla) and socketio (bench/baseline/socketio).
#
# Every server runs on a loopback port and is started afresh for each
# scenario (so memory figures start from a clean process) and stopped by
# its pid. Raw results (results.jsonl), server logs and the load tool's
# progress go to bench/out/ (or bench/out/quick/).
#
# Requirements: go, and node + npm for the Socket.IO baseline (installed
# here with npm ci). A server whose build or install fails is skipped; any
# other failure stops the script with the line that failed.
set -Eeuo pipefail
trap 'echo "bench.sh: line $LINENO: \"$BASH_COMMAND\" failed with status $?" >&2' ERR

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

QUICK=0
APPEND=0
BEFORE=""
SERVERS="chatgate,chatgate-sio,gorilla,socketio"
while [ $# -gt 0 ]; do
	case "$1" in
	--quick) QUICK=1 ;;
	--append) APPEND=1 ;;
	--servers) SERVERS="$2"; shift ;;
	--servers=*) SERVERS="${1#--servers=}" ;;
	--before) BEFORE="$2"; shift ;;
	--before=*) BEFORE="${1#--before=}" ;;
	-h | --help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
	*) echo "bench.sh: unknown argument $1" >&2; exit 2 ;;
	esac
	shift
done

if [ "$QUICK" = 1 ]; then
	OUT="$ROOT/bench/out/quick"
	DOC="$OUT/benchmarks-latest.md"
	CHARTS="$OUT/bench"
	BUDGET=110 # seconds
	QUIET_WAIT=0
	QUIET_LEFT=0
else
	OUT="$ROOT/bench/out"
	DOC="$ROOT/docs/benchmarks-latest.md"
	CHARTS="$ROOT/docs/bench"
	BUDGET=900
	QUIET_WAIT=20 # seconds per scenario, at most
	QUIET_LEFT=90 # seconds in all
fi
BIN="$OUT/bin"
RESULTS="$OUT/results.jsonl"
COMMANDS="$OUT/commands.txt"
mkdir -p "$BIN" "$CHARTS"
if [ "$APPEND" = 1 ] && [ -f "$RESULTS" ]; then
	# Earlier runs of the servers about to run again are replaced.
	for s in ${SERVERS//,/ }; do
		grep -v "\"label\":\"$s\"" "$RESULTS" >"$RESULTS.keep" || true
		mv "$RESULTS.keep" "$RESULTS"
		# Commands come in pairs: the server, then the load tool.
		if [ -f "$COMMANDS" ]; then
			awk -v l="-label $s " 'NR % 2 == 1 { srv = $0; next } index($0, l) == 0 { print srv; print }' \
				"$COMMANDS" >"$COMMANDS.keep"
			mv "$COMMANDS.keep" "$COMMANDS"
		fi
	done
	[ -f "$COMMANDS" ] || : >"$COMMANDS"
else
	: >"$RESULTS"
	: >"$COMMANDS"
	: >"$OUT/load-summary.txt"
	: >"$OUT/load-progress.log"
fi
QUIET_PCT=25
START_SECONDS=$SECONDS
LOADAVG_START=$(cut -d' ' -f1-3 /proc/loadavg)
SKIPPED=()

log() { printf '[bench %4ds] %s\n' "$((SECONDS - START_SECONDS))" "$*" >&2; }

# Process helpers: SERVER_PID, stop_server, wait_listening; the EXIT trap
# stops the server, INT and TERM exit 130 through it. No PORT_BASE:
# free_port below is this script's own. No temporary directory (WORK is
# set, so one inherited from the environment is never removed).
WORK=""
# shellcheck source=scripts/lib/procs.sh
. "$ROOT/scripts/lib/procs.sh"

# --- build -------------------------------------------------------------
log "building the load tool, the chart tool and the servers"
# bench/ is its own Go module: build its tools from inside it, which works
# with and without the repository's go.work (GOWORK=off).
(cd bench && go build -o "$BIN/load" ./cmd/load) || { log "go build ./bench/cmd/load failed"; exit 1; }
(cd bench && go build -o "$BIN/chart" ./cmd/chart) || { log "go build ./bench/cmd/chart failed"; exit 1; }

AVAILABLE=()
GATEWAY_BUILD=""
rm -f "$BIN/gateway" "$BIN/gorilla" # never run a stale build
for s in ${SERVERS//,/ }; do
	case "$s" in
	chatgate | chatgate-sio)
		if [ -z "$GATEWAY_BUILD" ]; then
			if go build -o "$BIN/gateway" ./cmd/gateway 2>"$OUT/chatgate-build.log"; then
				GATEWAY_BUILD=ok
			else
				GATEWAY_BUILD=failed
				log "skipping chatgate: go build ./cmd/gateway failed (see $OUT/chatgate-build.log)"
				SKIPPED+=("chatgate (build failed)")
			fi
		fi
		# chatgate-sio is decided below, once chatgate is built.
		if [ "$s" = chatgate ] && [ "$GATEWAY_BUILD" = ok ]; then
			AVAILABLE+=(chatgate)
		fi
		;;
	gorilla)
		if (cd bench && go build -o "$BIN/gorilla" ./baseline/gorilla); then
			AVAILABLE+=(gorilla)
		else
			SKIPPED+=("gorilla (build failed)")
		fi
		;;
	socketio)
		if command -v node >/dev/null && command -v npm >/dev/null &&
			(cd bench/baseline/socketio && npm ci --no-audit --no-fund --loglevel=error >"$OUT/npm.log" 2>&1); then
			AVAILABLE+=(socketio)
		else
			log "skipping socketio: node/npm missing or npm ci failed (see $OUT/npm.log)"
			SKIPPED+=("socketio (npm ci failed or node missing)")
		fi
		;;
	*) log "unknown server $s"; exit 2 ;;
	esac
done

# The gateway at --before REV, built from a temporary worktree (removed
# again), runs as chatgate-before next to chatgate, and as
# chatgate-sio-before next to chatgate-sio when that one runs.
rm -f "$BIN/gateway-before"
if [ -n "$BEFORE" ] && [ "$GATEWAY_BUILD" = ok ]; then
	src="$OUT/before-src"
	git -C "$ROOT" worktree remove --force "$src" 2>/dev/null || true
	if git -C "$ROOT" worktree add --detach "$src" "$BEFORE" >"$OUT/before-build.log" 2>&1 &&
		(cd "$src" && go build -o "$BIN/gateway-before" ./cmd/gateway) >>"$OUT/before-build.log" 2>&1; then
		AVAILABLE+=(chatgate-before)
	else
		log "skipping chatgate-before: no build of $BEFORE (see $OUT/before-build.log)"
		SKIPPED+=("chatgate-before (build of $BEFORE failed)")
	fi
	git -C "$ROOT" worktree remove --force "$src" 2>/dev/null || true
fi

# --- servers -----------------------------------------------------------
# chatgate's abuse limits (messages and bytes per second per connection,
# sessions per address) would cap a capacity test at the limit rather than
# at the server; the baselines have none. Turn off those this build has.
GATEWAY_FLAGS=()
if [ "$GATEWAY_BUILD" = ok ]; then
	gateway_help=$("$BIN/gateway" -help 2>&1) || { log "$BIN/gateway -help failed: $gateway_help"; exit 1; }
	for f in rate-messages rate-bytes max-connections-per-ip max-connections; do
		if grep -q -- "^  -$f " <<<"$gateway_help"; then
			GATEWAY_FLAGS+=("-$f=-1")
		fi
	done
	# No admin listener: its default port may belong to a gateway the
	# operator is running, and the benchmark reads /proc, not /metrics.
	if grep -q -- "^  -admin-addr " <<<"$gateway_help"; then
		GATEWAY_FLAGS+=("-admin-addr=")
	fi
	if grep -q -- "^  -api-addr " <<<"$gateway_help"; then
		GATEWAY_FLAGS+=("-api-addr=")
	fi
fi

# free_port prints a loopback port below the ephemeral range with no
# socket on it in any state. TIME_WAIT counts: a listener without
# SO_REUSEADDR cannot bind next to one. Ports rotate, so a server never
# gets the port its predecessor just closed.
NEXT_PORT=28080
free_port() {
	local i p
	for i in $(seq 0 899); do
		p=$((28080 + (NEXT_PORT - 28080 + i) % 900))
		if command -v ss >/dev/null; then
			if [ -n "$(ss -Htan "sport = :$p" 2>/dev/null)" ]; then
				continue
			fi
		elif (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			continue
		fi
		NEXT_PORT=$((p + 1))
		echo "$p"
		return 0
	done
	return 1
}

PORT=""
# start_server NAME [quiet] starts NAME on a free port; unless quiet, its
# command goes into the commands list.
start_server() {
	local name=$1 quiet=${2:-}
	# shellcheck disable=SC2119  # this free_port takes no argument (not procs.sh's)
	free_port >"$OUT/port" || { log "no free port"; return 1; }
	PORT=$(cat "$OUT/port")
	local cmd
	case "$name" in
	chatgate | chatgate-sio) cmd=("$BIN/gateway" -addr "127.0.0.1:$PORT" -presence=false "${GATEWAY_FLAGS[@]}") ;;
	chatgate-before | chatgate-sio-before) cmd=("$BIN/gateway-before" -addr "127.0.0.1:$PORT" -presence=false "${GATEWAY_FLAGS[@]}") ;;
	gorilla) cmd=("$BIN/gorilla" -addr "127.0.0.1:$PORT" -presence=false) ;;
	socketio) cmd=(node "$ROOT/bench/baseline/socketio/server.js" --host 127.0.0.1 --port "$PORT" --presence=false) ;;
	esac
	"${cmd[@]}" >>"$OUT/$name-server.log" 2>&1 &
	SERVER_PID=$!
	[ -n "$quiet" ] || echo "${cmd[*]#"$ROOT/"}    # pid $SERVER_PID" >>"$COMMANDS"
	wait_listening "$PORT" "$SERVER_PID" && return 0
	log "$name did not start listening on $PORT (see $OUT/$name-server.log)"
	stop_server
	return 1
}

# chatgate's Socket.IO endpoint is benchmarked too (label chatgate-sio)
# when a two-member Socket.IO exchange with it succeeds.
case ",$SERVERS," in
*,chatgate,* | *,chatgate-sio,*)
	if [ -x "$BIN/gateway" ] && start_server chatgate quiet; then
		if "$BIN/load" -scenario fanout -proto socketio -addr "127.0.0.1:$PORT" -n 2 -rate 5 -duration 1s \
			-warmup=-1s -retries=-1 -dial-timeout 3s -stats none -quiet -deadline 20s >"$OUT/chatgate-sio-probe.txt" 2>&1; then
			AVAILABLE+=(chatgate-sio)
			if [ -x "$BIN/gateway-before" ]; then
				AVAILABLE+=(chatgate-sio-before)
			fi
		else
			log "chatgate does not answer Socket.IO yet: skipping chatgate-sio"
			SKIPPED+=("chatgate-sio (no Socket.IO endpoint)")
		fi
		stop_server
	fi
	;;
esac
[ ${#AVAILABLE[@]} -gt 0 ] || { log "no server to benchmark"; exit 1; }

# machine_busy prints the percentage of all CPUs busy over one second.
machine_busy() {
	local u1 n1 s1 i1 w1 q1 sq1 st1 u2 n2 s2 i2 w2 q2 sq2 st2 busy total
	read -r _ u1 n1 s1 i1 w1 q1 sq1 st1 _ </proc/stat
	sleep 1
	read -r _ u2 n2 s2 i2 w2 q2 sq2 st2 _ </proc/stat
	busy=$(((u2 + n2 + s2 + q2 + sq2 + st2) - (u1 + n1 + s1 + q1 + sq1 + st1)))
	total=$((busy + (i2 + w2) - (i1 + w1)))
	echo $((total > 0 ? 100 * busy / total : 0))
}

# wait_quiet waits, up to QUIET_WAIT seconds, until other work on the
# machine uses less than QUIET_PCT percent of it: a benchmark sharing the
# cores with a build or a fuzzer measures the neighbour, not the server.
wait_quiet() {
	local waited=0 pct
	[ "$QUIET_WAIT" -gt 0 ] && [ "$QUIET_LEFT" -gt 0 ] || return 0
	while pct=$(machine_busy) && [ "$pct" -gt "$QUIET_PCT" ] && [ "$waited" -lt "$QUIET_WAIT" ] && [ "$QUIET_LEFT" -gt 0 ]; do
		if [ "$waited" -eq 0 ]; then
			log "machine ${pct}% busy with other work: waiting up to ${QUIET_WAIT}s for it to calm down"
		fi
		waited=$((waited + 1))
		QUIET_LEFT=$((QUIET_LEFT - 1))
	done
	if [ "$waited" -gt 0 ]; then
		log "machine ${pct}% busy after waiting ${waited}s; going ahead"
	fi
	return 0
}

# scenario NAME SERVER ARGS... starts SERVER afresh, runs the load tool
# with ARGS against it and stops it.
scenario() {
	local what=$1 name=$2
	shift 2
	if [ $((SECONDS - START_SECONDS)) -ge "$BUDGET" ]; then
		log "time budget of ${BUDGET}s used up: skipping $name $what"
		SKIPPED+=("$name $what (time budget)")
		return 0
	fi
	wait_quiet
	start_server "$name" || { SKIPPED+=("$name $what (server did not start)"); return 0; }
	local proto=native
	case "$name" in socketio | chatgate-sio | chatgate-sio-before) proto=socketio ;; esac
	local args=(-proto "$proto" -addr "127.0.0.1:$PORT" -label "$name" -server-pid "$SERVER_PID" -out "${RESULTS#"$ROOT/"}" "$@")
	echo "${BIN#"$ROOT/"}/load ${args[*]}" >>"$COMMANDS"
	log "$name: $what"
	"$BIN/load" "${args[@]}" 2>>"$OUT/load-progress.log" | tee -a "$OUT/load-summary.txt" >&2 ||
		log "$name $what: the load tool reported a failure (see $OUT/load-progress.log)"
	stop_server
}

# --- scenarios ---------------------------------------------------------
# Ramps are SIZE:START_RATE:P99_BOUND. A fan-out to 10,000 sockets takes
# tens of milliseconds to write even once, so that room size gets a looser
# latency bound.
if [ "$QUICK" = 1 ]; then
	IDLE=(-scenario idle -n 1000 -room-size 50 -duration 1s -deadline 30s)
	RAMP_AT="200:50:50ms"
	RAMP=(-scenario fanout -publishers 4 -size 64 -ramp -ramp-factor 2 -ramp-max 800 -ramp-refine -1 -ramp-retry -1 -step 1s -drain 1s -warmup 500ms -deadline 30s)
	SWEEP_SIZES="50 200"
	SWEEP_RATE_BUDGET=4000 # deliveries per second
	SWEEP_DUR=1s
	WARMUP=500ms
	ROOMS=(-scenario rooms -n 500 -room-size 50 -rate 0.5 -duration 1s -warmup 500ms -deadline 30s)
	CHURN=(-scenario churn -cycles 300 -churn-concurrency 8 -settle 500ms -deadline 30s)
else
	IDLE=(-scenario idle -n 18000 -room-size 50 -duration 6s -deadline 120s)
	RAMP_AT="100:500:50ms 1000:50:50ms 10000:5:250ms"
	RAMP=(-scenario fanout -publishers 10 -size 64 -ramp -ramp-factor 2 -ramp-refine 2 -step 3s -deadline 150s)
	SWEEP_SIZES="100 1000 10000"
	SWEEP_RATE_BUDGET=20000
	SWEEP_DUR=6s
	WARMUP=2s
	ROOMS=(-scenario rooms -n 5000 -room-size 50 -rate 0.1 -duration 6s -deadline 90s)
	CHURN=(-scenario churn -cycles 5000 -churn-concurrency 32 -settle 3s -deadline 90s)
fi

# Each scenario runs on every server before the next scenario starts, so
# a neighbour that loads the machine for a minute hurts one scenario of
# every server rather than every scenario of one server.
for s in "${AVAILABLE[@]}"; do scenario "idle" "$s" "${IDLE[@]}"; done
for at in $RAMP_AT; do
	IFS=: read -r n rate bound <<<"$at"
	for s in "${AVAILABLE[@]}"; do
		scenario "fanout ramp $n" "$s" "${RAMP[@]}" -n "$n" -rate "$rate" -p99 "$bound"
	done
done
for n in $SWEEP_SIZES; do
	# The same deliveries per second at every room size, so the latency
	# curve shows the cost of the room size alone.
	rate=$(awk -v b="$SWEEP_RATE_BUDGET" -v n="$n" 'BEGIN { printf "%.3f", b / (n - 1) }')
	for s in "${AVAILABLE[@]}"; do
		scenario "fanout $n" "$s" -scenario fanout -n "$n" -publishers "$((n < 10 ? n : 10))" -size 64 \
			-rate "$rate" -duration "$SWEEP_DUR" -warmup "$WARMUP" -deadline 120s
	done
done
for s in "${AVAILABLE[@]}"; do scenario "rooms" "$s" "${ROOMS[@]}"; done
for s in "${AVAILABLE[@]}"; do scenario "churn" "$s" "${CHURN[@]}"; done

# --- report ------------------------------------------------------------
log "rendering charts and tables"
rm -f "$CHARTS"/*.svg
CHART_FAILED=0
rm -f "$OUT/tables.md"
if ! "$BIN/chart" -in "$RESULTS" -dir "$CHARTS" -md "$OUT/tables.md"; then
	log "chart tool failed: the report will have no tables"
	CHART_FAILED=1
fi

cpu_model=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
mem_total=$(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
chatgate_rev=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
sio_version=$(node -p 'require("./bench/baseline/socketio/node_modules/socket.io/package.json").version' 2>/dev/null || echo "not installed")
{
	echo "# chatgate benchmarks: latest run"
	echo
	echo "Generated by \`scripts/bench.sh$([ "$QUICK" = 1 ] && echo " --quick")\` on $(date -u '+%Y-%m-%d %H:%M UTC') at commit \`$chatgate_rev\`."
	echo
	echo "## Machine"
	echo
	echo "- CPU: $cpu_model, \`nproc\` = $(nproc)"
	echo "- Memory: $mem_total; open-files limit $(ulimit -n)"
	echo "- Kernel: $(uname -r); $(go version | cut -d' ' -f3-4); node $(node --version 2>/dev/null || echo missing); socket.io $sio_version"
	echo "- Load average when the run started: $LOADAVG_START"
	echo
	echo "The load generator (\`bench/cmd/load\`) runs on the same $(nproc) cores as the server, so"
	echo "its CPU use (about as much per delivery as a goroutine-per-connection server's)"
	echo "caps every figure here; compare servers with each other rather than with other"
	echo "machines. Latency is measured from a CLOCK_MONOTONIC timestamp in each message"
	echo "to its arrival at every receiver, with sends stamped at their scheduled time"
	echo "when the publisher fell more than 2 ms behind (no coordinated omission)."
	echo "The **other CPU** column is the share of the machine's CPU capacity that"
	echo "processes other than the server and the load tool used during the step"
	echo "(from /proc/stat, soft interrupts left out): rows with a high figure were"
	echo "measured while something else competed for the cores, and their latencies"
	echo "say more about that than about the server."
	echo
	echo "Servers: **chatgate** (\`cmd/gateway\`, gnet event loops, native protocol;"
	echo "**chatgate-sio** is the same binary driven over its Socket.IO endpoint), **gorilla**"
	echo "(\`bench/baseline/gorilla\`: gorilla/websocket, hub/readPump/writePump, a"
	echo "goroutine pair per connection) and **socketio** (\`bench/baseline/socketio\`:"
	echo "Node.js, socket.io with the ws native add-ons, one process). Every server"
	echo "runs with presence events off and is restarted for every scenario; chatgate"
	echo "also with its per-connection rate limits and connection caps off, since the"
	echo "baselines have none (see the commands below)."
	echo
	if [ ${#SKIPPED[@]} -gt 0 ]; then
		echo "Skipped: $(IFS=';'; echo "${SKIPPED[*]}" | sed 's/;/; /g')."
		echo
	fi
	echo "## Results"
	echo
	if [ -f "$OUT/tables.md" ]; then
		cat "$OUT/tables.md"
	else
		echo "(No tables: the chart tool failed.)"
		echo
	fi
	echo "## Charts"
	echo
	for f in "$CHARTS"/*.svg; do
		[ -e "$f" ] || continue
		echo "![$(basename "$f" .svg)](bench/$(basename "$f"))"
		echo
	done
	echo "## Commands"
	echo
	echo "Run from the repository root; the servers were started with the first"
	echo "command of each pair and stopped by pid after the second."
	echo
	echo '```'
	cat "$COMMANDS"
	echo '```'
} >"$DOC.tmp"
mv "$DOC.tmp" "$DOC"
log "wrote $DOC and $(find "$CHARTS" -maxdepth 1 -name '*.svg' | wc -l) charts in $CHARTS in $((SECONDS - START_SECONDS))s"
if [ "$CHART_FAILED" = 1 ]; then
	log "failed: the chart tool did not render the results"
	exit 1
fi

#!/usr/bin/env bash
# idle-memory.sh: idle RSS per connection, one run, side by side: chatgate
# native, chatgate Socket.IO over WebSocket, the naive gnet hub and the
# gorilla hub (docs/benchmarks.md, "Memory per idle connection"). Each
# server is started afresh, N clients open (each joins one room of
# ROOM_SIZE and sets a nick) and are held HOLD, and the load tool reads the
# server's RSS from /proc. With PROFILE=1, chatgate's rows also save a
# heap profile (every allocation sampled, after a forced GC) with all N
# open, for the per-item table: go tool pprof -top -sample_index=inuse_space.
#
#   scripts/idle-memory.sh                  # 18,000 clients, rooms of 100
#   N=2000 scripts/idle-memory.sh           # a quick look
#   GATEWAY=/tmp/old-gateway scripts/idle-memory.sh   # another build
#
# chatgate-deflate (not in the default SERVERS) is chatgate with
# -compression and every client negotiating permessage-deflate:
#   N=5000 SERVERS="chatgate chatgate-deflate" scripts/idle-memory.sh
#
# Environment: N (18000), ROOM_SIZE (100), HOLD (6s), SERVERS
# ("chatgate chatgate-sio gnet gorilla"), OUT (a new temporary directory),
# GATEWAY (built from this tree), GATEWAY_FLAGS (extra gateway flags).
# Wrap it in flock /tmp/chatgate-heavy.lock on a shared machine.
set -Eeuo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
N=${N:-18000}
ROOM_SIZE=${ROOM_SIZE:-100}
HOLD=${HOLD:-6s}
SERVERS=${SERVERS:-chatgate chatgate-sio gnet gorilla}
OUT=${OUT:-$(mktemp -d /tmp/idle-memory.XXXXXX)}
PROFILE=${PROFILE:-0}
read -r -a EXTRA <<<"${GATEWAY_FLAGS:-}"
mkdir -p "$OUT/bin"

log() { echo "idle-memory: $*" >&2; }

log "building into $OUT/bin"
if [ -z "${GATEWAY:-}" ]; then
	(cd "$ROOT" && go build -o "$OUT/bin/gateway" ./cmd/gateway)
	GATEWAY=$OUT/bin/gateway
fi
(cd "$ROOT/bench" && go build -o "$OUT/bin/load" ./cmd/load &&
	go build -o "$OUT/bin/gnethub" ./baseline/gnet &&
	go build -o "$OUT/bin/gorilla" ./baseline/gorilla)

# Process helpers: SERVER_PID, stop_server, wait_listening; its EXIT trap
# stops the server. No PORT_BASE: free_port below is this script's own. No
# temporary directory (WORK is set, so one inherited from the environment
# is never removed).
WORK=""
# shellcheck source=scripts/lib/procs.sh
. "$ROOT/scripts/lib/procs.sh"
# As before: INT and TERM keep their default action (the EXIT trap still
# stops the server).
trap - INT TERM

# free_port prints a port below the ephemeral range (the load tool's
# 2 × N client sockets live there) that nothing listens on.
free_port() {
	local p
	for _ in $(seq 200); do
		p=$((10000 + RANDOM % 20000))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null &&
			! (exec 3<>"/dev/tcp/127.0.0.1/$((p + 1))") 2>/dev/null &&
			! (exec 3<>"/dev/tcp/127.0.0.1/$((p + 2))") 2>/dev/null; then
			echo "$p"
			return 0
		fi
	done
	return 1
}

# run NAME: one server, one idle scenario.
run() {
	local name=$1 port proto=native cmd loadflags=()
	# shellcheck disable=SC2119  # this free_port takes no argument (not procs.sh's)
	port=$(free_port) || { log "no free port"; return 1; }
	case "$name" in
	chatgate | chatgate-sio | chatgate-deflate)
		cmd=("$GATEWAY" -addr "127.0.0.1:$port" -admin-addr "127.0.0.1:$((port + 1))"
			-api-addr "127.0.0.1:$((port + 2))" -presence=false "${EXTRA[@]}")
		[ "$name" != chatgate-sio ] || proto=socketio
		if [ "$name" = chatgate-deflate ]; then
			# permessage-deflate negotiated on every connection, each join
			# sent compressed (the gateway inflated one message on each).
			cmd+=(-compression)
			loadflags+=(-compression)
		fi
		;;
	gnet) cmd=("$OUT/bin/gnethub" -addr "127.0.0.1:$port") ;;
	gorilla) cmd=("$OUT/bin/gorilla" -addr "127.0.0.1:$port" -presence=false) ;;
	*)
		log "unknown server $name"
		return 1
		;;
	esac
	if [ "$PROFILE" = 1 ] && [[ $name == chatgate* ]]; then
		GODEBUG=memprofilerate=1 "${cmd[@]}" >"$OUT/$name.log" 2>&1 &
	else
		"${cmd[@]}" >"$OUT/$name.log" 2>&1 &
	fi
	SERVER_PID=$!
	if ! wait_listening "$port" "$SERVER_PID"; then
		log "$name did not start (see $OUT/$name.log)"
		stop_server
		return 1
	fi
	"$OUT/bin/load" -scenario idle -proto "$proto" -addr "127.0.0.1:$port" -n "$N" -room-size "$ROOM_SIZE" \
		-duration "$HOLD" -deadline 180s -server-pid "$SERVER_PID" -label "$name" \
		-out "$OUT/results.jsonl" -quiet "${loadflags[@]}" 2>"$OUT/$name-load.log" &
	local load=$!
	if [ "$PROFILE" = 1 ] && [[ $name == chatgate* ]]; then
		# Once all N are open: the heap profile after a forced GC.
		for _ in $(seq 600); do
			kill -0 "$load" 2>/dev/null || break
			local open
			open=$(curl -fsS "127.0.0.1:$port/stats" 2>/dev/null | grep -o '"connections":[0-9]*' | cut -d: -f2 || true)
			[ "${open:-0}" -ge "$N" ] && break
			sleep 0.2
		done
		curl -fsS "127.0.0.1:$((port + 1))/debug/pprof/heap?gc=1" -o "$OUT/$name.heap" || log "$name: no heap profile"
	fi
	wait "$load" || log "$name: the load tool failed (see $OUT/$name-load.log)"
	stop_server
}

for s in $SERVERS; do
	log "$s: $N clients in rooms of $ROOM_SIZE, held $HOLD"
	run "$s"
done

echo "RSS (and anonymous RSS) per idle connection ($N clients, rooms of $ROOM_SIZE; $OUT/results.jsonl):"
while read -r line; do
	label=$(grep -o '"label":"[^"]*"' <<<"$line" | head -1 | cut -d'"' -f4)
	rss=$(grep -o '"rss_per_conn":[0-9.]*' <<<"$line" | cut -d: -f2)
	anon=$(grep -o '"anon_per_conn":[0-9.]*' <<<"$line" | cut -d: -f2)
	printf '  %-14s %6.0f B   (anonymous %6.0f B)\n' "$label" "${rss:-0}" "${anon:-0}"
done <"$OUT/results.jsonl"

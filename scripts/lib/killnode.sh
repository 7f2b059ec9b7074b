# shellcheck shell=bash
# killnode.sh: the case "a node dies and its clients resume on another",
# shared by bench-recovery.sh and storm.sh. Sourced after procs.sh (it uses
# start, free_port, wait_listening, stop_pid, metric and PIDS), never run:
#
#   . "$ROOT/scripts/lib/killnode.sh"
#
# The script sets (besides what procs.sh needs): OUT, BIN (gateway, load
# and nats-server built there) and PROGRESS (the load tool's progress log),
# with out_dirs below; GATEWAY_FLAGS and LOAD_FLAGS (arrays: the flags of
# both nodes, and of the load tool's resume scenario), SUMMARIES (an array
# the summary is added to) and READY_TIMEOUT (seconds the load tool may
# take to get its clients in before the run is given up).
#
# kill_and_resume NAME N HOOK [NODE2_FLAG...]
#   starts nats-server with JetStream on a fresh store under WORK and two
#   gateway nodes, n1 and n2, sharing a fresh cluster key (node 2 with the
#   extra flags); runs the load tool with N clients on node 1 and
#   -drop external; kills node 1 with SIGKILL when the load tool signals
#   that they are all in, and every client resumes on node 2. The load
#   tool's summary goes to $OUT/NAME.txt, added to SUMMARIES. HOOK is a
#   command run as HOOK ADMIN2 SUMMARY (node 2's admin address) once the
#   load tool is done, before node 2 stops (":" for none). Servers' logs:
#   $OUT/nats-NAME.log, $OUT/gateway-NAME-n1.log, …-n2.log.
# out_dirs NAME sets the layout under bench/out/NAME that the scripts and
# kill_and_resume write to: OUT, BIN (made), RESULTS and PROGRESS (both
# emptied).
out_dirs() {
	OUT="$ROOT/bench/out/$1"
	BIN="$OUT/bin"
	RESULTS="$OUT/results.jsonl"
	PROGRESS="$OUT/load-progress.log"
	mkdir -p "$BIN"
	: >"$RESULTS"
	: >"$PROGRESS"
}

kill_and_resume() {
	local name=$1 n=$2 hook=$3
	shift 3
	# Set by free_port (dynamic scope).
	local nport="" p1="" a1="" p2="" a2=""
	free_port nport
	rm -rf "$WORK/jetstream"
	start "nats-$name" "$BIN/nats-server" -a 127.0.0.1 -p "$nport" -js -sd "$WORK/jetstream"
	local nats=$STARTED
	wait_listening "$nport" "$nats" || { log "nats-server did not start (see $OUT/nats-$name.log)"; exit 1; }
	# A fresh key per run, given in the environment, not on the command line.
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
		-resume-addr "127.0.0.1:$p2" -admin "127.0.0.1:$a2" -n "$n" -server-pid "$gw2")
	log "$name: $n clients on node 1, node 1 killed; node 2 flags: ${*:-(none)}; ${cmd[*]#"$ROOT/"}"
	{
		echo "# $(date -u +%FT%TZ), $name: two nodes and nats-server -js; $n clients on node 1 (pid $gw1), killed with SIGKILL, resumed on node 2 (-drop external); node 2 flags: ${*:-(none)}"
		echo "# ${cmd[*]#"$ROOT/"}"
	} >"$summary"
	"${cmd[@]}" >>"$summary" 2>>"$PROGRESS" &
	local loadpid=$!
	PIDS+=("$loadpid")
	local cut=0
	for _ in $(seq $((READY_TIMEOUT * 10))); do
		if [ -e "$signal" ]; then
			log "$name: killing node 1 (pid $gw1)"
			kill -9 "$gw1"
			wait "$gw1" 2>/dev/null || true
			cut=1
			break
		fi
		kill -0 "$loadpid" 2>/dev/null || break
		sleep 0.1
	done
	[ "$cut" = 1 ] || log "$name: the load tool never got ready to be cut (see $PROGRESS)"
	local status=0
	wait "$loadpid" || status=$?
	[ "$status" = 0 ] || log "$name: the load tool exited with status $status (see $PROGRESS)"
	stop_pid "$loadpid"
	"$hook" "127.0.0.1:$a2" "$summary"
	SUMMARIES+=("$summary")
	stop_pid "$gw1" # killed already, unless the load tool never got ready
	stop_pid "$gw2"
	stop_pid "$nats"
}

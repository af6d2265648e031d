#!/bin/bash
# sigkill_loop.sh - a large load SIGKILLed at a random moment, N times, each
# followed by `graphctl recover` and fsck: the head is the state before the
# load or the state after it, never a mix; a load that exited 0 before the
# kill is never lost; every earlier graph version exports byte-identically
# at the end.  The random delay decides only *where* the writer dies, never
# the order of two processes, so the checks hold whatever it is.
#
#   GRAPHFS_SIGKILL_N      iterations (default 5)
#   GRAPHFS_SIGKILL_ROWS   persons (and edges) per load (default 4000)
. "$top_srcdir/tests/crash/crashlib.sh"

N=${GRAPHFS_SIGKILL_N:-5}
ROWS=${GRAPHFS_SIGKILL_ROWS:-4000}
S=$T/s
gctl init "$S" --schema "$SCHEMA" -q >/dev/null
gctl export "$S" --version 1 >"$T/v.1"

ms_now() { date +%s%3N; }
for i in $(seq 1 "$N"); do
	gen_people "$ROWS" "it$i" >"$T/data.jsonl"
	gen_edges "$ROWS" "it$i" >>"$T/data.jsonl"
	gctl export "$S" >"$T/before"
	rm -rf "$T/ref"; cp -a "$S" "$T/ref"
	t0=$(ms_now)
	gctl load "$T/ref" --data "$T/data.jsonl" -q
	dur=$(( $(ms_now) - t0 + 1 ))
	gctl export "$T/ref" >"$T/after"
	delay=$(( RANDOM % dur ))
	"$GRAPHCTL" load "$S" --data "$T/data.jsonl" -q 2>/dev/null &
	lp=$!
	sleep "$(printf '%d.%03d' $((delay / 1000)) $((delay % 1000)))"
	kill -KILL "$lp" 2>/dev/null || true
	set +e; wait "$lp"; st=$?; set -e
	gctl recover "$S" -q >/dev/null || bad "iteration $i: recover failed"
	clean "$S" || bad "iteration $i: not clean after recover"
	gctl export "$S" >"$T/now"
	if cmp -s "$T/now" "$T/after"; then state=after
	elif cmp -s "$T/now" "$T/before"; then state=before
	else state=mix; fi
	if [ "$state" = mix ]; then bad "iteration $i (kill at ${delay}/${dur} ms): a mix is visible"
	elif [ "$st" = 0 ] && [ "$state" != after ]; then bad "iteration $i: the load succeeded but its data is gone"
	else ok "iteration $i (kill at ${delay}/${dur} ms, exit $st): $state state, clean"; fi
	remember_versions "$S" "$T/v"
done
all_versions_same "$S" "$T/v"
finish

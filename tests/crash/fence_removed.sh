#!/bin/bash
# fence_removed.sh - the sweep must not depend on the locks (a multi-host
# lease can expire).  With commit/skip_locks armed (test builds: no locks
# taken), two sweeps classify the same sidecar, both parked at
# recover/after_classify; released together, exactly one publishes, the
# other finds the sidecar gone (GFS_EGONE): one audit record, the graph
# advanced once.  Done for a roll forward and for a roll back (where both
# write the same compensating version: the second one's -EEXIST with our
# stamp counts as written).
. "$top_srcdir/tests/crash/crashlib.sh"

BASE=$T/base
new_store "$BASE"
gctl export "$BASE" >"$T/old"
gen_people 30 v2 >"$T/v2.jsonl"
cp -a "$BASE" "$T/ref"
gctl load "$T/ref" --data "$T/v2.jsonl" -q
gctl export "$T/ref" >"$T/new"

# parked_pids NAME: pids parked at NAME, one a line.
parked_pids() {
	local base f
	base=$(fp_file_name "$1")
	for f in "$GRAPHFS_FP_DIR/$base".*.reached; do
		[ -e "$f" ] || continue
		f=${f##*/}; f=${f#"$base".}; echo "${f%.reached}"
	done
}
# wait_exit PID TIMEOUT: waits until PID (not our child) is gone.
wait_exit() {
	local left=$(( $2 * 100 ))
	while kill -0 "$1" 2>/dev/null; do
		[ "$left" -gt 0 ] || return 1
		sleep 0.01
		left=$((left - 1))
	done
}

for kind in forward back; do
	S=$T/$kind
	cp -a "$BASE" "$S"
	fp=commit/before_publish=exit want=new field=rolled_forward
	[ "$kind" = back ] && fp=commit/after_table=exit@2 want=old field=rolled_back
	set +e
	GRAPHFS_FAILPOINTS=$fp gctl load "$S" --data "$T/v2.jsonl" -q 2>/dev/null
	set -e
	op=$(pending_ids "$S")
	[ -n "$op" ] || { bad "$kind: no sidecar to race on"; continue; }
	v0=$(head_version "$S")
	for i in 1 2; do
		GRAPHFS_FAILPOINTS="commit/skip_locks=error:EPERM,recover/after_classify=park,recover/before_audit=park" \
			bg gctl recover "$S" --json >"$T/sum.$i"
	done
	wait_parked recover/after_classify 2 30 && ok "$kind: both sweeps classified the sidecar" || bad "$kind: not both parked"
	set -- $(parked_pids recover/after_classify)
	a=$1 b=$2
	# a goes first as far as the resolving publish (a roll back writes the
	# compensations), then b does the same (-EEXIST, stamped ours: fine);
	# b publishes first, a finds the sidecar gone.
	fp_release recover/after_classify "$a"
	wait_parked recover/before_audit 1 30 || bad "$kind: a never reached before_audit"
	fp_release recover/after_classify "$b"
	wait_parked recover/before_audit 2 30 || bad "$kind: b never reached before_audit"
	fp_release recover/before_audit "$b"
	wait_exit "$b" 30 || bad "$kind: b did not finish"
	fp_release recover/before_audit "$a"
	for p in $BG_PIDS; do wait "$p" 2>/dev/null || true; done
	BG_PIDS=""
	won=$(( $(summary "$field" "$T/sum.1") + $(summary "$field" "$T/sum.2") ))
	gone=$(( $(summary gone "$T/sum.1") + $(summary gone "$T/sum.2") ))
	[ "$won" = 1 ] && [ "$gone" = 1 ] && ok "$kind: one published, the other found it gone" ||
		bad "$kind: $field=$won gone=$gone ($(cat "$T/sum.1") / $(cat "$T/sum.2"))"
	[ "$(audits "$S" "$op")" = 1 ] && ok "$kind: exactly one audit record" || bad "$kind: $(audits "$S" "$op") audit records"
	[ "$(head_version "$S")" = $((v0 + 1)) ] && ok "$kind: the graph advanced once" || bad "$kind: head $(head_version "$S"), was $v0"
	gctl export "$S" | cmp -s - "$T/$want" && ok "$kind: $want state" || bad "$kind: not the $want state"
	clean "$S" && ok "$kind: clean" || bad "$kind: not clean"
done
finish

#!/bin/bash
# tests/faults/io_faults.sh - I/O errors (issue 8, requirement 2).
#
# For each writer (init, load merge/append/overwrite, recover rolling
# forward, rolling back and compensating an orphan; upgrade of a format-1
# store), a counting run under tests/faults/faultinj.c
# learns how many calls of each kind (write, pwrite, writev, fsync,
# fdatasync, link, rename, unlink, unlinkat, open, openat, mmap, ftruncate,
# mkdir, ...) it makes under the store; then the Nth call of a kind is
# failed with EIO, ENOSPC, EDQUOT or made a short write, and after each run:
#   - no crash: no signal, no timeout, no sanitizer report;
#   - the shim fired; exit 0 only if the result is complete (the new graph,
#     fsck clean), never after an fsync/fdatasync failure (fsyncgate);
#     non-zero names the file (the manifest directory for LMDB) and the
#     operation;
#   - then, without faults: recover exits 0, fsck is clean, no sidecar is
#     left, every earlier version exports byte-identically, and the head is
#     exactly the old graph or exactly the new one.
# A failed init must leave no FORMAT (not a store) and init must succeed in
# a fresh directory afterwards.
#
# make check: a deterministic subset (GFS_FAULT_SEED, printed): per writer
# and kind a few N (first, last, and seeded picks; GFS_FAULT_PICKS) with a
# rotating action.  make stress (GFS_FAULT_FULL=1): every N of every kind
# with every action, until N passes the last call.  One case alone:
#   GFS_FAULT_ONLY='load-merge fsync 3 EIO' make check TESTS=tests/faults/io_faults.sh
# (docs/testing.md "I/O faults").
. "$top_srcdir/tests/crash/crashlib.sh"
. "$top_srcdir/tests/faults/faultlib.sh"

SEED=${GFS_FAULT_SEED:-8}
FULL=${GFS_FAULT_FULL:-0}
PICKS=${GFS_FAULT_PICKS:-2}
ONLY=${GFS_FAULT_ONLY:-}
echo "# seed $SEED full=$FULL picks=$PICKS${ONLY:+ only='$ONLY'}"

# ---- the writers: a prepared store and a command ------------------------

gen_new_people() { # N TAG: persons not in the seed (append)
	awk -v n="$1" -v tag="$2" 'BEGIN {
		for (i = 0; i < n; i++)
			printf "{\"type\":\"Person\",\"data\":{\"slug\":\"q%06d\",\"name\":\"Q %d %s\"}}\n", i, i, tag
	}'
}

# prepare W: $T/pre.W (the store before the writer runs), $T/cmd.W (its
# arguments, STORE standing for the store), $T/new.W (the head export a
# clean run leaves), $T/old.W.<v> (every version before).
prepare() {
	local w=$1 p=$T/pre.$1
	case $w in
	init)
		printf '%s\n' init STORE --schema "$SCHEMA" -q >"$T/cmd.$w"
		return ;;
	upgrade)
		# The format-1 store of tests/upgrade/upgrade.sh; its exports are
		# the versions before (a format-1 store exports nothing itself).
		# The new graph: upgraded, then its old build's sidecar recovered.
		local v
		rm -rf "$T/fx" && mkdir -p "$T/fx"
		tar -C "$T/fx" -xzf "$top_srcdir/tests/data/format1-store.tar.gz"
		mv "$T/fx/fixture/store" "$p"
		for v in $(ls "$T/fx/fixture/exports" | sed 's/\.jsonl$//'); do
			cp "$T/fx/fixture/exports/$v.jsonl" "$T/old.$w.$v"
		done
		printf '%s\n' upgrade STORE -q >"$T/cmd.$w"
		rm -rf "$T/ref" && cp -a "$p" "$T/ref"
		run_cmd "$w" "$T/ref" >/dev/null 2>&1 && gctl recover "$T/ref" -q >/dev/null 2>&1 ||
			{ echo "prepare $w: clean run failed" >&2; exit 1; }
		gctl export "$T/ref" >"$T/new.$w"
		return ;;
	esac
	gctl init "$p" --schema "$SCHEMA" -q >/dev/null
	{ gen_people 40 v1; gen_edges 40 v1; gen_docs 10 v1; } >"$T/seed.jsonl"
	gctl load "$p" --data "$T/seed.jsonl" -q >/dev/null
	case $w in
	load-merge)
		{ gen_people 40 v2; gen_edges 40 v2; } >"$T/data.$w"
		printf '%s\n' load STORE --data "$T/data.$w" --mode merge -q ;;
	load-append)
		gen_new_people 30 v2 >"$T/data.$w"
		printf '%s\n' load STORE --data "$T/data.$w" --mode append -q ;;
	load-overwrite)
		gen_docs 5 v2 >"$T/data.$w"
		printf '%s\n' load STORE --data "$T/data.$w" --mode overwrite -q ;;
	recover-forward | recover-back)
		{ gen_people 40 v2; gen_edges 40 v2; } >"$T/data.$w"
		local fp=commit/after_confirm=exit
		[ "$w" = recover-back ] && fp=commit/after_table=exit@1
		set +e
		GRAPHFS_FAILPOINTS=$fp with_timeout "$TMO" "$GRAPHCTL" load "$p" \
			--data "$T/data.$w" -q >/dev/null 2>&1
		[ $? = 86 ] || { echo "prepare $w: the writer did not die at $fp" >&2; exit 1; }
		set -e
		[ "$(pending "$p")" = 1 ] || { echo "prepare $w: no sidecar" >&2; exit 1; }
		printf '%s\n' recover STORE -q ;;
	recover-orphan)
		# A version above the pin that no sidecar names: the same load
		# done on a copy, its node:Person version put into this store.
		rm -rf "$T/twin"
		cp -a "$p" "$T/twin"
		gen_people 40 v2 >"$T/data.$w"
		gctl load "$T/twin" --data "$T/data.$w" -q >/dev/null
		local h
		h=$(ls "$T/twin/tables/node:Person" | grep -E '^[0-9]+$' | sort -n | tail -1)
		cp "$T/twin/tables/node:Person/$h" "$p/tables/node:Person/$h"
		printf '%s\n' recover STORE -q ;;
	esac >"$T/cmd.$w"
	exports_of "$p" "$T/old.$w"
	rm -rf "$T/ref"
	cp -a "$p" "$T/ref"
	run_cmd "$w" "$T/ref" >/dev/null 2>&1 || { echo "prepare $w: clean run failed" >&2; exit 1; }
	gctl export "$T/ref" >"$T/new.$w"
}

# run_cmd W STORE: runs W's command on STORE, under the shim if FI_ENV is
# set (only graphctl gets it, not timeout(1)).
FI_ENV=()
run_cmd() {
	local a args=()
	while IFS= read -r a; do
		[ "$a" = STORE ] && a=$2
		args+=("$a")
	done <"$T/cmd.$1"
	with_timeout "$TMO" env "${FI_ENV[@]}" "$GRAPHCTL" "${args[@]}"
}

# ---- one case ------------------------------------------------------------

# check_after W S RC: the store after a faulted run of W (see the header).
check_after() {
	local w=$1 s=$2 rc=$3 v n
	if [ "$w" = init ]; then
		if [ "$rc" = 0 ]; then
			gctl fsck "$s" -q >/dev/null 2>&1 || { echo "init exit 0 but fsck fails"; return 1; }
			return 0
		fi
		[ ! -e "$s/FORMAT" ] || { echo "failed init left $s/FORMAT"; return 1; }
		rm -rf "$s"
		gctl init "$s" --schema "$SCHEMA" -q >/dev/null 2>&1 || { echo "init after a failed init fails"; return 1; }
		return 0
	fi
	if [ "$w" = upgrade ]; then # run again after a failure (documented)
		gctl upgrade "$s" -q >"$T/rec.out" 2>&1 || { echo "upgrade again after the fault: $(cat "$T/rec.out")"; return 1; }
	fi
	gctl recover "$s" -q >"$T/rec.out" 2>&1 || { echo "recover after the fault: $(cat "$T/rec.out")"; return 1; }
	clean "$s" >/dev/null 2>&1 || { echo "fsck or sidecars after recover: $(cat "$T/fsck.out")"; return 1; }
	n=$(ls "$T/old.$w".* | wc -l)
	for v in $(seq 1 "$n"); do
		gctl export "$s" --version "$v" | cmp -s - "$T/old.$w.$v" ||
			{ echo "version $v changed"; VLOST=$((VLOST + 1)); return 1; }
	done
	gctl export "$s" >"$T/head.out"
	if cmp -s "$T/head.out" "$T/new.$w"; then
		return 0
	fi
	[ "$rc" != 0 ] || { echo "exit 0 but the head is not the new graph"; return 1; }
	cmp -s "$T/head.out" "$T/old.$w.$n" || { echo "head is neither the old nor the new graph"; return 1; }
}

# one_case W KIND N ACTION: prints nothing and returns 2 when N is past the
# last call of KIND (the shim never fired); 0 passed, 1 failed.
one_case() {
	local w=$1 kind=$2 n=$3 act=$4 s=$T/s rc why=""
	rm -rf "$s" "$T/rep"
	[ "$w" = init ] || cp -a "$T/pre.$w" "$s"
	fi_env "$kind:$n:$act" "$s" "$T/rep"
	set +e
	run_cmd "$w" "$s" >"$T/out" 2>"$T/err"
	rc=$?
	set -e
	FI_ENV=()
	if ! grep -q '^fired' "$T/rep" 2>/dev/null; then
		[ "$rc" = 0 ] || { bad "$w $kind:$n:$act: no fault fired but exit $rc: $(head -3 "$T/err")"; return 1; }
		return 2
	fi
	INJECTED=$((INJECTED + 1))
	why=$(fi_verdict "$rc" "$T/err" "$T/rep" "$kind") || {
		case $why in CRASH*) CRASHES=$((CRASHES + 1)) ;; esac
		bad "$w $kind:$n:$act: $why (replay: GFS_FAULT_ONLY='$w $kind $n $act')"
		sed 's/^/#   /' "$T/err" | head -5
		return 1
	}
	[ "$rc" = 0 ] || SURFACED=$((SURFACED + 1))
	why=$(check_after "$w" "$s" "$rc") || {
		bad "$w $kind:$n:$act (exit $rc): $why (replay: GFS_FAULT_ONLY='$w $kind $n $act')"
		sed 's/^/#   /' "$T/err" | head -5
		return 1
	}
	return 0
}

# ---- the loop --------------------------------------------------------------

# GFS_FAULT_KINDS: the kinds to fail (default: every kind the run makes).
fi_kind_wanted() {
	[ -z "${GFS_FAULT_KINDS:-}" ] && return 0
	case " $GFS_FAULT_KINDS " in *" $1 "*) return 0 ;; esac
	return 1
}

INJECTED=0 SURFACED=0 CRASHES=0 VLOST=0 CASES=0
WRITERS=${GFS_FAULT_WRITERS:-init load-merge load-append load-overwrite recover-forward recover-back recover-orphan upgrade}

if [ -n "$ONLY" ]; then
	set -- $ONLY
	prepare "$1"
	one_case "$1" "$2" "$3" "$4" && ok "$ONLY" || { [ $? = 2 ] && bad "$ONLY: the fault never fired"; }
	finish
	exit
fi

for w in $WRITERS; do
	prepare "$w"
	# The counting run: how many calls of each kind the clean run makes.
	rm -rf "$T/s" "$T/rep"
	[ "$w" = init ] || cp -a "$T/pre.$w" "$T/s"
	fi_env "" "$T/s" "$T/rep"
	run_cmd "$w" "$T/s" >/dev/null 2>&1 ||
		{ FI_ENV=(); bad "$w: the counting run failed"; continue; }
	FI_ENV=()
	counts=$(fi_counts "$T/rep")
	echo "# $w: calls under the store: $(echo $counts)"
	wfail=0 wcases=0
	for kc in $counts; do
		kind=${kc%=*} c=${kc#*=}
		fi_kind_wanted "$kind" || continue
		for act in $(fi_actions "$SEED.$w.$kind" "$kind"); do
			if [ "$FULL" = 1 ]; then
				ns=$(seq 1 $((c + 1)))
			else
				ns=$(fi_picks "$SEED" "$w.$kind.$act" "$c" "$PICKS")
			fi
			for n in $ns; do
				rcase=0
				one_case "$w" "$kind" "$n" "$act" || rcase=$?
				[ "$rcase" = 2 ] && break     # past the last call
				CASES=$((CASES + 1)) wcases=$((wcases + 1))
				[ "$rcase" = 0 ] || wfail=$((wfail + 1))
			done
			# make check: one action per kind, rotating with the seed
			[ "$FULL" = 1 ] || break
		done
	done
	[ "$wfail" = 0 ] && ok "$w: $wcases faulted runs, each surfaced or complete, store clean after"
done

# fsyncgate across processes: a sweep whose directory fsync failed after it
# linked its compensation leaves that name behind.  The next sweep must not
# trust it: it fsyncs the directory again before publishing, and fails
# (keeping the sidecar) when that fsync fails too.
untrusted=""
for n in 1 2 3 4 5 6; do
	rm -rf "$T/s" "$T/rep"; cp -a "$T/pre.recover-back" "$T/s"
	fi_env "fsync:$n:EIO" "$T/s" "$T/rep"
	set +e; run_cmd recover-back "$T/s" >/dev/null 2>&1; rc=$?; set -e
	FI_ENV=()
	p=$(sed -n 's/^fired .* path=//p' "$T/rep" 2>/dev/null | head -1)
	[ -n "$p" ] || break
	[ -d "$p" ] || continue
	[ "$rc" != 0 ] && [ "$(pending "$T/s")" = 1 ] ||
		{ bad "fsyncgate: directory fsync $n failed, yet the sweep published (exit $rc)"; untrusted=x; break; }
	fi_env "fsync:1:EIO" "$T/s" "$T/rep"; rm -f "$T/rep"
	set +e; run_cmd recover-back "$T/s" >/dev/null 2>"$T/err"; rc=$?; set -e
	FI_ENV=()
	if [ "$rc" = 0 ] || [ "$(pending "$T/s")" != 1 ]; then
		bad "fsyncgate: the next sweep published a compensation whose directory fsync had failed, without an fsync of its own (exit $rc)"
	elif why=$(check_after recover-back "$T/s" 1); then
		ok "fsyncgate: after a failed directory fsync ($n) the next sweep fsyncs again and fails with it; then recovers cleanly"
	else
		bad "fsyncgate: afterwards: $why"
	fi
	untrusted=x
	break
done
[ -n "$untrusted" ] || bad "fsyncgate: no fsync of a directory found in a roll back"

echo "# summary: writers $(echo $WRITERS | wc -w), faults injected $INJECTED," \
     "errors surfaced $SURFACED, crashes $CRASHES, versions lost $VLOST, seed $SEED"
[ "$CRASHES" = 0 ] || bad "crashes: $CRASHES"
[ "$VLOST" = 0 ] || bad "versions lost: $VLOST"
[ "$INJECTED" -gt 0 ] || bad "no fault was ever injected: the shim is not working"
finish

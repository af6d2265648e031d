#!/bin/bash
# Builds graphfs, creates a demo store from examples/, mounts it, browses
# it and edits it through the mount the way a person would, makes a branch,
# merges it back through a conflict, compacts and collects old versions,
# then unmounts.  Leaves ./demo-store behind for
# you to explore (graphctl ... demo-store; graphfs demo-store /some/dir).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/deps.sh
autoreconf -fi >/dev/null 2>&1
mkdir -p build && cd build
[ -f Makefile ] || ../configure -q
make -j"$(nproc)" >/dev/null
cd ..
B=build
store=demo-store
mnt=$(mktemp -d /tmp/graphfs-demo.XXXXXX)
cleanup() { fusermount3 -u "$mnt" 2>/dev/null || true; rmdir "$mnt" 2>/dev/null || true; }
trap cleanup EXIT
run() { printf '\n$ %s\n' "$*"; "$@"; }
run_may_fail() { printf '\n$ %s\n' "$*"; "$@" || echo "(exit status $?: nothing was changed)"; }
# wait_for_gc: until the mount's notifier has seen a gc (.graphfs/stats).
wait_for_gc() {
	local i
	for i in $(seq 500); do
		grep -q '"gcs_seen":[1-9]' "$mnt/.graphfs/stats" && { echo "gc seen"; return 0; }
		sleep 0.01
	done
	return 1
}
# wait_for_head N: until the mount shows graph version N (.graphfs/seen:
# its notifier has handled it).
wait_for_head() {
	local i
	for i in $(seq 200); do
		[ "$(cat "$mnt/.graphfs/seen")" -ge "$1" ] && { echo "seen $1"; return 0; }
		sleep 0.01
	done
	return 1
}

rm -rf "$store"
run $B/graphctl init $store --schema examples/people.pg
run $B/graphctl load $store --data examples/people.jsonl --mode merge
run $B/graphctl snapshot $store
run $B/graphctl log $store
if [ -x $B/graphfs ]; then
	run $B/graphfs $store "$mnt"
	run ls "$mnt"
	run ls "$mnt/nodes" "$mnt/nodes/Person"
	run cat "$mnt/nodes/Person/alice.json"
	run wc -l "$mnt/edges/Knows.jsonl"
	run ls "$mnt/versions"
	run readlink "$mnt/HEAD"
	run $B/graphctl load $store --data - --mode merge <<<'{"type":"Person","data":{"slug":"erin","name":"Erin","created":"2026-04-01T00:00:00Z"}}'
	# The mount shows the new version after its notifier's next poll
	# (20 ms); a script that must see it waits for .graphfs/seen.
	run wait_for_head 3
	run ls "$mnt/nodes/Person"
	run ls "$mnt/versions"
	# The live view is writable: each close() publishes one version.
	run sed -i 's/"name":"Erin"/"name":"Erin Example"/' "$mnt/nodes/Person/erin.json"
	run cat "$mnt/nodes/Person/erin.json"
	run ln -s ../../../../Person/alice.json "$mnt/nodes/Person/erin/out/Knows/alice.json"
	run ls -l "$mnt/nodes/Person/erin/out/Knows"
	run readlink "$mnt/HEAD"
	# History: a branch (a live view under branches/), a conflicting
	# merge, then compact and gc (versions/ shrinks in the mount).
	run $B/graphctl branch create $store dev
	run $B/graphctl load $store --branch dev --data - <<<'{"type":"Person","data":{"slug":"carol","name":"Carol Danvers","created":"2026-02-11T12:30:00.25Z","kind":"staff"}}'
	run $B/graphctl load $store --data - <<<'{"type":"Person","data":{"slug":"carol","name":"Carol Danvers","created":"2026-02-11T12:30:00.25Z","kind":"on-leave"}}'
	run wait_for_head 7
	run ls "$mnt/branches" "$mnt/branches/dev"
	run readlink "$mnt/branches/dev/HEAD"
	run cat "$mnt/branches/dev/nodes/Person/carol.json" "$mnt/nodes/Person/carol.json"
	run_may_fail $B/graphctl merge $store dev
	run $B/graphctl merge $store dev --prefer source
	run $B/graphctl log $store
	run $B/graphctl branch delete $store dev
	run $B/graphctl compact $store
	run $B/graphctl gc $store --keep-last 1
	run wait_for_gc
	run ls "$mnt/versions"
	run fusermount3 -u "$mnt"
fi
run $B/graphctl export $store --type Person
run $B/graphctl fsck $store

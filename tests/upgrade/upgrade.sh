#!/bin/bash
# upgrade.sh - graphctl upgrade on a store made by the format-1 build
# (tests/data/format1-store.tar.gz, made by tests/data/make_format1_store.sh
# with 361846f's graphctl): refused before, every graph version exports
# byte-identical after, crash between the manifest and FORMAT finished by a
# second run, refused while the store is open, idempotent, and the pending
# sidecar of the old build is recovered afterwards.
set -euo pipefail
: "${GRAPHCTL:?}" "${top_srcdir:?}"
. "$top_srcdir/tests/lib.sh"
T=$(mktemp -d /tmp/gfs-upgrade.XXXXXX)
holder=
cleanup() {
	[ -n "$holder" ] && kill "$holder" 2>/dev/null || true
	rm -rf "$T"
}
trap cleanup EXIT
fails=0
ok()   { echo "ok - $*"; }
bad()  { echo "FAIL - $*"; fails=$((fails + 1)); }
fixture() { # fixture DIR: a fresh copy of the format-1 store in DIR/fixture
	mkdir -p "$1"
	tar -C "$1" -xzf "$top_srcdir/tests/data/format1-store.tar.gz"
}
exports_match() { # exports_match STORE EXPORTS DESC
	local n=0 v
	for f in "$2"/*.jsonl; do
		v=$(basename "$f" .jsonl)
		if ! "$GRAPHCTL" export "$1" --version "$v" >"$T/exp" 2>"$T/err"; then
			bad "$3: export --version $v failed: $(head -c 300 "$T/err")"
			return
		fi
		cmp -s "$T/exp" "$f" || { bad "$3: version $v differs"; return; }
		n=$((n + 1))
	done
	[ "$n" -ge 6 ] && ok "$3: $n versions export byte-identical" || bad "$3: only $n versions"
}

fixture "$T/a"
S=$T/a/fixture/store
E=$T/a/fixture/exports
before=$(cd "$S" && find . -type f | sort | xargs sha256sum)

# format 1 is refused by every other command, with the way out
for c in "export" "fsck" "log"; do
	expect_status 1 "$c on a format-1 store" "$GRAPHCTL" $c "$S"
	expect_err "graphctl upgrade" "$c says to run graphctl upgrade"
done
expect_status 1 "load on a format-1 store" "$GRAPHCTL" load "$S" --data "$E/2.jsonl"
expect_err "format 1.*graphctl upgrade" "load says to run graphctl upgrade"
if [ -n "${GRAPHFS:-}" ] && [ -x "$GRAPHFS" ]; then
	mkdir -p "$T/mnt"
	expect_status 1 "mount of a format-1 store" timeout "$(scaled 30)" "$GRAPHFS" "$S" "$T/mnt"
	expect_err "format 1.*graphctl upgrade" "the mount says to run graphctl upgrade"
	if mountpoint -q "$T/mnt"; then fusermount3 -u "$T/mnt"; bad "format-1 store mounted"; fi
fi
after=$(cd "$S" && find . -type f ! -name lock.mdb | sort | xargs sha256sum)
[ "$before" = "$after" ] && ok "refusals left the store as it was" || bad "refusals changed the store"

# refused while another process has the manifest open (LMDB's liveness
# lock: a read lock on byte 0 of lock.mdb, held by every open environment)
mkfifo "$T/go"
python3 - "$S/manifest/lock.mdb" "$T/ready" "$T/go" <<'PY' &
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o644)
fcntl.lockf(fd, fcntl.LOCK_SH, 1, 0)
open(sys.argv[2], "w").close()
open(sys.argv[3]).read()
PY
holder=$!
left=$(( $(scaled 20) * 100 ))
while [ ! -e "$T/ready" ] && [ "$left" -gt 0 ]; do sleep 0.01; left=$((left - 1)); done
[ -e "$T/ready" ] || bad "lock holder never started"
expect_status 5 "upgrade while the manifest is open elsewhere" "$GRAPHCTL" upgrade "$S"
expect_err "open in process $holder" "busy upgrade names the process"
echo >"$T/go"
wait "$holder" || true
holder=
grep -q '^graphfs-store 1$' "$S/FORMAT" && ok "busy upgrade left FORMAT at 1" || bad "FORMAT changed"

# refused while a writer holds a table lock
mkfifo "$T/go2"
flock -x "$S/locks/node:Person.lock" sh -c ': >"$1"; read x <"$2"' sh "$T/ready2" "$T/go2" &
holder=$!
left=$(( $(scaled 20) * 100 ))
while [ ! -e "$T/ready2" ] && [ "$left" -gt 0 ]; do sleep 0.01; left=$((left - 1)); done
expect_status 5 "upgrade while a table lock is held" "$GRAPHCTL" upgrade "$S"
expect_err "writer at work" "busy upgrade says a writer is at work"
echo >"$T/go2"
wait "$holder" || true
holder=

# the upgrade itself
expect_status 0 "upgrade --json" "$GRAPHCTL" upgrade "$S" --json
grep -qE '"from":1,"to":3,"records":[1-9]' "$T/out" && ok "json names from, to, records" || bad "json: $(cat "$T/out")"
grep -q '^graphfs-store 3$' "$S/FORMAT" && ok "FORMAT is 3" || bad "FORMAT: $(cat "$S/FORMAT")"
exports_match "$S" "$E" "after upgrade"
expect_status 0 "upgrade again" "$GRAPHCTL" upgrade "$S"
grep -q "already format 3" "$T/out" && ok "second upgrade does nothing" || bad "second upgrade: $(cat "$T/out")"
# the old build's pending sidecar survived and is recovered
expect_status 1 "fsck lists the pending sidecar" "$GRAPHCTL" fsck "$S"
grep -q "pending sidecar" "$T/out" && ok "pending sidecar carried over" || bad "fsck: $(cat "$T/out")"
expect_status 0 "recover the old build's sidecar" "$GRAPHCTL" recover "$S" --quiet
expect_status 0 "fsck clean after recover" "$GRAPHCTL" fsck "$S"
expect_status 0 "recover --list --json" "$GRAPHCTL" recover "$S" --list --json
[ "$(grep -o '"decision"' "$T/out" | wc -l)" -ge 2 ] && ok "old and new audit records readable" || bad "audit: $(cat "$T/out")"
exports_match "$S" "$E" "after recover"
printf '%s\n' '{"type":"Person","data":{"slug":"gina","name":"Gina","created":"2026-06-01T00:00:00Z"}}' >"$T/g.jsonl"
expect_status 0 "load into the upgraded store" "$GRAPHCTL" load "$S" --data "$T/g.jsonl" --quiet
if command -v mdb_dump >/dev/null; then
	expect_status 0 "format_reader.py reads the upgraded store" \
		python3 "$top_srcdir/tests/format_reader.py" "$S"
	"$GRAPHCTL" export "$S" >"$T/head.jsonl"
	cmp -s "$T/out" "$T/head.jsonl" && ok "format_reader.py output equals export" || bad "format_reader.py output differs"
fi

# a crash between the manifest transaction and FORMAT: refused until
# upgrade runs again, which finishes it
fixture "$T/b"
S2=$T/b/fixture/store
set +e
GRAPHFS_FAILPOINTS=upgrade/after_manifest=exit "$GRAPHCTL" upgrade "$S2" >/dev/null 2>&1
st=$?
set -e
[ "$st" != 0 ] && ok "upgrade died after the manifest (exit $st)" || bad "failpoint upgrade/after_manifest not reached"
grep -q '^graphfs-store 1$' "$S2/FORMAT" && ok "FORMAT still 1 after the crash" || bad "FORMAT changed"
expect_status 1 "export between manifest and FORMAT" "$GRAPHCTL" export "$S2"
expect_err "graphctl upgrade" "half-upgraded store says to run upgrade"
expect_status 0 "upgrade after the crash" "$GRAPHCTL" upgrade "$S2" --json
grep -q '"from":1,"to":3,"records":0' "$T/out" && ok "rerun found the manifest current" || bad "rerun: $(cat "$T/out")"
exports_match "$S2" "$T/b/fixture/exports" "after crash and rerun"

# a format-1 record that does not decode: upgrade refuses, naming its key,
# and commits nothing (format 1 had no checksums, so this is all it can do)
fixture "$T/c"
S3=$T/c/fixture/store
python3 - "$S3/manifest/data.mdb" <<'PY'
import sys
p = sys.argv[1]
b = bytearray(open(p, "rb").read())
i = b.find(b'"op":"load"')
assert i > 0
b[i + 4] = ord(";")       # invalid JSON, same length
open(p, "wb").write(bytes(b))
PY
sum3=$(sha256sum <"$S3/manifest/data.mdb")
expect_status 1 "upgrade of a store with an undecodable record" "$GRAPHCTL" upgrade "$S3"
expect_err "manifest record versions/[0-9]+ is corrupt" "refusal names the record"
[ "$(sha256sum <"$S3/manifest/data.mdb")" = "$sum3" ] && grep -q '^graphfs-store 1$' "$S3/FORMAT" \
	&& ok "refused upgrade changed nothing" || bad "refused upgrade changed the store"

echo "upgrade.sh: $fails failure(s)"
[ "$fails" = 0 ]

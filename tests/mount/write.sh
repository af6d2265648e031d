#!/bin/bash
# write.sh - writes through the live view with the real programs (issue 10,
# docs/semantics.md "Writes", docs/mount.md "Writes"): shell redirection,
# tee, cp, cp -a, jq, truncate, sed -i, vim -es (backupcopy=yes and =no
# with a backup), nano, rsync, rm, mv; every error case with its errno.
# After each step: the log holds exactly the versions expected, graphctl
# fsck is clean, and the log names the writer (comm).  The kernel caches
# for an hour (live_timeout=3600), so every "visible at once" check proves
# that close() waited for the notifier (req. 9).
. "$top_srcdir/tests/mount/lib_mount.sh"
S=$T/store M=$T/mnt
new_store "$S"
printf '%s\n' '{"type":"Person","data":{"slug":"alice","name":"Alice"}}' \
	'{"type":"Person","data":{"slug":"bob","name":"Bob Stone"}}' \
	'{"type":"Company","data":{"name":"acme"}}' \
	'{"edge":"Knows","from":"alice","to":"bob"}' \
	'{"edge":"WorksAt","from":"bob","to":"acme"}' | load "$S" merge
mount_gfs "$S" "$M" -o live_timeout=3600 || { bad mount; finish; exit; }
P=$M/nodes/Person

# expect N DESC [COMM]: the newest version is N, fsck is clean, and (if
# COMM is given) version N's log record names a writer with that comm.
expect() {
	local v; v=$(gc log "$S" | tail -n 1 | awk '{print $1}')
	if [ "$v" != "$1" ]; then bad "$2: newest version $v, want $1"; return; fi
	if ! gc fsck "$S" >/dev/null; then bad "$2: fsck"; return; fi
	if [ -n "${3:-}" ] && ! gc log "$S" | tail -n 1 | grep -q "\"comm\":\"$3\""; then
		bad "$2: version $1 does not name writer $3"; return
	fi
	ok "$2 (version $v, fsck clean${3:+, writer $3})"
}
# errno_of PY-STMTS: runs them (m = mount point); prints OK or the errno name.
errno_of() {
	timeout "$(scaled 60)" python3 - "$M" "$1" <<'PY'
import errno, os, sys
m = sys.argv[1]
try:
    exec(sys.argv[2])
    print("OK")
except OSError as e:
    print(errno.errorcode[e.errno])
PY
}
claim() { # claim WANT DESC PY-STMTS
	local got; got=$(errno_of "$3")
	if [ "$got" = "$1" ]; then ok "$2: $got"; else bad "$2: got $got, want $1"; fi
}
has() { grep -q -- "$2" "$1"; }

# -- creating and replacing node files -----------------------------------
echo '{"slug":"carol","name":"Carol"}' > "$P/carol.json"
check "shell > creates a node, visible at once" has "$P/carol.json" '"Carol"'
expect 3 "shell redirection" bash
echo '{"slug":"dan","name":"Dan"}      ' | tee "$P/dan.json" >/dev/null
check "tee creates a node" has "$P/dan.json" '"Dan"'
expect 4 "tee" tee
# Node files show the stored JSON, newline-terminated: dropping the
# newline is the same node (no version); cutting into the JSON is EINVAL.
check "truncate -s -1 (same JSON): succeeds" truncate -s -1 "$P/dan.json"
check "truncate -s 5: fails (EINVAL)" bash -c "! truncate -s 5 '$P/dan.json' 2>/dev/null"
check "truncate: the node is intact" has "$P/dan.json" '"Dan"'
expect 4 "truncate publishes nothing it need not"
gc load "$S" --data - --mode merge <<<'{"type":"Person","data":{"slug":"dan","name":"Dan","age":1}}' >/dev/null
check "CLI load visible through the notifier" wait_until 10 has "$P/dan.json" '"age":1'
expect 5 "CLI writer"
printf '{"slug":"eve","age":3}\n' > "$T/eve.json"
cp "$T/eve.json" "$P/eve.json"
check "cp creates a node" has "$P/eve.json" '"age":3'
expect 6 "cp" cp
chmod 644 "$T/eve.json"
printf '{"slug":"eve","age":4}\n' > "$T/eve.json"
check "cp -a over a node (same mode; times ignored)" cp -a "$T/eve.json" "$P/eve.json"
check "cp -a: bytes" has "$P/eve.json" '"age":4'
expect 7 "cp -a" cp
if command -v jq >/dev/null; then
	jq '.age = 42' "$P/bob.json" > "$T/bob.json" && cp "$T/bob.json" "$P/bob.json"
	check "jq | cp: pretty-printed JSON replaces the node" has "$P/bob.json" '"age":42'
	expect 8 "jq then cp" cp
else
	echo "SKIP jq: not installed"; gc load "$S" --data - --mode merge <<<'{"type":"Person","data":{"slug":"bob","name":"Bob Stone","age":42}}' >/dev/null
fi
sed -i 's/Stone/Stein/' "$P/bob.json"
check "sed -i (scratch sedXXXXXX renamed onto the node)" has "$P/bob.json" 'Bob Stein'
check "sed -i: no scratch file left" test -z "$(ls "$P" | grep -v -e '\.json$' -e '^[a-z]*$')"
expect 9 "sed -i" sed
python3 - "$P/alice.json" <<'PY'
import os, sys
fd = os.open(sys.argv[1], os.O_RDWR)
os.pwrite(fd, b'{"slug":"alice","name":"Alicx"}', 0)   # same length: in place
os.fsync(fd)
os.close(fd)
PY
check "pwrite + fsync in place" has "$P/alice.json" 'Alicx'
expect 10 "pwrite/fsync" python3
# A handle past GFS_WR_MEM_MAX (1 MiB) spills to STORE/staging; a stat
# while it is open shows the handle's size.
check "a 2 MiB node file written at offsets, stat shows the open handle's size" timeout "$(scaled 60)" python3 - "$P/big.json" <<'PY'
import os, sys
body = b'{"slug":"big","name":"' + b'x' * (2 << 20) + b'"}'
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT)
half = len(body) // 2
os.pwrite(fd, body[half:], half)          # the second half first
os.pwrite(fd, body[:half], 0)
assert os.stat(sys.argv[1]).st_size == len(body), os.stat(sys.argv[1]).st_size
os.close(fd)
assert open(sys.argv[1], 'rb').read().rstrip(b'\n') == body
PY
expect 11 "the spilled file" python3

# -- editors ---------------------------------------------------------------
vim -Nu NONE -i NONE -es -c 'set backupcopy=yes' -c '%s/Alicx/Alice/' -c wq "$P/alice.json"
check "vim backupcopy=yes" has "$P/alice.json" '"Alice"'
expect 12 "vim backupcopy=yes" vim
vim -Nu NONE -i NONE -es -c 'set backupcopy=no backup' -c '%s/Alice/Alicia/' -c wq "$P/alice.json"
check "vim backupcopy=no (rename to alice.json~, write anew)" has "$P/alice.json" '"Alicia"'
check "vim backupcopy=no: the edge stays (an update, no delete)" test -L "$P/alice/out/Knows/bob.json"
check "vim backup alice.json~ is scratch, not a node" test ! -e "$M/versions/13/nodes/Person/alice.json~"
expect 13 "vim backupcopy=no" vim
rm -f "$P/alice.json~"
expect 13 "removing the backup deletes nothing (the name was written again)"
if command -v nano >/dev/null; then
	# nano on a pseudo-terminal (tests/mount/tty_drive.py: each key is sent
	# once the screen shows the prompt it answers): ^\ replace "Alicia"
	# with "Alys", All, ^O write, Enter, ^X exit.
	printf '%s\n' 'expect Alicia' 'send \x1c' 'expect Search' 'send Alicia\r' \
		'expect Replace' 'send Alys\r' 'expect instance' 'send A' \
		'expect Replaced' 'send \x0f' 'expect Write' 'send \r' \
		'expect Wrote' 'send \x18' |
		python3 "$top_srcdir/tests/mount/tty_drive.py" "$(scaled 30)" \
			nano --ignorercfiles "$P/alice.json" >/dev/null
	check "nano saves" has "$P/alice.json" '"Alys"'
	expect 14 "nano" nano
else
	echo "SKIP nano: not installed"
	gc load "$S" --data - --mode merge <<<'{"type":"Person","data":{"slug":"alice","name":"Alys"}}' >/dev/null
fi
if command -v rsync >/dev/null; then
	mkdir -p "$T/sync"
	printf '{"slug":"fay"}\n' > "$T/sync/fay.json"
	printf '{"slug":"gus"}\n' > "$T/sync/gus.json"
	chmod 644 "$T/sync"/*.json
	check "rsync -a into the live view" timeout "$(scaled 60)" rsync -a "$T/sync/" "$P/"
	check "rsync: both nodes" test -e "$P/fay.json" -a -e "$P/gus.json"
	expect 16 "rsync (one version per file)" rsync
	check "rsync again with --size-only: nothing to do" timeout "$(scaled 60)" rsync -a --size-only "$T/sync/" "$P/"
	expect 16 "repeated rsync --size-only writes nothing"
else
	echo "SKIP rsync: not installed"
	printf '%s\n' '{"type":"Person","data":{"slug":"fay"}}' | load "$S" merge
	printf '%s\n' '{"type":"Person","data":{"slug":"gus"}}' | load "$S" merge
fi

# -- delete and rename -------------------------------------------------------
rm "$P/bob.json"
check "rm: the node is gone at once" test ! -e "$P/bob.json"
no_edges_left() { [ -z "$(ls "$M/edges/Knows" "$M/edges/WorksAt" | grep -v ':$' | grep .)" ]; }
check "rm: its edges went with it (other paths: the notifier's lag)" wait_until 10 no_edges_left
expect 17 "rm of a node file" rm
gc load "$S" --data - --mode merge <<<'{"edge":"Knows","from":"carol","to":"alice"}' >/dev/null
check "CLI writer's edge visible through the notifier" wait_until 10 test -L "$P/alice/in/Knows/carol.json"
mv "$P/carol.json" "$P/caroline.json"
check "mv re-keys the node (its @key property follows)" has "$P/caroline.json" '"slug":"caroline"'
check "mv: the old name is gone" test ! -e "$P/carol.json"
check "mv: its edges follow" wait_until 10 test -L "$P/alice/in/Knows/caroline.json"
expect 19 "mv within a type" mv

# -- edges -------------------------------------------------------------------
ln -s ../../../../Company/acme.json "$P/alice/out/WorksAt/acme.json"
check "ln -s (relative) creates an edge" test "$(readlink "$P/alice/out/WorksAt/acme.json")" = ../../../../Company/acme.json
check "ln -s: the edge file exists (another path)" wait_until 10 test -e "$M/edges/WorksAt/alice/acme.json"
expect 20 "ln -s relative" ln
ln -s "$M/nodes/Person/alice.json" "$P/dan/in/Knows/alice.json"
check "ln -s (absolute under the mount) in in/" wait_until 10 test -e "$M/edges/Knows/alice/dan.json"
expect 21 "ln -s absolute" ln
echo '{"since":"2020-01-01"}' | tee "$M/edges/WorksAt/alice/acme.json" >/dev/null
check "edge file written in place" has "$M/edges/WorksAt/alice/acme.json" '"since":"2020-01-01"'
expect 22 "edge file replaced" tee
sed -i 's/2020/2021/' "$M/edges/WorksAt/alice/acme.json"
check "sed -i on an edge file" has "$M/edges/WorksAt/alice/acme.json" '"since":"2021-01-01"'
expect 23 "sed -i of an edge" sed
rm "$P/alice/out/WorksAt/acme.json"
check "rm of a link deletes the edge (another path)" wait_until 10 test ! -e "$M/edges/WorksAt/alice/acme.json"
expect 24 "rm of a link" rm
rm "$M/edges/Knows/alice/dan.json"
check "rm of an edge file (the link: another path)" wait_until 10 test ! -e "$P/dan/in/Knows/alice.json"
expect 25 "rm of an edge file" rm
claim EINVAL "ln -s to a node of the wrong type" 'os.symlink("../../../../Person/dan.json", m + "/nodes/Person/alice/out/WorksAt/dan.json")'
claim EINVAL "ln -s to a missing node (dangling endpoint)" 'os.symlink("../../../../Company/nope.json", m + "/nodes/Person/alice/out/WorksAt/nope.json")'
claim EINVAL "ln -s into versions/" 'os.symlink("../../../../../versions/2/nodes/Company/acme.json", m + "/nodes/Person/alice/out/WorksAt/acme.json")'
claim EINVAL "ln -s under another name than the target's" 'os.symlink("../../../../Company/acme.json", m + "/nodes/Person/alice/out/WorksAt/other.json")'
check "dangling endpoint: the reason in errors.jsonl" has "$M/.graphfs/errors.jsonl" "no node at"
expect 25 "refused links publish nothing"

# -- group commit: 8 writers at once, each close() its own outcome ------------
for i in 0 1 2 3 4 5 6 7; do
	( for j in 0 1 2 3 4 5 6 7 8 9; do
		printf '{"slug":"w%d_%d"}\n' $i $j > "$T/w.$i"
		cp "$T/w.$i" "$P/w${i}_$j.json" || echo "cp w${i}_$j failed"
	  done
	  printf '{"slug":"x"' > "$T/bad.$i"; cp "$T/bad.$i" "$P/bad$i.json" 2>/dev/null && echo "bad$i accepted" ) > "$T/par.$i" &
done
wait
check "8 parallel writers: every good close succeeded, every bad one failed" test -z "$(cat "$T"/par.*)"
check "8 parallel writers: all 80 nodes" test "$(ls "$P" | grep -c '^w[0-7]_[0-9]\.json$')" = 80
check "no bad node" test -z "$(ls "$P" | grep '^bad')"
v=$(gc log "$S" | tail -n 1 | awk '{print $1}')
check "group commit: at most 80 versions for 80 files (got $((v - 25)))" test "$((v - 25))" -le 80
check "fsck after the parallel writers" gc fsck "$S"
base=$v

# A link is named <to>.json, the name of its pair's first edge only: while
# another edge of the pair is left (k2, named w0_1~k2.json, its first k1
# deleted) ln -s of w0_1.json is EEXIST and publishes nothing (it published
# an edge named w0_1~<id>.json and then answered ENOENT; found by the
# model, seed 1402486).
printf '%s\n' '{"edge":"Knows","from":"w0_0","to":"w0_1","data":{"id":"k1"}}' \
	'{"edge":"Knows","from":"w0_0","to":"w0_1","data":{"id":"k2"}}' | load "$S" merge
check "pair: k1 is w0_1.json" wait_until 10 test -L "$P/w0_0/out/Knows/w0_1.json"
rm "$P/w0_0/out/Knows/w0_1.json"
check "pair: k1 removed, k2 left" wait_until 10 test -L "$P/w0_0/out/Knows/w0_1~k2.json"
v=$(gc log "$S" | tail -n 1 | awk '{print $1}')
claim EEXIST "ln -s into a pair with an edge left" 'os.symlink("../../../../Person/w0_1.json", m + "/nodes/Person/w0_0/out/Knows/w0_1.json")'
check "ln -s refused: errors.jsonl says why" has "$M/.graphfs/errors.jsonl" "another edge of the pair is named"
expect "$v" "the refused ln -s publishes nothing"
base=$v

# -- ingest/: a JSONL file = one version ---------------------------------------
printf '%s\n' '{"type":"Person","data":{"slug":"in1"}}' '{"type":"Person","data":{"slug":"in2"}}' > "$T/delta.jsonl"
check "cp into ingest/ (merge)" cp "$T/delta.jsonl" "$M/ingest/"
check "ingest: delta.jsonl.ok holds the version" test "$(cat "$M/ingest/delta.jsonl.ok")" = $((base + 1))
check "ingest: the input vanished" test ! -e "$M/ingest/delta.jsonl"
check "ingest: both nodes, one version" test -e "$P/in1.json" -a -e "$P/in2.json"
expect $((base + 1)) "ingest (merge)"
printf '{"type":"Person","data":{"slug":"in3","age":"x"}}\n' > "$T/bad.jsonl"
check "cp of a bad JSONL into ingest/append/ fails" bash -c "! cp '$T/bad.jsonl' '$M/ingest/append/' 2>/dev/null"
check "ingest: bad.jsonl.error names line, type, key and property" has "$M/ingest/append/bad.jsonl.error" "line 1: Person 'in3': property 'age'"
check "ingest: result files are removable" rm "$M/ingest/append/bad.jsonl.error" "$M/ingest/delta.jsonl.ok"
check "ingest: listing empty again" test -z "$(ls "$M/ingest/append")"
expect $((base + 1)) "refused ingest publishes nothing"
base=$((base + 1))

# -- errors: each with its errno; nothing committed ---------------------------
printf '{"slug":' > "$T/bad.json"
check "cp of bad JSON fails" bash -c "! cp '$T/bad.json' '$P/hal.json' 2>/dev/null"
check "bad JSON: the reason in .graphfs/errors.jsonl" has "$M/.graphfs/errors.jsonl" '"path":"nodes/Person/hal.json"'
check "bad JSON: nothing left under the name" test ! -e "$P/hal.json"
claim EINVAL "close of bad JSON" 'fd = os.open(m + "/nodes/Person/hal.json", os.O_WRONLY | os.O_CREAT); os.write(fd, b"{"); os.close(fd)'
claim EINVAL "key disagreement" 'fd = os.open(m + "/nodes/Person/alice.json", os.O_WRONLY | os.O_TRUNC); os.write(fd, b"{\"slug\":\"zed\"}"); os.close(fd)'
check "key disagreement: errors.jsonl names both keys" has "$M/.graphfs/errors.jsonl" "zed"
claim EINVAL "non-canonical name %61lice.json" 'os.open(m + "/nodes/Person/%61lice.json", os.O_WRONLY | os.O_CREAT)'
claim EEXIST "mv onto an existing node" 'os.rename(m + "/nodes/Person/dan.json", m + "/nodes/Person/eve.json")'
claim EXDEV "mv across types" 'os.rename(m + "/nodes/Person/dan.json", m + "/nodes/Company/dan.json")'
claim EROFS "write under versions/" 'os.open(m + "/versions/2/nodes/Person/alice.json", os.O_WRONLY)'
claim EPERM "mkdir" 'os.mkdir(m + "/nodes/Person/x")'
claim EPERM "rmdir of a node's directory" 'os.rmdir(m + "/nodes/Person/alice")'
claim EINVAL "truncate to 0 (an empty file is no node)" 'os.truncate(m + "/nodes/Person/alice.json", 0)'
claim EPERM "chmod to another mode" 'os.chmod(m + "/nodes/Person/alice.json", 0o600)'
claim OK "utime (ignored)" 'os.utime(m + "/nodes/Person/alice.json", (1, 1))'
check "alice unchanged by the failures" has "$P/alice.json" '"Alys"'
expect "$base" "failed writes publish nothing"

# -- permissions and -o ro ----------------------------------------------------
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null; then
	M2=$T/m2
	mount_gfs "$S" "$M2" -o allow_other || bad "mount -o allow_other"
	nob() { timeout "$(scaled 60)" setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }
	check "another uid reads" nob cat "$M2/nodes/Person/alice.json"
	check "another uid cannot write: EACCES" bash -c "nob() { setpriv --reuid=65534 --regid=65534 --clear-groups \"\$@\"; }; nob sh -c 'echo {} > $M2/nodes/Person/alice.json' 2>&1 | grep -q 'Permission denied'"
	umount_gfs "$M2"
else
	echo "SKIP EACCES as another uid: needs root and setpriv"
fi
M3=$T/m3
mount_gfs "$S" "$M3" -o ro || bad "mount -o ro"
claim EROFS "-o ro: create" 'os.open(m + "/../m3/nodes/Person/new.json", os.O_WRONLY | os.O_CREAT)'
claim EROFS "-o ro: unlink" 'os.unlink(m + "/../m3/nodes/Person/alice.json")'
umount_gfs "$M3"
expect "$base" "after all the refusals"

# -- scratch files vanish at unmount; pending deletions happen then -----------
echo scratch > "$P/4913"
mv "$P/dan.json" "$P/dan.json~"
check "pending deletion: the name looks absent" test ! -e "$P/dan.json"
check "pending deletion: not listed either" bash -c "! ls '$P' | grep -qx dan.json"
check "scratch listed" bash -c "ls '$P' | grep -qx 4913"
for i in $(seq 1 300); do : > "$P/scratch-with-a-longer-name-$i"; done
check "300 scratch names listed once each across READDIR batches" test "$(ls "$P" | grep -c '^scratch-with-a-longer-name-')" = 300 -a -z "$(ls "$P" | sort | uniq -d)"
expect "$base" "a rename to a scratch name publishes nothing yet"
umount_gfs "$M"
# The daemon deletes it as it ends, after the kernel let go of the mount.
newest() { gc log "$S" | tail -n 1 | awk '{print $1}'; }
check "the daemon's exit deletes the node left pending" wait_until 10 out_is $((base + 1)) newest
expect $((base + 1)) "unmount deleted the node left pending" graphfs
mount_gfs "$S" "$M" || bad remount
check "scratch gone after remount" test ! -e "$P/4913"
check "dan gone" test ! -e "$P/dan.json"

# -- a fresh store has no STORE/staging (the first load makes it): an ingest
# file and a write past the 1 MiB in-memory buffer spill there; both failed
# with ENOENT at close (found by tests/model/model.py) ----------------------
S5=$T/fresh M5=$T/m5
new_store "$S5"
check "fresh store: no staging/ yet" test ! -e "$S5/staging"
mount_gfs "$S5" "$M5" || bad "mount the fresh store"
printf '{"type":"Person","data":{"slug":"first"}}\n' >"$T/first.jsonl"
check "fresh store: cp into ingest/append/" cp "$T/first.jsonl" "$M5/ingest/append/"
check "fresh store: the ingested node" test -e "$M5/nodes/Person/first.json"
rm -rf "$S5/staging"
python3 -c 'import json; print(json.dumps({"name": "x" * (1 << 21)}))' >"$T/big.json"
check "no staging/: a 2 MiB node file spills and commits" cp "$T/big.json" "$M5/nodes/Person/big.json"
check "the big node reads back" python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); sys.exit(d != {"slug": "big", "name": "x" * (1 << 21)})' "$M5/nodes/Person/big.json"
umount_gfs "$M5"
finish

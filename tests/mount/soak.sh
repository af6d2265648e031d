#!/bin/bash
# soak.sh - issue 12, requirement 5: a bounded soak of three mounts with
# readers and writers (docs/testing.md "Soak").
#
# Three read-write mounts of one store, each daemon in the foreground (its
# pid is ours, its stderr kept).  At once, for a fixed number of operations:
#  - writer A: `graphctl load` of merge batches (new people, edges between
#    them, updates of 10 shared "hot" people);
#  - writer B: the same kind of batches copied into mount 2's ingest/ (a
#    load through the mount; acknowledged when cp's close succeeds);
#  - on every mount, readers: `cat` of the whole Person and Knows tables,
#    `find` over nodes/ and edges/, `tar` of a version directory twice,
#    symlink walks (nodes/Person/<k>/out/Knows/* followed).
# Afterwards:
#  - every whole-table read parsed (one JSON object a line, of its type)
#    and equals `graphctl export --version V --type T` for some published V;
#  - each tar of versions/N equals the other tar of it (same reader) and
#    every other tar of N (other mounts, other times), and a final one;
#  - every symlink walked resolved inside the mount to a node file that
#    parses;
#  - every acknowledged write is in the head: each batch's new people with
#    its values;
#  - fsck clean, no sidecar;
#  - no daemon leaked: file descriptors other than table-version files (a
#    bounded cache) back to the count after mounting, table-version fds
#    only on files that exist; `.graphfs/stats` inodes back to the baseline
#    after `echo 2 > /proc/sys/vm/drop_caches` (root only); after
#    `fusermount3 -u`, each daemon exits 0 without a LeakSanitizer or
#    AddressSanitizer report (ASan builds: detect_leaks=1).
# Dropping the caches is global to the machine: kernel_lock (tests/lib.sh)
# keeps the tests that count kernel requests from running meanwhile.
# GRAPHFS_SOAK_OPS (default 12; `make stress`: 120) is the number of
# batches per writer and of rounds per reader.  Ordering: only by waiting
# for processes; every wait is bounded.
. "$top_srcdir/tests/mount/lib_mount.sh"
kernel_lock || { echo "FAIL - kernel_lock"; exit 1; }
OPS=${GRAPHFS_SOAK_OPS:-12}
[ -n "${GRAPHFS_STRESS:-}" ] && OPS=${GRAPHFS_SOAK_OPS:-120}
S=$T/store
new_store "$S"
awk 'BEGIN {
	for (i = 0; i < 10; i++) printf "{\"type\":\"Person\",\"data\":{\"slug\":\"hot%d\",\"age\":0}}\n", i
	for (i = 0; i < 40; i++) printf "{\"type\":\"Person\",\"data\":{\"slug\":\"seed%d\",\"name\":\"s\"}}\n", i
	for (i = 0; i < 40; i++) printf "{\"edge\":\"Knows\",\"from\":\"seed%d\",\"to\":\"hot%d\"}\n", i, i % 10
}' | load "$S" merge || { bad "seed load"; finish; exit; }

PIDS=()      # daemon pids, by mount number - 1
# mount_fg N: graphfs -f S T/mN in the background; waits (bounded) for it.
mount_fg() {
	local m=$T/m$1
	mkdir -p "$m"
	MNTS+=("$m")
	"$GRAPHFS" -f "$S" "$m" 2>"$m.err" &
	PIDS+=("$!")
	wait_until 30 mountpoint -q "$m"
}
for n in 1 2 3; do mount_fg "$n" || { bad "mount $n: $(cat "$T/m$n.err")"; finish; exit; }; done
ok "3 mounts up (daemons ${PIDS[*]})"
# A branch created while the mounts run: each notifier's branch-change
# pass (whose sanitizer reports, if any, the exit check below catches).
gc branch create "$S" soak >/dev/null || bad "branch create"
for n in 1 2 3; do
	check "m$n lists the new branch" wait_until 30 test -d "$T/m$n/branches/soak"
done

# fds PID: the daemon's descriptors, table-version files apart:
# "OTHER TABLES" where TABLES counts fds on STORE/tables/*/*.
fds() {
	local all tab
	all=$(find "/proc/$1/fd" -mindepth 1 -maxdepth 1 | wc -l)
	tab=$(find "/proc/$1/fd" -mindepth 1 -maxdepth 1 -lname "$S/tables/*" | wc -l)
	echo "$((all - tab)) $tab"
}
inodes() { timeout 10 jq .inodes "$1/.graphfs/stats"; }
declare -A FD0 INO0
for n in 1 2 3; do
	INO0[$n]=$(inodes "$T/m$n")
	FD0[$n]=$(fds "${PIDS[$((n - 1))]}")
done

# ---- writers ----------------------------------------------------------------
# batch W I: writer W's batch I: 3 new people, 2 edges, 2 hot updates.
batch() {
	awk -v w="$1" -v i="$2" 'BEGIN {
		for (j = 0; j < 3; j++)
			printf "{\"type\":\"Person\",\"data\":{\"slug\":\"%s-%d-%d\",\"name\":\"%s %d\",\"age\":%d}}\n", w, i, j, w, i, j
		printf "{\"edge\":\"Knows\",\"from\":\"%s-%d-0\",\"to\":\"%s-%d-1\"}\n", w, i, w, i
		printf "{\"edge\":\"Knows\",\"from\":\"%s-%d-2\",\"to\":\"hot%d\"}\n", w, i, i % 10
		for (j = 0; j < 2; j++)
			printf "{\"type\":\"Person\",\"data\":{\"slug\":\"hot%d\",\"age\":%d}}\n", (i + j) % 10, i
	}'
}
writer_a() {
	local i
	for i in $(seq 1 "$OPS"); do
		batch wa "$i" >"$T/wa.$i.jsonl"
		if gc load "$S" --data "$T/wa.$i.jsonl" >/dev/null 2>>"$T/wa.err"; then echo "wa $i"; fi
	done >"$T/acked.wa"
}
writer_b() {
	local i
	for i in $(seq 1 "$OPS"); do
		batch wb "$i" >"$T/wb.$i.jsonl"
		if timeout "$(scaled 60)" cp "$T/wb.$i.jsonl" "$T/m2/ingest/wb$i.jsonl" 2>>"$T/wb.err"; then
			echo "wb $i"
			timeout 10 rm -f "$T/m2/ingest/wb$i.jsonl.ok"
		fi
	done >"$T/acked.wb"
}

# ---- readers ----------------------------------------------------------------
# reader_cat N: whole-table reads, each kept once by its hash.
reader_cat() {
	local m=$T/m$1 i t h
	mkdir -p "$T/reads"
	for i in $(seq 1 "$OPS"); do
		for t in nodes/Person edges/Knows; do
			timeout 60 cat "$m/$t.jsonl" >"$T/reads/tmp.$1" || { echo "cat $t failed" >>"$T/errors"; continue; }
			h=$(sha256sum <"$T/reads/tmp.$1" | cut -c1-64)
			[ -e "$T/reads/${t#*/}.$h" ] || mv "$T/reads/tmp.$1" "$T/reads/${t#*/}.$h"
		done
	done
	return 0
}
reader_find() {
	local m=$T/m$1 i
	for i in $(seq 1 "$OPS"); do
		timeout 60 find "$m/nodes" "$m/edges" >/dev/null || echo "find on m$1 failed (round $i)" >>"$T/errors"
	done
}
# reader_tar N: a version directory (chosen by round) tarred twice.
reader_tar() {
	local m=$T/m$1 i v a b
	for i in $(seq 1 "$OPS"); do
		v=$(timeout 10 cat "$m/.graphfs/head") || continue
		v=$(( (i * 7 + $1) % v + 1 ))
		a=$(timeout 60 tar -C "$m/versions/$v" -cf - . | sha256sum | cut -c1-64)
		b=$(timeout 60 tar -C "$m/versions/$v" -cf - . | sha256sum | cut -c1-64)
		echo "$v $a m$1"
		[ "$a" = "$b" ] || echo "tar of versions/$v on m$1 differs between two reads" >>"$T/errors"
	done >>"$T/tars"
	return 0
}
reader_links() {
	local m=$T/m$1 i k
	for i in $(seq 1 "$OPS"); do
		k=hot$((i % 10))
		python3 - "$m" "$k" >>"$T/errors" <<'PY'
import json, os, sys
m, k = sys.argv[1], sys.argv[2]
real = os.path.realpath(m)
for side in ("out", "in"):
    d = "%s/nodes/Person/%s/%s/Knows" % (m, k, side)
    try:
        names = os.listdir(d)
    except FileNotFoundError:
        continue
    for n in names:
        p = os.path.join(d, n)
        try:
            r = os.path.realpath(p)
            row = json.load(open(p))
        except FileNotFoundError:
            continue  # the edge went away between the listing and the read
        if not r.startswith(real + "/nodes/Person/") or "slug" not in row:
            print("link %s -> %s: %r" % (p, r, row))
PY
	done
}

: >"$T/errors" >"$T/tars"
SECONDS=0
WP=()
writer_a & WP+=("$!")
writer_b & WP+=("$!")
RP=()
for n in 1 2 3; do
	reader_cat "$n" & RP+=("$!")
	reader_find "$n" & RP+=("$!")
	reader_tar "$n" & RP+=("$!")
	reader_links "$n" & RP+=("$!")
done
for p in "${WP[@]}" "${RP[@]}"; do wait "$p" || bad "a soak process (pid $p) failed"; done
soak_secs=$SECONDS
nacked=$(cat "$T/acked.wa" "$T/acked.wb" | wc -l)
[ "$nacked" = $((2 * OPS)) ] && ok "both writers: all $((2 * OPS)) batches acknowledged" ||
	bad "$nacked of $((2 * OPS)) batches acknowledged: $(head -c 600 "$T/wa.err" "$T/wb.err")"
[ -s "$T/errors" ] && bad "readers: $(head -5 "$T/errors")" || ok "readers: no failed read, find or link"
HEAD=$(gc snapshot "$S" --json | jq .version)
nreads=$(find "$T/reads" -name '*.*' ! -name 'tmp.*' | wc -l)
SUMMARY="$OPS operations per process, 2 writers, 12 readers on 3 mounts, $soak_secs s; head $HEAD, $nreads distinct table contents read, $(wc -l <"$T/tars") tar pairs"

# ---- every whole-table read is some published version's export -----------
mkdir -p "$T/exp"
for v in $(seq 1 "$HEAD"); do
	for t in Person Knows; do
		gc export "$S" --version "$v" --type "$t" >"$T/exp/x"
		h=$(sha256sum <"$T/exp/x" | cut -c1-64)
		echo "$t $h" >>"$T/exp/hashes"
	done
done
check "every whole-table read parses and equals some version's export" python3 - "$T/reads" "$T/exp/hashes" <<'PY'
import json, os, sys
d, hashes = sys.argv[1], set(l.strip() for l in open(sys.argv[2]))
bad = []
for f in os.listdir(d):
    if f.startswith("tmp."):
        continue
    kind, h = f.split(".", 1)
    want = {"Person": ("type", "Person"), "Knows": ("edge", "Knows")}[kind]
    for n, line in enumerate(open(os.path.join(d, f), "rb"), 1):
        try:
            o = json.loads(line)
            assert o[want[0]] == want[1]
        except Exception as e:
            bad.append("%s line %d: %r" % (f, n, line[:80]))
            break
    if "%s %s" % (kind, h) not in hashes:
        bad.append("%s: no published version exports these bytes" % f)
for b in bad[:10]:
    print(b, file=sys.stderr)
sys.exit(1 if bad else 0)
PY

# ---- version directories: one archive per version, everywhere, every time --
while read -r v h m; do
	echo "$v $h"
done <"$T/tars" | sort -u >"$T/tars.u"
check "each version directory tarred on any mount at any time gives one archive ($(wc -l <"$T/tars.u") versions)" \
	test "$(cut -d' ' -f1 "$T/tars.u" | uniq -d | wc -l)" = 0
while read -r v h; do
	f=$(timeout 60 tar -C "$T/m1/versions/$v" -cf - . | sha256sum | cut -c1-64)
	[ "$f" = "$h" ] || bad "versions/$v: a final tar on m1 differs from the soak's"
done <"$T/tars.u"

# ---- every acknowledged write is present ----------------------------------
gc export "$S" --type Person >"$T/final.Person"
check "every acknowledged batch's people are in the head with their values" python3 - "$T/final.Person" "$T/acked.wa" "$T/acked.wb" <<'PY'
import json, sys
rows = {o["data"]["slug"]: o["data"] for o in map(json.loads, open(sys.argv[1]))}
missing = []
for f in sys.argv[2:]:
    for line in open(f):
        w, i = line.split()
        for j in range(3):
            k = "%s-%s-%d" % (w, i, j)
            if rows.get(k, {}).get("name") != "%s %s" % (w, i) or rows[k].get("age") != j:
                missing.append(k)
print("missing or wrong: %s" % missing[:10], file=sys.stderr) if missing else None
sys.exit(1 if missing else 0)
PY
check "fsck clean" gc fsck "$S"
check "no sidecar left" test "$(gc recover "$S" --list --json | jq '.pending | length')" = 0

# ---- no daemon leaked fds or inodes ---------------------------------------------
for n in 1 2 3; do
	pid=${PIDS[$((n - 1))]}
	read -r o0 t0 <<<"${FD0[$n]}"
	read -r o1 t1 <<<"$(fds "$pid")"
	gone=$(find "/proc/$pid/fd" -mindepth 1 -maxdepth 1 -printf '%l\n' | grep -c ' (deleted)$' || true)
	[ "$o1" = "$o0" ] && ok "m$n: descriptors other than table versions: $o0 after mounting, $o1 after the soak" ||
		bad "m$n: descriptors other than table versions: $o0 after mounting, $o1 after the soak: $(find "/proc/$pid/fd" -mindepth 1 -maxdepth 1 -printf '%l\n' | grep -v "^$S/tables/" | sort | uniq -c | tr '\n' ';')"
	[ "$gone" = 0 ] && ok "m$n: $t1 table-version descriptors (cache; $t0 after mounting), none on a deleted file" ||
		bad "m$n: $gone descriptors on deleted files"
done
if [ "$(id -u)" = 0 ] && [ -w /proc/sys/vm/drop_caches ]; then
	sync
	echo 2 >/proc/sys/vm/drop_caches
	for n in 1 2 3; do
		if wait_until 30 out_le "${INO0[$n]}" inodes "$T/m$n"; then
			ok "m$n: inodes back to ${INO0[$n]} after drop_caches ($(inodes "$T/m$n") now)"
		else
			bad "m$n: $(inodes "$T/m$n") inodes after drop_caches, ${INO0[$n]} after mounting"
		fi
	done
else
	echo "# not root: the drop_caches check of inodes is skipped"
fi

# ---- every daemon exits cleanly, without a sanitizer report -------------------
for n in 1 2 3; do
	m=$T/m$n pid=${PIDS[$((n - 1))]}
	timeout 20 fusermount3 -u "$m" || bad "m$n: fusermount3 -u"
	rc=0
	timeout "$(scaled 60)" tail --pid="$pid" -f /dev/null || bad "m$n: daemon still running"
	wait "$pid" || rc=$?
	if [ "$rc" = 0 ] && ! grep -qE 'LeakSanitizer|AddressSanitizer|runtime error' "$m.err"; then
		ok "m$n: daemon exited 0, no sanitizer report"
	else
		bad "m$n: daemon status $rc: $(grep -A12 -E 'Sanitizer|runtime error' "$m.err" | head -30)"
	fi
done
echo "# soak: $SUMMARY; failures: $fails"
finish

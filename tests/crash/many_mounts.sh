#!/bin/bash
# many_mounts.sh - issue 12, requirement 4: many mounts over many dead
# writers (DESIGN.md §4, docs/recovery.md "Converge, never fail").
#
# A store with 130 tables (80 node types A*, 10 node types B*, 40 edge types
# E* between B types) gets 100 sidecars of writers killed at failpoints:
#  - 40 loads of one A table, 20 loads of two A tables, 40 loads of one edge
#    table each (which read two B tables under LOCK_SH, so many sidecars
#    name the same B tables and none conflicts with another);
#  - killed at commit/after_sidecar (nothing committed: discard),
#    commit/after_table (unconfirmed: roll back, by one or both tables),
#    commit/after_confirm and commit/before_publish (confirmed: roll forward).
# Then 8 read-write mounts start at once over the store.  Checked:
#  - all 8 come up (graphfs exits 0, the mount answers);
#  - each sidecar is resolved exactly once: one audit record per operation,
#    with the decision its death point implies, and one resolution note
#    ("operation ID (load by ...): roll-forward|roll-back|discard") in all
#    the mounts' stderr together; no sidecar left;
#  - every live view converges: the same HEAD, manifest.json and table
#    bytes in all 8, equal to `graphctl export` of the store and of a
#    reference store that received only the confirmed operations' rows;
#  - fsck clean, and the graph advanced once per resolved operation that
#    published (roll forward or roll back), never for a discard.
# It prints the time to converge next to that of one mount over one sidecar
# (a benchmark line, not an assertion).  No sleep orders anything: the
# writers die at failpoints before the mounts start, and every wait is a
# bounded, scaled poll.
. "$top_srcdir/tests/crash/crashlib.sh"

: "${GRAPHFS:?}"
if ! command -v fusermount3 >/dev/null || ! [ -r /dev/fuse ] || ! [ -w /dev/fuse ]; then
	echo "SKIP: no usable FUSE (fusermount3, /dev/fuse)"
	exit 77
fi
NMOUNTS=${GRAPHFS_MANY_MOUNTS:-8}
MNTS=()
MOUNT_PIDS=()
mount_cleanup() {
	local p m
	for p in "${MOUNT_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
	for m in "${MNTS[@]}"; do
		timeout 20 fusermount3 -u "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
	done
}
trap 'mount_cleanup; cleanup' EXIT

# mount_bg STORE MNT: graphfs STORE MNT in the background (stderr to
# MNT.err); the parent returns when the daemon child mounted or failed.
mount_bg() {
	mkdir -p "$2"
	MNTS+=("$2")
	timeout -k 5 "$(scaled 300)" "$GRAPHFS" "$1" "$2" 2>"$2.err" &
	MOUNT_PIDS+=("$!")
}
serves() { mountpoint -q "$1" && timeout 10 ls "$1" >/dev/null; }
now() { echo "$EPOCHREALTIME"; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
# wait_for SECS CMD...: polls CMD every 10 ms (SECS scaled).
wait_for() {
	local left=$(( $(scaled "$1") * 100 ))
	shift
	while [ "$left" -gt 0 ]; do
		"$@" 2>/dev/null && return 0
		sleep 0.01
		left=$((left - 1))
	done
	return 1
}
# settled_view MNT HEAD: the mount's live view is at HEAD and lists no sidecar.
settled_view() {
	[ "$(timeout 10 cat "$1/.graphfs/head")" = "$2" ] && [ ! -s "$1/.graphfs/sidecars.jsonl" ]
}
all_settled() { # all_settled HEAD MNT...
	local h=$1 m
	shift
	for m in "$@"; do settled_view "$m" "$h" || return 1; done
}

# ---- the schema and the store ------------------------------------------------
MANY=$T/many.pg
{
	for i in $(seq 0 79); do printf 'node A%02d { k: String @key  v: String? }\n' "$i"; done
	for i in $(seq 0 9); do printf 'node B%d { k: String @key }\n' "$i"; done
	for i in $(seq 0 39); do printf 'edge E%02d: B%d -> B%d { w: String? }\n' "$i" $((i % 10)) $(((i * 3 + 1) % 10)); done
} >"$MANY"
TYPES=$(awk '{ sub(":", "", $2); print $2 }' "$MANY")
S=$T/store
gctl init "$S" --schema "$MANY" -q
awk 'BEGIN {
	for (i = 0; i < 10; i++) for (j = 0; j < 5; j++)
		printf "{\"type\":\"B%d\",\"data\":{\"k\":\"b%d\"}}\n", i, j
	for (i = 0; i < 80; i++)
		printf "{\"type\":\"A%02d\",\"data\":{\"k\":\"a0\",\"v\":\"seed\"}}\n", i
}' >"$T/seed.jsonl"
gctl load "$S" --data "$T/seed.jsonl" -q
cp -a "$S" "$T/ref"
cp -a "$S" "$T/one"
v0=$(head_version "$S")

# op_data I: the rows of operation I (tables by I, see the header).
op_data() {
	local i=$1 t
	if [ "$i" -lt 40 ]; then
		printf '{"type":"A%02d","data":{"k":"x%d","v":"op %d"}}\n' "$i" "$i" "$i"
		printf '{"type":"A%02d","data":{"k":"a0","v":"op %d"}}\n' "$i" "$i"
	elif [ "$i" -lt 60 ]; then
		t=$((40 + 2 * (i - 40)))
		printf '{"type":"A%02d","data":{"k":"x%d","v":"op %d"}}\n' "$t" "$i" "$i"
		printf '{"type":"A%02d","data":{"k":"x%d","v":"op %d"}}\n' $((t + 1)) "$i" "$i"
	else
		t=$((i - 60))
		printf '{"edge":"E%02d","from":"b%d","to":"b%d","data":{"id":"e%d","w":"op %d"}}\n' \
			"$t" $((i % 5)) $(((i + 2) % 5)) "$i" "$i"
		printf '{"edge":"E%02d","from":"b%d","to":"b%d","data":{"id":"f%d"}}\n' \
			"$t" $(((i + 1) % 5)) $((i % 5)) "$i"
	fi
}
# death I: where operation I dies, and the decision that implies.
DEATHS=(commit/after_sidecar=exit commit/after_table=exit commit/after_confirm=exit commit/before_publish=exit commit/after_table=exit@2)
DECISION=(discard roll-back roll-forward roll-forward roll-back)
kind_of() { # two-table loads walk all 5; single-table ones the first 4
	if [ "$1" -ge 40 ] && [ "$1" -lt 60 ]; then echo $(($1 % 5)); else echo $(($1 % 4)); fi
}

: >"$T/fwd.jsonl" >"$T/ops"
nfwd=0 nback=0 ndisc=0
for i in $(seq 0 99); do
	op_data "$i" >"$T/op$i.jsonl"
	k=$(kind_of "$i")
	rc=0
	GRAPHFS_FAILPOINTS=${DEATHS[$k]} gctl load "$S" --data "$T/op$i.jsonl" -q 2>"$T/op$i.err" || rc=$?
	[ "$rc" = 86 ] || { bad "writer $i did not die at ${DEATHS[$k]} (status $rc: $(cat "$T/op$i.err"))"; continue; }
	case ${DECISION[$k]} in
	roll-forward) cat "$T/op$i.jsonl" >>"$T/fwd.jsonl"; nfwd=$((nfwd + 1)) ;;
	roll-back) nback=$((nback + 1)) ;;
	discard) ndisc=$((ndisc + 1)) ;;
	esac
	echo "$i ${DECISION[$k]}" >>"$T/ops"
done
gctl recover "$S" --list --json >"$T/pending.json"
python3 - "$T/pending.json" "$T/ops" >"$T/opids" <<'PY' || bad "the sidecars do not match the dead writers"
import json, sys
pend = json.load(open(sys.argv[1]))["pending"]
ops = [l.split() for l in open(sys.argv[2])]
if len(pend) != len(ops):
    sys.exit("%d sidecars for %d dead writers" % (len(pend), len(ops)))
# Sidecars are listed oldest first, the writers died in order.
for s, (i, dec) in zip(pend, ops):
    want_conf = dec == "roll-forward"
    if s["confirmed"] != want_conf:
        sys.exit("op %s: confirmed %s, want %s" % (i, s["confirmed"], want_conf))
    print(s["op_id"], dec)
PY
npend=$(wc -l <"$T/opids")
[ "$npend" = 100 ] && ok "100 sidecars of dead writers ($nfwd confirmed, $nback to roll back, $ndisc to discard) over $(python3 -c 'import json,sys; print(len({t["table"] for s in json.load(open(sys.argv[1]))["pending"] for t in s["tables"]}))' "$T/pending.json") tables" ||
	bad "$npend sidecars, want 100"
gctl load "$T/ref" --data "$T/fwd.jsonl" -q

# ---- the baseline: one mount over one sidecar -------------------------------------
GRAPHFS_FAILPOINTS=commit/after_confirm=exit gctl load "$T/one" --data "$T/op2.jsonl" -q 2>/dev/null && bad "baseline writer survived"
[ "$(pending "$T/one")" = 1 ] || bad "baseline: no sidecar"
t0=$(now)
mount_bg "$T/one" "$T/one.m"
wait "${MOUNT_PIDS[-1]}" && serves "$T/one.m" || bad "baseline mount: $(cat "$T/one.m.err")"
t1=$(now)
wait_for 60 all_settled $((v0 + 1)) "$T/one.m" || bad "baseline: not settled"
t2=$(now)
one_up=$(elapsed "$t0" "$t1") one_conv=$(elapsed "$t0" "$t2")
timeout 20 fusermount3 -u "$T/one.m" || bad "baseline: cannot unmount"

# ---- NMOUNTS mounts at once -----------------------------------------------------
t0=$(now)
for n in $(seq 1 "$NMOUNTS"); do mount_bg "$S" "$T/m$n"; done
up=0
for n in $(seq 1 "$NMOUNTS"); do
	rc=0
	wait "${MOUNT_PIDS[$n]}" || rc=$?
	if [ "$rc" = 0 ] && serves "$T/m$n"; then up=$((up + 1)); else bad "mount $n: graphfs status $rc ($(cat "$T/m$n.err"))"; fi
done
t1=$(now)
[ "$up" = "$NMOUNTS" ] && ok "all $NMOUNTS mounts came up read-write"
want=$((v0 + nfwd + nback))
VIEWS=()
for n in $(seq 1 "$NMOUNTS"); do VIEWS+=("$T/m$n"); done
wait_for 120 all_settled "$want" "${VIEWS[@]}" &&
	ok "every live view reached graph version $want (v0 $v0 + $nfwd roll forward + $nback roll back) with no sidecar listed" ||
	bad "not every view settled at $want: heads $(for m in "${VIEWS[@]}"; do cat "$m/.graphfs/head"; done | tr '\n' ' ')"
t2=$(now)
echo "# converge: $NMOUNTS mounts over $npend sidecars: all up in $(elapsed "$t0" "$t1") s, converged in $(elapsed "$t0" "$t2") s; 1 mount over 1 sidecar: up in $one_up s, converged in $one_conv s"

# Same HEAD, same bytes.
view_bytes() { # view_bytes MNT: every table file of the live view, in schema order
	local ty d
	for ty in $TYPES; do
		d=nodes
		case $ty in E*) d=edges ;; esac
		cat "$1/$d/$ty.jsonl"
	done
}
gctl export "$S" >"$T/store.export"
gctl export "$T/ref" >"$T/ref.export"
cmp -s "$T/store.export" "$T/ref.export" && ok "the store's export equals the reference (only confirmed operations' rows)" ||
	bad "the store's export differs from the reference: $(diff "$T/store.export" "$T/ref.export" | head -5)"
same=0
for m in "${VIEWS[@]}"; do
	if [ "$(readlink "$m/HEAD")" = "versions/$want" ] &&
		timeout 60 cmp -s "$m/manifest.json" "${VIEWS[0]}/manifest.json" &&
		view_bytes "$m" | cmp -s - "$T/store.export"; then
		same=$((same + 1))
	else
		bad "$m: HEAD $(readlink "$m/HEAD") or its bytes differ"
	fi
done
[ "$same" = "$NMOUNTS" ] && ok "all $NMOUNTS views: HEAD -> versions/$want, the same manifest.json and table bytes as the export"

# Exactly once.
gctl recover "$S" --list --json >"$T/after.json"
cat "$T"/m*.err >"$T/notes"
python3 - "$T/after.json" "$T/opids" "$T/notes" <<'PY' && ok "each sidecar resolved exactly once: one audit record with the expected decision, one mount's note" || bad "resolution not exactly once"
import collections, json, re, sys
rec = json.load(open(sys.argv[1]))
want = dict(l.split() for l in open(sys.argv[2]))
notes = open(sys.argv[3]).read()
bad = []
if rec["pending"]:
    bad.append("%d sidecars left" % len(rec["pending"]))
by_op = collections.defaultdict(list)
for a in rec["audit"]:
    by_op[a["op_id"]].append(a)
for op, dec in want.items():
    got = by_op.get(op, [])
    if len(got) != 1:
        bad.append("%s: %d audit records" % (op, len(got)))
    elif got[0]["decision"] != dec:
        bad.append("%s: %s, want %s" % (op, got[0]["decision"], dec))
    elif "graphfs mount" not in got[0]["resolver"]:
        bad.append("%s: resolved by %s" % (op, got[0]["resolver"]))
    n = len(re.findall(r"operation %s \(" % op, notes))
    if n != 1:
        bad.append("%s: named in %d mount notes" % (op, n))
extra = set(by_op) - set(want)
if extra:
    bad.append("audit records of unknown operations: %s" % sorted(extra))
who = collections.Counter(re.sub(r".*graphfs mount .*/", "", a["resolver"]).rstrip(")") for a in rec["audit"])
print("# resolved per mount: " + ", ".join("%s %d" % kv for kv in sorted(who.items())))
for b in bad[:20]:
    print("# " + b)
sys.exit(1 if bad else 0)
PY
clean "$S" && ok "fsck clean" || bad "fsck not clean"
[ "$(head_version "$S")" = "$want" ] && ok "the graph advanced once per published resolution" ||
	bad "head $(head_version "$S"), want $want"
echo "# many mounts: $NMOUNTS mounts, $npend sidecars, failures: $fails"
finish

#!/bin/bash
# security.sh - issue 12, requirement 7: the security of the mount
# (docs/mount.md "Access and permissions", docs/format.md "Permissions").
# /dev/fuse is root-only here: the test mounts as root and acts as other
# users with setpriv (root only, else skipped).
#  1. Access: without allow_other another user cannot stat, list or read
#     the mount (EACCES); with -o allow_other,default_permissions (and with
#     -o allow_other alone: graphfs always adds default_permissions) the
#     mode bits decide: on a store owned by `nobody`, nobody writes a node
#     through the mount, a third user reads every file, tars a version
#     directory, and gets EACCES for create, write, unlink, rename and
#     symlink.
#  2. Modes: under umask 077, 027, 022 and 002 a store made by init, loads,
#     a dead writer's roll back (failpoint builds), a write through the
#     mount, a branch and a compact has no file or directory with a mode bit
#     the umask removes; under 002 the LMDB files, lock files and table
#     versions are group-writable (the umask decides, not a fixed 0644).
#  3. Names: nodes whose keys are "..", ".", "/etc/passwd",
#     "../../../../etc/passwd", "", "%2F..", NUL and control bytes, 300
#     bytes, ... with edges between them: every listed name maps to one key,
#     no "." or ".." or "/" in a name, every name <= 255 bytes; every
#     symlink of the graph walk is relative and resolves inside the mount,
#     to the right node; non-canonical spellings (lower-case escapes, "..%2F"
#     unescaped) are ENOENT for lookups and EINVAL for creates; a 256-byte
#     name is ENAMETOOLONG; symlinks written through the mount that point
#     outside it are EINVAL; nothing outside the store and the mount point
#     changes.
. "$top_srcdir/tests/mount/lib_mount.sh"
if [ "$(id -u)" != 0 ] || ! command -v setpriv >/dev/null || ! id nobody >/dev/null 2>&1; then
	echo "SKIP: needs root, setpriv and the user nobody"
	exit 77
fi
NG=$(id -gn nobody)
# A python3 other users may run (not one under root's home).
PYO=$(PATH=/usr/local/bin:/usr/bin:/bin command -v python3) || { echo "SKIP: no system python3"; exit 77; }
# errno_of USER-PREFIX PYTHON-STATEMENT: runs the statement (p = argv) as the
# given user and prints the errno name it failed with, or "ok".
errno_of() {
	local who=$1 stmt=$2
	shift 2
	timeout "$(scaled 30)" $who "$PYO" -c '
import errno, json, os, sys, tarfile
p = sys.argv[2:]
try:
    exec(sys.argv[1])
    print("ok")
except OSError as e:
    print(errno.errorcode[e.errno])' "$stmt" "$@"
}
expect() { # expect WANT DESC WHO STMT ARGS...
	local want=$1 desc=$2 got
	shift 2
	got=$(errno_of "$@")
	if [ "$got" = "$want" ]; then ok "$desc: $want"; else bad "$desc: got '$got', want $want"; fi
}

NB="setpriv --reuid nobody --regid $NG --clear-groups"
OT="setpriv --reuid 54321 --regid 54321 --clear-groups"
# ---- 1. access -------------------------------------------------------------
S=$T/store M=$T/mnt
new_store "$S"
printf '%s\n' '{"type":"Person","data":{"slug":"alice","name":"A"}}' \
	'{"type":"Person","data":{"slug":"bob"}}' '{"edge":"Knows","from":"alice","to":"bob"}' | load "$S" merge
mount_gfs "$S" "$M" || { bad "mount"; finish; exit; }
expect EACCES "no allow_other: another user's stat of the mount point" "$NB" 'os.stat(p[0])' "$M"
expect EACCES "no allow_other: another user's listing" "$NB" 'os.listdir(p[0])' "$M"
expect EACCES "no allow_other: another user's read of schema.pg" "$NB" 'open(p[0]).read()' "$M/schema.pg"
expect EACCES "no allow_other: another user's read of a node" "$NB" 'open(p[0]).read()' "$M/nodes/Person/alice.json"
expect ok "no allow_other: the mounting user reads" "" 'open(p[0]).read()' "$M/nodes/Person/alice.json"
umount_gfs "$M" || bad "unmount"

# A store owned by nobody, mounted by root: files belong to the store's owner.
O=$T/own
mkdir "$O" && chown nobody:"$NG" "$O"
$NB "$GRAPHCTL" init "$O/s" --schema "$SCHEMA" >/dev/null || bad "init as nobody"
printf '%s\n' '{"type":"Person","data":{"slug":"alice","name":"A"}}' | $NB "$GRAPHCTL" load "$O/s" --data - >/dev/null ||
	bad "load as nobody"
for opts in allow_other,default_permissions allow_other; do
	mount_gfs "$O/s" "$M" -o "$opts" || { bad "mount -o $opts"; continue; }
	tag="-o $opts"
	N=$M/nodes/Person
	check "$tag: files belong to the store's owner" test "$(stat -c %U "$N/alice.json")" = nobody
	expect ok "$tag: another user lists" "$OT" 'os.listdir(p[0])' "$N"
	expect ok "$tag: another user reads a node (0644)" "$OT" 'open(p[0]).read()' "$N/alice.json"
	expect ok "$tag: another user reads schema.pg, HEAD, log.jsonl" "$OT" '[open(x).read() for x in p]' \
		"$M/schema.pg" "$M/HEAD/manifest.json" "$M/log.jsonl"
	expect ok "$tag: another user tars a version directory" "$OT" \
		't = tarfile.open(fileobj=open(os.devnull, "wb"), mode="w|"); t.add(p[0]); t.close()' "$M/versions/2"
	expect EACCES "$tag: another user's create" "$OT" 'open(p[0], "w").write("{}")' "$N/eve.json"
	expect EACCES "$tag: another user's write" "$OT" 'open(p[0], "w").write("{}")' "$N/alice.json"
	expect EACCES "$tag: another user's unlink" "$OT" 'os.unlink(p[0])' "$N/alice.json"
	expect EACCES "$tag: another user's rename" "$OT" 'os.rename(p[0], p[1])' "$N/alice.json" "$N/al.json"
	expect EACCES "$tag: another user's symlink (edge)" "$OT" 'os.symlink("../../../../Person/alice.json", p[0])' \
		"$N/alice/out/Knows/alice.json"
	expect EACCES "$tag: another user's ingest" "$OT" 'open(p[0], "w").write("")' "$M/ingest/x.jsonl"
	expect ok "$tag: the owner writes a node (0644, owner w)" "$NB" 'open(p[0], "w").write("{\"name\":\"B\"}")' "$N/bob.json"
	check "$tag: the owner's write is in the store" bash -c "'$GRAPHCTL' export '$O/s' --type Person | grep -q '\"bob\"'"
	expect ok "$tag: the owner deletes it" "$NB" 'os.unlink(p[0])' "$N/bob.json"
	umount_gfs "$M" || bad "unmount ($tag)"
done

# ---- 2. modes under the creator's umask ---------------------------------------
FP=0
grep -q '^#define GFS_FAILPOINTS_ENABLED' "$top_builddir/config.h" 2>/dev/null && FP=1
make_store() { # make_store DIR: every kind of file the store gets
	local d=$1
	new_store "$d" || return 1
	printf '%s\n' '{"type":"Person","data":{"slug":"alice"}}' '{"type":"Company","data":{"name":"acme"}}' | load "$d" merge || return 1
	if [ "$FP" = 1 ]; then # a dead writer's roll back: a compensation version
		printf '%s\n' '{"type":"Person","data":{"slug":"carol"}}' |
			GRAPHFS_FAILPOINTS=commit/after_table=exit "$GRAPHCTL" load "$d" --data - >/dev/null 2>&1
		gc recover "$d" >/dev/null || return 1
	fi
	mount_gfs "$d" "$d.m" || return 1
	printf '{"age":3}' >"$d.m/nodes/Person/dave.json" || return 1
	umount_gfs "$d.m" || return 1
	gc branch create "$d" side >/dev/null && gc compact "$d" >/dev/null
}
# wider DIR MASK: paths under DIR with a mode bit MASK removes.
wider() { find "$1" -perm "/$2" -printf '%m %p\n'; }
for u in 077 027 022 002; do
	d=$T/umask$u
	MNTS+=("$d.m") # mounted in the subshell: unmounted on exit by this shell
	if ! (umask "$u" && make_store "$d"); then bad "umask $u: making the store failed"; continue; fi
	w=$(wider "$d" "$u")
	[ -z "$w" ] && ok "umask $u: no file or directory of the store is wider ($(find "$d" | wc -l) paths)" ||
		bad "umask $u: wider than the umask: $(echo "$w" | head -5)"
done
d=$T/umask002
shared=$(find "$d/manifest" "$d/locks" "$d/tables" -type f ! -perm -0660 -printf '%m %p\n')
[ -z "$shared" ] && ok "umask 002: LMDB files, lock files and table versions are group-writable" ||
	bad "umask 002: not group-writable: $(echo "$shared" | head -5)"

# ---- 3. names never resolve outside the mount --------------------------------------
H=$T/names
new_store "$H"
python3 - >"$T/hostile.jsonl" <<'PY'
import json
keys = ["..", ".", "../../../../etc/passwd", "/etc/passwd", "a/../../b", "%2F..",
        "~", "", "x.json", "nul\u0000x", "\u0001\u007f", "a" * 300, "a" * 300 + "b", ".hidden",
        "%2E%2E", "..%2F..%2Fetc", "/", "//", "\\..\\..", "é/../é", "alice"]
for k in keys:
    print(json.dumps({"type": "Person", "data": {"slug": k}}))
for i, k in enumerate(keys):
    for j in (1, 7):
        print(json.dumps({"edge": "Knows", "from": k, "to": keys[(i + j) % len(keys)]}))
PY
load "$H" merge <"$T/hostile.jsonl" || bad "loading hostile keys"
outside() { find "$T" -mindepth 1 -path "$H" -prune -o -path "$M" -prune -o ! -name 'outside.*' -printf '%p %s %T@\n' | sort; }
outside >"$T/outside.before"
mount_gfs "$H" "$M" || { bad "mount of hostile keys"; finish; exit; }
check "every name maps to one key, every symlink resolves inside the mount" \
	python3 - "$M" "$T/hostile.jsonl" <<'PY'
import json, os, sys
m, data = sys.argv[1], sys.argv[2]
keys = [json.loads(l)["data"]["slug"] for l in open(data) if '"type"' in l]
bad = []
d = m + "/nodes/Person"
names = os.listdir(d)
files = [n for n in names if n.endswith(".json")]
dirs = [n for n in names if not n.endswith(".json")]
for n in names:
    if n in (".", "..") or "/" in n or len(n.encode()) > 255 or n.startswith("."):
        bad.append("bad name %r" % n)
seen = [json.load(open(os.path.join(d, f)))["slug"] for f in files]
if sorted(seen) != sorted(keys):
    bad.append("keys served %r != loaded %r" % (sorted(seen), sorted(keys)))
if len(dirs) != len(keys):
    bad.append("%d node directories for %d keys" % (len(dirs), len(keys)))
real_m = os.path.realpath(m)
links = 0
for root, ds, fs in os.walk(m + "/nodes"):
    for f in fs + ds:
        p = os.path.join(root, f)
        if not os.path.islink(p):
            continue
        links += 1
        t = os.readlink(p)
        r = os.path.realpath(p)
        if t.startswith("/") or not r.startswith(real_m + "/nodes/Person/") or not os.path.isfile(r):
            bad.append("link %s -> %s resolves to %s" % (p, t, r))
        elif os.stat(r).st_dev != os.stat(m).st_dev:
            bad.append("link %s leaves the mount" % p)
if links != 2 * 2 * len(keys):
    bad.append("%d links, want %d" % (links, 4 * len(keys)))
for b in bad[:10]:
    print(b, file=sys.stderr)
sys.exit(1 if bad else 0)
PY
# Lookups must find exactly the name asked for, never a neighbour whose
# key starts with the same bytes (fuse/view.c edge_scan and anchor_by_name
# once answered "found" for the first such row: a phantom link, and ln -s
# of the real edge failed with EEXIST).
check "alice/out/Knows/%2E.json (key '.') is absent beside %2E..json (key '..')" \
	bash -c "test -L '$M/nodes/Person/alice/out/Knows/%2E..json' && ! test -e '$M/nodes/Person/alice/out/Knows/%2E.json' && ! test -L '$M/nodes/Person/alice/out/Knows/%2E.json'"
check "edges/Knows/<from>/ lists what nodes/Person/<from>/out/Knows/ does, for every key (two 300-byte keys share 200 bytes)" \
	python3 - "$M" <<'PY'
import os, sys
m = sys.argv[1]
nodes = [n for n in os.listdir(m + "/nodes/Person") if not n.endswith(".json")]
# Looked up by name (edges/Knows/ is not listed first: a listing would
# hand the kernel every entry and no LOOKUP would reach anchor_by_name).
bad = [n for n in nodes if sorted(os.listdir(m + "/edges/Knows/" + n)) != sorted(os.listdir(m + "/nodes/Person/" + n + "/out/Knows"))]
bad += [n for n in os.listdir(m + "/edges/Knows") if n not in nodes]
if len([n for n in nodes if "%h" in n]) != 2 or bad:
    sys.exit("mismatch: %r" % bad)
PY
N=$M/nodes/Person
expect ok "the key '../../../../etc/passwd' is a file inside the mount" "" \
	'assert json.load(open(p[0]))["slug"] == "../../../../etc/passwd" and os.stat(p[0]).st_dev == os.stat(p[1]).st_dev' \
	"$N/%2E.%2F..%2F..%2F..%2Fetc%2Fpasswd.json" "$M"
for n in '%2e.json' '..%2F..%2F..%2F..%2Fetc%2Fpasswd.json' '%2E.%2f..%2f..%2f..%2fetc%2fpasswd.json' \
	'a%2f..%2f..%2fb.json' '%2F%2Fetc%2Fpasswd' '%252E%252e.json' '%00.json' '%h0000000000000000.json'; do
	expect ENOENT "lookup of the non-canonical name '$n'" "" 'os.stat(p[0])' "$N/$n"
done
expect ENAMETOOLONG "lookup of a 256-byte name" "" 'os.stat(p[0])' "$N/$(printf 'b%.0s' $(seq 256))"
expect ENAMETOOLONG "create of a 256-byte name" "" 'open(p[0], "w").write("{}")' "$N/$(printf 'b%.0s' $(seq 251)).json"
for n in '..%2F..%2Fescape.json' '%2e%2e.json' 'a%zz.json' '%2E%2E%2F%2E%2E.JSON.json'; do
	expect EINVAL "create of the non-canonical name '$n'" "" 'open(p[0], "w").write("{}")' "$N/$n"
done
expect ok "create of the canonical name of '../../escape' makes that key" "" 'open(p[0], "w").write("{}")' "$N/%2E.%2F..%2Fescape.json"
check "'../../escape' is a key of the store" bash -c "'$GRAPHCTL' export '$H' --type Person | grep -qF '\"slug\":\"../../escape\"'"
L=$N/alice/out/Knows
for t in /etc/passwd ../../../../../../../../etc/passwd ../../../../Person/../../../etc/passwd \
	"$L/../../../../../../../../etc/passwd" "$T/outside.before"; do
	expect EINVAL "an edge symlink to '$t' (outside the mount)" "" 'os.symlink(p[0], p[1])' "$t" "$L/passwd.json"
done
expect ok "the edge symlink to a neighbour inside works" "" 'os.symlink(p[0], p[1])' '../../../../Person/%2E.json' "$L/%2E.json"
umount_gfs "$M" || bad "unmount"
outside >"$T/outside.after"
diff "$T/outside.before" "$T/outside.after" >&2 && ok "nothing outside the store and the mount point changed" ||
	bad "something outside the store or the mount point changed"
finish

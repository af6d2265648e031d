#!/bin/bash
# limits_names.sh - hostile file names and keys through the mount
# (docs/format.md "Limits", docs/mount.md for the name encoding): a key
# whose name would pass 255 bytes gets a cut name ("%h" + hash) that
# resolves to it, a name over 255 bytes is ENAMETOOLONG, a name that is
# not UTF-8 or not the canonical encoding of its key (a NUL or '/' can
# only come encoded) fails with EINVAL and its reason in
# .graphfs/errors.jsonl, ".." and "." never leave the directory, and
# every refused write leaves the store as it was (log and fsck).
. "$top_srcdir/tests/mount/lib_mount.sh"
S=$T/store M=$T/mnt
new_store "$S"
long=$(head -c 600 /dev/zero | tr '\0' k)
printf '{"type":"Person","data":{"slug":"%s","name":"L"}}\n{"type":"Person","data":{"slug":"a/b\\u0000c","name":"S"}}\n' "$long" |
	load "$S" merge
mount_gfs "$S" "$M" || { bad mount; finish; exit; }
P=$M/nodes/Person
v0=$(gc log "$S" | tail -n 1 | awk '{print $1}')

errno_of() { # errno_of PY-STMTS (m = mount point): OK or the errno name
	timeout "$(scaled 60)" python3 - "$M" "$1" <<'PY'
import errno, os, sys
m = os.fsencode(sys.argv[1])
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
unchanged() {
	local v; v=$(gc log "$S" | tail -n 1 | awk '{print $1}')
	if [ "$v" = "$v0" ] && gc fsck "$S" >/dev/null; then ok "$1: store unchanged, fsck clean"
	else bad "$1: newest version $v (want $v0) or fsck failed"; fi
}

# a 600-byte key: one cut name, at most 255 bytes, that reads back the key
names=$(ls "$P" | grep '^k.*%h' || true)
n=$(printf '%s\n' "$names" | grep -c . || true)
[ "$n" = 2 ] && ok "the 600-byte key has one cut file name and one directory" || bad "cut names: $names"
f=$(printf '%s\n' "$names" | grep '\.json$' | head -n 1)
[ "${#f}" -le 255 ] && ok "cut name is ${#f} bytes" || bad "cut name of ${#f} bytes"
check "the cut name reads back the 600-byte key" grep -q "\"slug\":\"$long\"" "$P/$f"
check "a NUL and a '/' in a key come encoded" test -e "$P/a%2Fb%00c.json"

claim ENAMETOOLONG "a 256-byte name" \
	'with open(m + b"/nodes/Person/" + b"x" * 251 + b".json", "w") as f: f.write("{}")'
unchanged "a 256-byte name"
claim EINVAL "a name that is not UTF-8" \
	'with open(m + b"/nodes/Person/\xff\xfe.json", "w") as f: f.write("{}")'
check "the reason is in errors.jsonl" grep -q "not valid UTF-8" "$M/.graphfs/errors.jsonl"
unchanged "a name that is not UTF-8"
claim EINVAL "a body whose key is not UTF-8 (escaped in the name)" \
	'with open(m + b"/nodes/Person/%FF.json", "w") as f: f.write("{}")'
unchanged "a key that is not UTF-8"
claim EINVAL "a non-canonical name (lower-case escape)" \
	'with open(m + b"/nodes/Person/a%2fb.json", "w") as f: f.write("{}")'
claim EINVAL "a forged cut name" \
	'with open(m + b"/nodes/Person/kkk%h0123456789ABCDEF.json", "w") as f: f.write("{}")'
unchanged "non-canonical names"
claim ENOENT "a cut name of no key" \
	'os.stat(m + b"/nodes/Person/kkk%h0123456789ABCDEF.json")'
claim OK "'..' stays inside the mount" \
	'assert os.stat(m + b"/nodes/Person/../..").st_ino == os.stat(m).st_ino'
finish

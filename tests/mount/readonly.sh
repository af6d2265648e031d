#!/bin/bash
# readonly.sh - read-only stores stay safe (issue 8 req 6, src/store.c
# invariant 6).  LMDB without its lock file (MDB_NOLOCK) is used only when
# statvfs reports a read-only file system; anywhere else a reader that
# cannot use the lock file fails, saying which access it needs.
#  1. A store on a read-only file system (a tmpfs remounted read-only: its
#     superblock is read-only): graphctl export (as root and as an
#     unprivileged user) and `graphfs -o ro` serve it; a writer and a
#     read-write mount fail naming the read-only file system.
#  2. A store on a read-write file system whose manifest/ the user cannot
#     write: export fails naming the lock file and the access needed (it
#     used to fall back to MDB_NOLOCK, invisible to writers), and the store
#     is unchanged.
#  3. A read-only bind mount of a store whose file system is written
#     through its own path: statvfs says ST_RDONLY, but writers are active,
#     so a reader there is refused (LMDB would otherwise go lockless on
#     EROFS, invisible to the writers, which then reuse the pages of its
#     read transaction), while the writer goes on.
# Needs root (mount --bind, setpriv): skipped (77) otherwise.
. "$top_srcdir/tests/mount/lib_mount.sh"

[ "$(id -u)" = 0 ] || { echo "SKIP: needs root for mount --bind and setpriv"; exit 77; }
command -v setpriv >/dev/null || { echo "SKIP: no setpriv"; exit 77; }
RO=$T/ro
ro_cleanup() {
	local m
	for m in "${MNTS[@]}"; do
		timeout 20 fusermount3 -u "$m" 2>/dev/null || umount -l "$m" 2>/dev/null
	done
	MNTS=()
	if mountpoint -q "$RO" 2>/dev/null; then umount "$RO" 2>/dev/null || umount -l "$RO"; fi
	cleanup
}
trap ro_cleanup EXIT
nobody() { timeout "$(scaled 60)" setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }

S=$T/s
new_store "$S"
printf '{"type":"Person","data":{"slug":"alice","name":"Alice"}}\n{"type":"Person","data":{"slug":"bob"}}\n' | load "$S" merge
printf '{"edge":"Knows","from":"alice","to":"bob"}\n' | load "$S" merge
gc export "$S" >"$T/want"
chmod -R a+rX "$S"

mkdir -p "$RO"
if ! mount -t tmpfs -o size=64m tmpfs "$RO" 2>/dev/null; then
	echo "SKIP: cannot mount a tmpfs here"
	exit 77
fi
cp -a "$S/." "$RO/"
if ! mount -o remount,ro "$RO" 2>/dev/null; then
	echo "SKIP: cannot remount a tmpfs read-only here"
	exit 77
fi
python3 -c 'import os,sys; sys.exit(0 if os.statvfs(sys.argv[1]).f_flag & os.ST_RDONLY else 1)' "$RO" ||
	{ bad "the tmpfs is not read-only"; finish; exit 1; }
# 1. read-only file system
gc export "$RO" >"$T/got" 2>"$T/err" && cmp -s "$T/got" "$T/want" &&
	ok "export of a store on a read-only file system (MDB_NOLOCK)" || bad "export on ro fs: $(cat "$T/err")"
nobody "$GRAPHCTL" export "$RO" >"$T/got" 2>"$T/err" && cmp -s "$T/got" "$T/want" &&
	ok "an unprivileged user exports it too" || bad "export on ro fs as nobody: $(cat "$T/err")"
gc fsck "$RO" -q >/dev/null 2>"$T/err" && ok "fsck reads it" || bad "fsck on ro fs: $(cat "$T/err")"
M=$T/m
if mount_gfs "$RO" "$M" -o ro 2>"$T/err"; then
	ok "graphfs -o ro mounts it"
	timeout "$(scaled 20)" cat "$M/nodes/Person.jsonl" >"$T/p" && grep -q '"alice"' "$T/p" && grep -q '"bob"' "$T/p" &&
		ok "the mount serves its rows" || bad "mount on ro fs: rows missing"
	umount_gfs "$M" && ok "unmounted" || bad "unmount failed"
else
	bad "graphfs -o ro on a ro fs failed: $(cat "$T/err")"
fi
echo '{"type":"Person","data":{"slug":"carol"}}' >"$T/c.jsonl"
if gc load "$RO" --data "$T/c.jsonl" -q 2>"$T/err"; then
	bad "a load on a read-only file system succeeded"
else
	grep -q "read-only file system" "$T/err" && ok "a load says the file system is read-only" || bad "load on ro fs: $(cat "$T/err")"
fi
M2=$T/m2
if mount_gfs "$RO" "$M2" 2>"$T/err"; then
	bad "a read-write mount of a ro fs succeeded"
	umount_gfs "$M2" || true
else
	grep -q "read-only file system" "$T/err" && ok "a read-write mount says the file system is read-only" ||
		bad "rw mount on ro fs: $(cat "$T/err")"
fi
umount "$RO"

# 2. read-write file system, manifest/ not writable for the user
sum_before=$(cd "$S" && find . -type f ! -name lock.mdb -exec md5sum {} + | sort)
if nobody "$GRAPHCTL" export "$S" >"$T/got" 2>"$T/err"; then
	bad "export without access to the lock file succeeded (MDB_NOLOCK beside possible writers)"
else
	grep -q "write access to the lock file '$S/manifest/lock.mdb'" "$T/err" &&
		ok "export without write access to the lock file fails naming it" || bad "no clear error: $(cat "$T/err")"
fi
nobody "$GRAPHCTL" fsck "$S" -q >/dev/null 2>"$T/err" && bad "fsck without lock-file access succeeded" ||
	{ grep -q "lock.mdb" "$T/err" && ok "fsck says the same" || bad "fsck: $(cat "$T/err")"; }
[ "$(cd "$S" && find . -type f ! -name lock.mdb -exec md5sum {} + | sort)" = "$sum_before" ] &&
	ok "the store is unchanged" || bad "the store changed"
gc export "$S" | cmp -s - "$T/want" && gc fsck "$S" -q >/dev/null && ok "root still reads it, fsck clean" || bad "store damaged"

# 3. a read-only bind mount of a store written through its own path
if mount --bind "$S" "$RO" 2>/dev/null && mount -o remount,bind,ro "$RO" 2>/dev/null; then
	python3 -c 'import os,sys; sys.exit(0 if os.statvfs(sys.argv[1]).f_flag & os.ST_RDONLY else 1)' "$RO" ||
		bad "the bind mount is not read-only"
	if gc export "$RO" >"$T/got" 2>"$T/err"; then
		bad "export through a read-only bind mount of a writable file system succeeded (lockless beside writers)"
	else
		grep -q "writable through another mount" "$T/err" && grep -q "lock.mdb" "$T/err" &&
			ok "export through a read-only bind mount is refused, naming the lock file" || bad "bind ro: $(cat "$T/err")"
	fi
	M3=$T/m3
	if mount_gfs "$RO" "$M3" -o ro 2>"$T/err"; then
		bad "graphfs -o ro through a read-only bind mount of a writable file system mounted"
		umount_gfs "$M3" || true
	else
		grep -q "writable through another mount" "$T/err" && ok "graphfs -o ro there is refused too" ||
			bad "graphfs -o ro on bind ro: $(cat "$T/err")"
	fi
	echo '{"type":"Person","data":{"slug":"dave"}}' >"$T/d.jsonl"
	gc load "$S" --data "$T/d.jsonl" -q && gc export "$S" >"$T/out" && grep -q '"dave"' "$T/out" &&
		ok "the writer on the read-write path goes on" || bad "load on the rw path failed"
	umount "$RO"
else
	echo "# no read-only bind mount here: part 3 skipped"
fi
finish

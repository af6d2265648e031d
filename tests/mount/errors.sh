#!/bin/bash
# errors.sh - mount errors (missing store, bad mount points, mounting
# twice), foreground mode, SIGTERM unmounts, fstab-style mount(8), and the
# same error paths as a fresh unprivileged user.
. "$top_srcdir/tests/mount/lib_mount.sh"
S=$T/store M=$T/mnt
new_store "$S"
echo '{"type":"Person","data":{"slug":"alice"}}' | load "$S" merge
mkdir -p "$M"

# expect_fail DESC PATTERN CMD...: nonzero exit, stderr matches PATTERN.
expect_fail() {
	local desc=$1 pat=$2; shift 2
	if timeout 30 "$@" 2>"$T/err" >/dev/null; then
		bad "$desc: succeeded"
	elif grep -qE -- "$pat" "$T/err"; then
		ok "$desc"
	else
		bad "$desc: stderr: $(head -c 300 "$T/err")"
	fi
}

expect_fail "missing store" "store '$T/nope'" "$GRAPHFS" "$T/nope" "$M"
mkdir "$T/notastore"
expect_fail "directory that is no store" "store '" "$GRAPHFS" "$T/notastore" "$M"
check "failed mount left nothing mounted" bash -c "! mountpoint -q '$M'"
expect_fail "missing mount point" "mount point .$T/nomnt" "$GRAPHFS" "$S" "$T/nomnt"
touch "$T/file"
expect_fail "mount point is a file" "Not a directory" "$GRAPHFS" "$S" "$T/file"
mkdir -p "$T/full" && touch "$T/full/x"
expect_fail "non-empty mount point" "not empty" "$GRAPHFS" "$S" "$T/full"
expect_fail "usage" "usage" "$GRAPHFS" "$S"
expect_fail "unknown option" "unknown option|invalid argument" "$GRAPHFS" -o frobnicate "$S" "$M"
check "--help" timeout 10 "$GRAPHFS" --help
check "--version" timeout 10 "$GRAPHFS" --version

mount_gfs "$S" "$M" && ok "mount" || bad "mount"
check "mounted at once (daemon reported success)" test -f "$M/nodes/Person/alice.json"
expect_fail "mounting twice" "already" "$GRAPHFS" "$S" "$M"
check "-o nonempty still refuses a mount point" bash -c "! timeout 30 '$GRAPHFS' -o nonempty '$S' '$M' 2>/dev/null"
check "fusermount3 -u unmounts" umount_gfs "$M"

# -o nonempty mounts over files (they come back after unmount).
mount_gfs "$S" "$T/full" -o nonempty && ok "-o nonempty" || bad "-o nonempty"
check "nonempty mount shows the graph" test -d "$T/full/nodes"
umount_gfs "$T/full"
check "hidden file back" test -f "$T/full/x"

# Foreground: SIGTERM unmounts cleanly and exits 0.
"$GRAPHFS" -f "$S" "$M" 2>"$T/fg.err" &
pid=$!
check "foreground mount comes up" wait_until 10 test -f "$M/nodes/Person/alice.json"
kill -TERM "$pid"
wait_until 20 bash -c "! kill -0 $pid" || kill -KILL "$pid"
wait "$pid"; st=$?
check "SIGTERM: exit 0 (got $st)" test "$st" = 0
check "SIGTERM: unmounted" bash -c "! mountpoint -q '$M'"

# Read-only mount option: the kernel refuses writes itself.
mount_gfs "$S" "$M" -o ro || bad "mount -o ro"
check "-o ro in mount table" grep -q " $M fuse.graphfs ro," /proc/mounts
check "-o ro: write is EROFS" bash -c "! echo x 2>&1 > '$M/nodes/Person/alice.json' | grep -vq 'Read-only file system'"
umount_gfs "$M"

# fstab style: mount -t fuse.graphfs STORE MNT (mount.fuse3 runs graphfs).
if [ "$(id -u)" = 0 ] && command -v mount.fuse3 >/dev/null; then
	bindir=$T/bin
	mkdir -p "$bindir" && ln -s "$GRAPHFS" "$bindir/graphfs"
	MNTS+=("$M")
	# What mount(8) runs for an fstab line "STORE MNT fuse.graphfs ro,...".
	check "mount.fuse3 (fstab type fuse.graphfs)" env PATH="$bindir:$PATH" timeout 30 mount.fuse3 "$S" "$M" -t fuse.graphfs -o ro,allow_other,default_permissions,nodev,nosuid
	check "fstab-style mount works" test -f "$M/nodes/Person/alice.json"
	check "listed as fuse.graphfs with the store as source" grep -q "^$S $M fuse.graphfs " /proc/mounts
	check "allow_other/default_permissions passed" grep -q "allow_other" "$M/.graphfs/options"
	umount_gfs "$M"
else
	echo "ok - # SKIP fstab-style mount needs root"
fi

# The same errors as a fresh unprivileged user.
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null; then
	printf '#!/bin/sh\nexec setpriv --reuid=65534 --regid=65534 --clear-groups "$@"\n' > "$T/as_user"
	chmod 755 "$T/as_user"
	as_user() { "$T/as_user" "$@"; }
	U=$T/user && mkdir -p "$U/mnt" "$U/full" && touch "$U/full/x"
	cp -a "$S" "$U/store"
	chown -R 65534:65534 "$U"
	expect_fail "user: missing store" "store '" "$T/as_user" "$GRAPHFS" "$U/nope" "$U/mnt"
	expect_fail "user: non-empty mount point" "not empty" "$T/as_user" "$GRAPHFS" "$U/store" "$U/full"
	expect_fail "user: store not readable" "store '" "$T/as_user" "$GRAPHFS" /root "$U/mnt"
	MNTS+=("$U/mnt")
	if ! as_user test -r /dev/fuse; then
		echo "ok - # SKIP unprivileged FUSE mounts: /dev/fuse is not open to users here"
	elif as_user timeout 30 "$GRAPHFS" "$U/store" "$U/mnt" 2>"$T/err"; then
		ok "user: mount via fusermount3"
		check "user: reads" as_user cat "$U/mnt/nodes/Person/alice.json"
		expect_fail "user: mounting twice" "already" "$T/as_user" "$GRAPHFS" "$U/store" "$U/mnt"
		check "user: fusermount3 -u" as_user timeout 20 fusermount3 -u "$U/mnt"
	else
		bad "user: mount: $(cat "$T/err")"
	fi
	if ! grep -q '^user_allow_other' /etc/fuse.conf 2>/dev/null; then
		as_user test -r /dev/fuse &&
		expect_fail "user: allow_other without user_allow_other" "allow_other|cannot mount" "$T/as_user" "$GRAPHFS" -o allow_other "$U/store" "$U/mnt"
	fi
else
	echo "ok - # SKIP unprivileged-user error paths need root and setpriv"
fi
finish

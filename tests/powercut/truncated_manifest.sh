# tests/powercut/truncated_manifest.sh - a data.mdb shorter than its last
# committed page is refused with a message naming it, never a SIGBUS.
#
# The power-cut checker found it: with LMDB's fdatasync treated as a no-op
# (skip_sync.sh), a state kept the meta page but lost the data pages it
# names, and every graphctl command died of SIGBUS reading them through the
# map.  A copy cut short or a failing disk leaves the same file.
. "$top_srcdir/tests/crash/crashlib.sh"

S=$T/s
M=$T/m
tm_cleanup() {
	mountpoint -q "$M" 2>/dev/null && { fusermount3 -u "$M" || umount -l "$M"; }
	cleanup
}
trap tm_cleanup EXIT
new_store "$S"
size=$(stat -c %s "$S/manifest/data.mdb")
psize=4096
[ "$size" -gt $((4 * psize)) ] || bad "data.mdb unexpectedly small ($size)"
cp "$S/manifest/data.mdb" "$T/data.orig"
n=0
# just the meta pages, a page boundary half way, the last boundary, and a
# cut inside the last page
half=$(( size / psize / 2 * psize ))
for cut in $((2 * psize)) "$half" $((size - psize)) $((size - 100)); do
	cp "$T/data.orig" "$S/manifest/data.mdb"
	truncate -s "$cut" "$S/manifest/data.mdb"
	rm -f "$S/manifest/lock.mdb"
	sum=$(sha256sum <"$S/manifest/data.mdb")
	for c in fsck export log recover upgrade; do
		set +e
		with_timeout 60 "$GRAPHCTL" "$c" "$S" >/dev/null 2>"$T/err"
		rc=$?
		set -e
		n=$((n + 1))
		if [ "$rc" != 1 ] || ! grep -q "data.mdb' is truncated: $cut bytes" "$T/err"; then
			bad "$c on data.mdb cut at $cut: exit $rc: $(head -c 300 "$T/err")"
		fi
	done
	[ "$(sha256sum <"$S/manifest/data.mdb")" = "$sum" ] ||
		bad "the refusals changed data.mdb cut at $cut"
done
[ "$fails" = 0 ] && ok "$n commands on truncated manifests: exit 1 naming the file, store unchanged"

# the mount refuses it too, read-write and read-only, and mounts nothing
if [ -e /dev/fuse ] && command -v fusermount3 >/dev/null && [ -n "${GRAPHFS:-}" ]; then
	mkdir -p "$M"
	for o in rw ro; do
		set +e
		with_timeout 30 "$GRAPHFS" "$S" "$M" -o "$o" 2>"$T/err"
		rc=$?
		set -e
		if mountpoint -q "$M"; then
			fusermount3 -u "$M" || umount -l "$M"
			bad "graphfs -o $o mounted a truncated manifest"
		elif [ "$rc" != 1 ] || ! grep -q "data.mdb' is truncated" "$T/err"; then
			bad "graphfs -o $o: exit $rc: $(head -c 300 "$T/err")"
		else
			ok "graphfs -o $o refuses the truncated manifest, naming it"
		fi
	done
fi

# the untruncated file still opens: the check does not refuse healthy stores
cp "$T/data.orig" "$S/manifest/data.mdb"
gctl fsck "$S" >/dev/null && ok "the whole file is accepted again" || bad "fsck of the restored store"
finish

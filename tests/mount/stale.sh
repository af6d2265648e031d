#!/bin/bash
# stale.sh - the live view is never staler than its promise
# (docs/mount.md, "How stale the live view can be").
#
# A listing of 20,000 nodes is read with 1 KiB getdents buffers, stat-ing
# as it goes (so the kernel keeps asking READDIRPLUS); in the middle of it
# another process changes a row near the end of the listing and adds a
# node.  Once the notifier has seen the new head, the rest of the listing
# still comes from the snapshot taken at opendir, but nothing of it may be
# cached: reading the changed row's file right after the listing must give
# the new bytes although live_timeout is an hour.  Rewinding the directory
# then lists the new head.  Ordering is by FIFOs, waits are bounded polls.
. "$top_srcdir/tests/mount/lib_mount.sh"
S=$T/store M=$T/mnt
new_store "$S"
awk 'BEGIN { for (i = 0; i < 20000; i++)
	printf "{\"type\":\"Person\",\"data\":{\"slug\":\"p%05d\",\"age\":1}}\n", i }' | load "$S" merge
mount_gfs "$S" "$M" -o live_timeout=3600 || { bad mount; finish; exit; }
P=$M/nodes/Person
mkfifo "$T/ready" "$T/go"

cat >"$T/lister.py" <<'PY'
import ctypes, os, struct, sys
d, ready, go = sys.argv[1:4]
libc = ctypes.CDLL(None, use_errno=True)
SYS_getdents64 = 217
fd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
buf = ctypes.create_string_buffer(1024)

def batch():
    n = libc.syscall(SYS_getdents64, fd, buf, len(buf))
    if n < 0:
        raise OSError(ctypes.get_errno(), "getdents64")
    names, pos = [], 0
    while pos < n:
        _ino, _off, reclen, _typ = struct.unpack_from("<QqHB", buf.raw, pos)
        names.append(buf.raw[pos + 19:pos + reclen].split(b"\0", 1)[0].decode())
        pos += reclen
    for nm in names[-1:]:
        if nm not in (".", ".."):
            os.lstat(os.path.join(d, nm))  # ls -l: keeps READDIRPLUS coming
    return names

def listing():
    out = []
    while True:
        b = batch()
        if not b:
            return out
        out += b

first = batch()
with open(ready, "w") as f:
    f.write("%d\n" % len(first))
with open(go) as f:
    f.read()
rest = listing()
seen = first + rest
print("listed", len(seen), "dups", len(seen) - len(set(seen)))
with open(os.path.join(d, "p19990.json")) as f:
    print("p19990", f.read().strip())
os.lseek(fd, 0, os.SEEK_SET)
again = listing()
print("rewound", len(again), "new", "p99999.json" in again)
PY

python3 "$T/lister.py" "$P" "$T/ready" "$T/go" >"$T/out" 2>"$T/err" &
lister=$!
first=$(timeout "$(scaled 60)" cat "$T/ready")
check "first batch read ($first entries)" test "${first:-0}" -gt 0
printf '%s\n' '{"type":"Person","data":{"slug":"p19990","age":2}}' \
	'{"type":"Person","data":{"slug":"p99999","age":2}}' | load "$S" merge
check "notifier saw the change" wait_until 30 out_is 3 jq .notifier.head_seen "$M/.graphfs/stats"
echo go > "$T/go"
wait "$lister"
check "lister ran" test $? = 0
cat "$T/out" "$T/err"
check "the snapshot listing is whole, no duplicates" grep -qx 'listed 40002 dups 0' "$T/out"
check "changed row read fresh right after the listing" grep -q '^p19990 {.*"age":2' "$T/out"
check "rewinddir lists the new head" grep -qx 'rewound 40004 new True' "$T/out"
check "uncacheable replies counted" test "$(jq .uncacheable_replies "$M/.graphfs/stats")" -gt 0
finish

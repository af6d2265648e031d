#!/bin/bash
# listing.sh - directory offsets are cookies the daemon resumes from in
# O(log n) (docs/mount.md, "Listings"): every kind of big directory read
# with 1 KiB getdents buffers gives exactly the listing a big buffer gives;
# seekdir to any telldir value (taken in any order) resumes at that entry;
# a READDIR at an offset the daemon did not hand out (inside a source's run
# of edges) does not repeat a source.
. "$top_srcdir/tests/mount/lib_mount.sh"
S=$T/store M=$T/mnt
new_store "$S"
awk 'BEGIN {
	for (i = 0; i < 20000; i++)
		printf "{\"type\":\"Person\",\"data\":{\"slug\":\"p%05d\"}}\n", i
	# p00000 knows 3000 people; 2000 others know 1 to 4 people each.
	for (i = 1; i <= 3000; i++)
		printf "{\"edge\":\"Knows\",\"from\":\"p00000\",\"to\":\"p%05d\"}\n", i
	for (i = 1; i <= 2000; i++)
		for (j = 0; j <= i % 4; j++)
			printf "{\"edge\":\"Knows\",\"from\":\"p%05d\",\"to\":\"p%05d\"}\n", i * 7, (i * 13 + j) % 20000
}' | load "$S" merge
for i in 1 2 3 4 5; do
	printf '{"type":"Company","data":{"name":"c%d"}}\n' "$i" | load "$S" merge
done
mount_gfs "$S" "$M" || { bad mount; finish; exit; }

cat >"$T/lst.py" <<'PY'
import ctypes, os, random, struct, sys
libc = ctypes.CDLL(None, use_errno=True)

def small(d):
    """Whole listing with 1 KiB getdents64 buffers."""
    fd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
    buf = ctypes.create_string_buffer(1024)
    out = []
    while True:
        n = libc.syscall(217, fd, buf, len(buf))
        if n < 0:
            raise OSError(ctypes.get_errno(), d)
        if n == 0:
            break
        pos = 0
        while pos < n:
            reclen = struct.unpack_from("<H", buf.raw, pos + 16)[0]
            out.append(buf.raw[pos + 19:pos + reclen].split(b"\0", 1)[0].decode())
            pos += reclen
    os.close(fd)
    return out

class Dirent(ctypes.Structure):
    _fields_ = [("d_ino", ctypes.c_uint64), ("d_off", ctypes.c_int64),
                ("d_reclen", ctypes.c_ushort), ("d_type", ctypes.c_ubyte),
                ("d_name", ctypes.c_char * 256)]
libc.opendir.restype = ctypes.c_void_p
libc.opendir.argtypes = [ctypes.c_char_p]
libc.readdir.restype = ctypes.POINTER(Dirent)
libc.readdir.argtypes = [ctypes.c_void_p]
libc.telldir.restype = ctypes.c_long
libc.telldir.argtypes = [ctypes.c_void_p]
libc.seekdir.argtypes = [ctypes.c_void_p, ctypes.c_long]
libc.closedir.argtypes = [ctypes.c_void_p]

def seeks(d, picks):
    """telldir before every entry, then seekdir to random ones."""
    dp = libc.opendir(d.encode())
    marks = []
    while True:
        t = libc.telldir(dp)
        e = libc.readdir(dp)
        if not e:
            break
        marks.append((t, e.contents.d_name.decode()))
    rnd = random.Random(5)
    bad = 0
    for _ in range(picks):
        t, name = rnd.choice(marks)
        libc.seekdir(dp, t)
        e = libc.readdir(dp)
        if not e or e.contents.d_name.decode() != name:
            bad += 1
    libc.closedir(dp)
    return [m[1] for m in marks], bad

d = sys.argv[1]
ref = sorted(os.listdir(d))
a = small(d)
names, bad = seeks(d, 300)
ok = (sorted(a) == sorted(ref + [".", ".."]) and len(a) == len(set(a))
      and a == names)
print("%s entries %d small-buffer %s seek-misses %d" % (d, len(a), "same" if ok else "DIFFERENT", bad))
sys.exit(0 if ok and bad == 0 else 1)
PY

lst() { timeout "$(scaled 300)" python3 "$T/lst.py" "$1"; }
check "nodes/Person (40k entries)" lst "$M/nodes/Person"
check "edges/Knows (2001 sources)" lst "$M/edges/Knows"
check "edges/Knows/p00000 (3000 edges)" lst "$M/edges/Knows/p00000"
check "out/Knows of p00000 (3000 links)" lst "$M/nodes/Person/p00000/out/Knows"
check "in/Knows of p00013" lst "$M/nodes/Person/p00013/in/Knows"
check "versions/ (7 versions)" lst "$M/versions"
check "versions/7/nodes/Person" lst "$M/versions/7/nodes/Person"
check "root" lst "$M"

# An offset inside p00000's run of 3000 edges (not one the daemon handed
# out) resumes at the next source instead of listing p00000 again.
cat >"$T/mid.py" <<'PY'
import ctypes, os, struct, sys
libc = ctypes.CDLL(None, use_errno=True)
fd = os.open(sys.argv[1], os.O_RDONLY | os.O_DIRECTORY)
os.lseek(fd, 2 + 1500, os.SEEK_SET)
buf = ctypes.create_string_buffer(4096)
n = libc.syscall(217, fd, buf, len(buf))
first = buf.raw[19:struct.unpack_from("<H", buf.raw, 16)[0]].split(b"\0", 1)[0].decode()
print(first)
PY
first=$(timeout "$(scaled 60)" python3 "$T/mid.py" "$M/edges/Knows")
second=$(ls -f "$M/edges/Knows" | grep -v '^\.' | sed -n 2p)
check "offset inside a source's run resumes at the next source ($first)" test "$first" = "$second"
# The kernel opens directories itself: no OPENDIR reaches the daemon
# (but the first, answered ENOSYS), no RELEASEDIR.  -o opendir keeps them.
check "no OPENDIR/RELEASEDIR by default" test "$(jq -c '[.requests.opendir, .requests.releasedir]' "$M/.graphfs/stats")" = "[1,0]"
M2=$T/mnt2
mount_gfs "$S" "$M2" -o opendir || bad "mount -o opendir"
check "-o opendir: the same listing" lst "$M2/nodes/Person/p00000/out/Knows"
check "-o opendir: OPENDIR and RELEASEDIR reach the daemon" test "$(jq '.requests.opendir > 1 and .requests.releasedir > 0' "$M2/.graphfs/stats")" = true
finish

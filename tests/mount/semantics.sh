#!/bin/bash
# semantics.sh - executes every claim of docs/semantics.md: each operation
# the mount refuses or does differently, with its errno.
. "$top_srcdir/tests/mount/lib_mount.sh"
S=$T/store M=$T/mnt
new_store "$S"
printf '%s\n' '{"type":"Person","data":{"slug":"alice"}}' \
	'{"type":"Person","data":{"slug":"bob"}}' \
	'{"edge":"Knows","from":"alice","to":"bob"}' | load "$S" merge
mount_gfs "$S" "$M" || { bad mount; finish; exit; }

# errno_of PY-EXPR: runs it in python with f, d, m bound; prints the errno
# name or OK.
errno_of() {
	timeout 30 python3 - "$M" "$1" <<'PY'
import errno, fcntl, mmap, os, sys
m = sys.argv[1]
f = m + "/nodes/Person/alice.json"
d = m + "/nodes/Person/alice"
try:
    eval(sys.argv[2])
    print("OK")
except OSError as e:
    print(errno.errorcode[e.errno])
PY
}
claim() { # claim WANT DESC PY-EXPR
	local got
	got=$(errno_of "$3")
	if [ "$got" = "$1" ]; then ok "$2: $got"; else bad "$2: got $got, want $1"; fi
}

# Writes (docs/semantics.md, "Writes"; write.sh runs them with real tools).
claim OK    "open O_WRONLY of a node file" 'os.close(os.open(f, os.O_WRONLY))'
claim OK    "open O_RDWR of a node file" 'os.close(os.open(f, os.O_RDWR))'
claim EROFS "write in versions/N" 'os.open(m + "/versions/2/manifest.json", os.O_WRONLY)'
claim EROFS "create in versions/N" 'os.open(m + "/versions/2/nodes/Person/x.json", os.O_WRONLY | os.O_CREAT)'
claim EACCES "write schema.pg (not writable)" 'os.open(m + "/schema.pg", os.O_WRONLY)'
claim EACCES "create in nodes/" 'os.open(m + "/nodes/x.json", os.O_WRONLY | os.O_CREAT)'
claim EINVAL "create a non-canonical name" 'os.open(m + "/nodes/Person/%61lice.json", os.O_WRONLY | os.O_CREAT)'
claim EINVAL "truncate a node file to 0" 'os.truncate(f, 0)'
claim OK    "chmod to the same mode" 'os.chmod(f, 0o644)'
claim EPERM "chmod to another mode" 'os.chmod(f, 0o600)'
claim EPERM "chown to another owner" 'os.chown(f, 1, 1)'
claim OK    "utimes (ignored)" 'os.utime(f, (1, 1))'
claim EPERM "mkdir"           'os.mkdir(m + "/nodes/X")'
claim EPERM "rmdir of a node's directory" 'os.rmdir(d)'
claim EXDEV "rename across types" 'os.rename(f, m + "/nodes/Person/../../edges/Knows/x.json")'
claim EEXIST "rename onto another node" 'os.rename(f, m + "/nodes/Person/bob.json")'
claim EINVAL "rename with RENAME_EXCHANGE" '(lambda c: (lambda r: r == 0 or (_ for _ in ()).throw(OSError(c.get_errno(), "x")))(c.CDLL(None, use_errno=True).renameat2(-100, f.encode(), -100, (m + "/nodes/Person/bob.json").encode(), 2)))(__import__("ctypes"))'
claim EPERM "symlink in nodes/" 'os.symlink("x", m + "/nodes/l")'
claim EPERM "link"            'os.link(f, m + "/nodes/Person/l.json")'
claim EPERM "mknod (fifo)"    'os.mkfifo(m + "/nodes/Person/p")'
claim OK    "access R_OK"     'os.access(f, os.R_OK) or (_ for _ in ()).throw(OSError(errno.EACCES, "x"))'
claim OK    "access W_OK of a node file" 'os.access(f, os.W_OK) or (_ for _ in ()).throw(OSError(errno.EIO, "x"))'
# Extended attributes are not implemented.
claim ENOTSUP "getxattr"      'os.getxattr(f, "user.x")'
claim ENOTSUP "listxattr"     'os.listxattr(f)'
claim ENOTSUP "setxattr"      'os.setxattr(f, "user.x", b"1")' 
# Directory and name errors.
claim EISDIR  "read a directory" 'os.read(os.open(m + "/nodes", os.O_RDONLY), 1)'
claim ENOTDIR "lookup under a file" 'os.stat(f + "/x")'
claim ENAMETOOLONG "name over 255 bytes" 'os.stat(m + "/nodes/" + "a" * 300)'
claim ENOENT  "non-canonical escape" 'os.stat(m + "/nodes/Person/%61lice.json")'
claim ENOENT  "versions/0"    'os.stat(m + "/versions/0")'
claim ENOENT  "versions/01"   'os.stat(m + "/versions/01")'
claim ENOENT  "unknown type"  'os.stat(m + "/nodes/Nope")'
# Direct-I/O files cannot be mmapped; row and table files can.
claim ENODEV  "mmap log.jsonl" 'mmap.mmap(os.open(m + "/log.jsonl", os.O_RDONLY), 0, prot=mmap.PROT_READ)'
claim ENODEV  "mmap .graphfs/stats" 'mmap.mmap(os.open(m + "/.graphfs/stats", os.O_RDONLY), 0, prot=mmap.PROT_READ)'
claim OK      "mmap a node file" 'mmap.mmap(os.open(f, os.O_RDONLY), 0, prot=mmap.PROT_READ)'
# Things that succeed locally.
claim OK "fsync of a read-only fd"  'os.fsync(os.open(f, os.O_RDONLY))'
claim OK "flock (local to this host's kernel)" 'fcntl.flock(os.open(f, os.O_RDONLY), fcntl.LOCK_EX)'
claim OK "O_DIRECT read"     'os.read(os.open(f, os.O_RDONLY | os.O_DIRECT), 4096)'
claim OK "pread past EOF = 0 bytes" 'len(os.pread(os.open(f, os.O_RDONLY), 10, 1000)) == 0 or (_ for _ in ()).throw(OSError(errno.EIO, "x"))'
claim OK "statvfs: namemax 255, no blocks" '(lambda s: s.f_namemax == 255 and s.f_blocks == 0 or (_ for _ in ()).throw(OSError(errno.EIO, "x")))(os.statvfs(m))'
check "st_nlink is 1 for directories" test "$(stat -c %h "$M/nodes")" = 1
check "st_nlink is 1 for files" test "$(stat -c %h "$M/nodes/Person/alice.json")" = 1
check "directories report size 0" test "$(stat -c %s "$M/nodes/Person")" = 0
check "modes: live node files 644, type dirs 755, other dirs 555, other files 444, links 777, versions/ 444" test \
	"$(stat -c %a "$M/nodes/Person/alice.json" "$M/nodes/Person" "$M/nodes" "$M/schema.pg" "$M/HEAD" "$M/versions/2/nodes/Person/alice.json" | tr '\n' ' ')" = "644 755 555 444 777 444 "
check "HEAD is a relative link" test "$(readlink "$M/HEAD")" = versions/2
check "telldir/seekdir resume a listing" timeout 30 perl -e '
	opendir(D, $ARGV[0]) or die; readdir(D); readdir(D);
	my $p = telldir(D); my $x = readdir(D); readdir(D);
	seekdir(D, $p); exit(readdir(D) eq $x ? 0 : 1)' "$M/nodes/Person"
# .graphfs/ sizes are those of a read at stat time.
check ".graphfs/head size = content" test "$(stat -c %s "$M/.graphfs/head")" = "$(wc -c < "$M/.graphfs/head")"
check "log.jsonl size = content" test "$(stat -c %s "$M/log.jsonl")" = "$(wc -c < "$M/log.jsonl")"
finish

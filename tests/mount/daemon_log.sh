#!/bin/bash
# daemon_log.sh - a background mount's messages reach the system log
# (fuse/log.h; docs/mount.md "Messages"; issue 10, requirement 6: the reason
# of a refused write is in .graphfs/errors.jsonl and in the daemon's log).
# With -f the daemon writes to stderr; detached, stdio is /dev/null, so it
# logs through syslog(3).  The test listens on /dev/log itself (an
# AF_UNIX datagram socket, as syslogd does) when no syslog daemon owns it,
# and skips when one does (it never takes a real system's log socket).
. "$top_srcdir/tests/mount/lib_mount.sh"
if [ -e /dev/log ] || [ ! -w /dev ]; then
	echo "SKIP: /dev/log exists (a syslog daemon owns it) or /dev is not writable"
	exit 77
fi
LOG=$T/syslog.txt
: >"$LOG"
python3 - "$LOG" <<'PY' &
import os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind("/dev/log")
open(sys.argv[1] + ".ready", "w").close()
with open(sys.argv[1], "ab", buffering=0) as out:
    while True:
        out.write(s.recv(65536) + b"\n")
PY
LP=$!
trap 'kill $LP 2>/dev/null; rm -f /dev/log; cleanup' EXIT
wait_until 30 test -e "$LOG.ready" || { bad "the log listener did not start"; finish; exit; }

S=$T/s
M=$T/m
new_store "$S"
mount_gfs "$S" "$M" || { bad "mount"; finish; exit; }
printf '{"slug":"x","age":"old"}\n' >"$T/x.json"
check "a bad node file fails its close (cp reports it)" bash -c "! cp '$T/x.json' '$M/nodes/Person/x.json' 2>/dev/null"
check "the reason is in .graphfs/errors.jsonl" grep -q "Person 'x'" "$M/.graphfs/errors.jsonl"
check "the reason reached syslog as graphfs[PID]" wait_until 30 grep -q "graphfs\[[0-9]*\]: close nodes/Person/x.json: Invalid argument: Person 'x'" "$LOG"
umount_gfs "$M" || bad "unmount"
finish

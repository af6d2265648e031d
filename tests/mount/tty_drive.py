#!/usr/bin/env python3
"""tty_drive.py TIMEOUT CMD... < script - runs CMD on a pseudo-terminal and
plays a script of "expect TEXT" / "send BYTES" lines (BYTES with Python
escapes, e.g. \\x0f for ^O): each send waits until the screen output so far
holds the TEXT expected before it, bounded by TIMEOUT seconds per step
(tests/mount/write.sh drives nano with it; nothing waits by sleeping).
Exit status: CMD's, or 124 on a timeout."""
import os, pty, select, sys, time

def main():
    limit = float(sys.argv[1])
    cmd = sys.argv[2:]
    steps = [l.rstrip("\n").split(" ", 1) for l in sys.stdin if l.strip()]
    pid, fd = pty.fork()
    if pid == 0:
        os.environ["TERM"] = "xterm"
        os.execvp(cmd[0], cmd)
    seen = b""
    def read_until(text):
        nonlocal seen
        end = time.monotonic() + limit
        while text.encode() not in seen:
            left = end - time.monotonic()
            if left <= 0:
                return False
            r, _, _ = select.select([fd], [], [], left)
            if r:
                try:
                    chunk = os.read(fd, 65536)
                except OSError:
                    return False
                if not chunk:
                    return False
                seen += chunk
        return True
    for op, arg in steps:
        if op == "expect":
            if not read_until(arg):
                sys.stderr.write("tty_drive: timed out waiting for %r\n" % arg)
                os.kill(pid, 9)
                os.waitpid(pid, 0)
                return 124
            seen = b""
        elif op == "send":
            os.write(fd, arg.encode().decode("unicode_escape").encode("latin-1"))
    end = time.monotonic() + limit
    while time.monotonic() < end:
        p, st = os.waitpid(pid, os.WNOHANG)
        if p:
            return os.waitstatus_to_exitcode(st)
        r, _, _ = select.select([fd], [], [], 0.1)
        if r:
            try:
                os.read(fd, 65536)
            except OSError:  # the child closed the terminal: it is ending
                _, st = os.waitpid(pid, 0)
                return os.waitstatus_to_exitcode(st)
    os.kill(pid, 9)
    os.waitpid(pid, 0)
    return 124

sys.exit(main())

#!/usr/bin/env python3
"""timeit.py OUT CMD... - runs CMD with stdout to OUT ("-" = /dev/null) and
prints "<wall seconds> <peak RSS KiB>" (getrusage of the reaped child, so the
peak of CMD alone: each call is a fresh process).  Exits with CMD's status."""
import resource
import subprocess
import sys
import time

out = subprocess.DEVNULL if sys.argv[1] == "-" else open(sys.argv[1], "wb")
t = time.monotonic()
rc = subprocess.call(sys.argv[2:], stdout=out)
dt = time.monotonic() - t
print("%.3f %d" % (dt, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))
sys.exit(rc)

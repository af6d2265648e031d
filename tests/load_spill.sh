#!/bin/sh
# load_spill.sh - tests/unit/check_load again with a 4 KiB sort
# budget: every load of the runner spills sorted runs (GRAPHFS_LOAD_MEM_BYTES,
# src/load.c), so the merge path meets every message and mode test that the
# in-memory path meets in the plain run of check_load.
set -eu
: "${top_builddir:?run through make check}"
GRAPHFS_LOAD_MEM_BYTES=4096 exec "$top_builddir/tests/unit/check_load"

#!/bin/sh
# apply_diff_stress.sh - the long version of check_apply's "a batch gives
# what its changes give one by one" for `make stress`: GFS_APPLY_DIFF_ROUNDS
# (default 3000) random batches (GFS_APPLY_DIFF_SEED=N replays one, as the
# failure message names it).  Builds the runner if needed.
set -eu
: "${top_builddir:?run through make stress}"
make -C "$top_builddir" tests/unit/check_apply >/dev/null
GFS_APPLY_DIFF_ROUNDS=${GFS_APPLY_DIFF_ROUNDS:-3000}
CK_TIMEOUT_MULTIPLIER=${CK_TIMEOUT_MULTIPLIER:-10}
export GFS_APPLY_DIFF_ROUNDS CK_TIMEOUT_MULTIPLIER
echo "# apply diff: $GFS_APPLY_DIFF_ROUNDS rounds"
exec "$top_builddir/tests/unit/check_apply"

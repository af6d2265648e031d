#!/bin/sh
# apply_diff_stress.sh - the long version of check_apply's "a batch gives
# what its changes give one by one" for `make stress`: GFS_APPLY_DIFF_ROUNDS
# (default 3000) random batches (GFS_APPLY_DIFF_SEED=N replays one, as the
# failure message names it).  Builds the runner if needed.
set -eu
: "${top_builddir:?run through make stress}"
make -C "$top_builddir" tests/unit/check_apply >/dev/null
GFS_APPLY_DIFF_ROUNDS=${GFS_APPLY_DIFF_ROUNDS:-3000}
# Check's 120 s per test, times one per 100 rounds (at least 10): the
# bound follows the work, so a busy machine does not time it out (3000
# rounds beside two model runs took more than 10 x 120 s).
mult=$(( (GFS_APPLY_DIFF_ROUNDS + 99) / 100 ))
[ "$mult" -ge 10 ] || mult=10
CK_TIMEOUT_MULTIPLIER=${CK_TIMEOUT_MULTIPLIER:-$mult}
export GFS_APPLY_DIFF_ROUNDS CK_TIMEOUT_MULTIPLIER
echo "# apply diff: $GFS_APPLY_DIFF_ROUNDS rounds"
exec "$top_builddir/tests/unit/check_apply"

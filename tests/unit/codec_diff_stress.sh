#!/bin/sh
# codec_diff_stress.sh - the long version of check_codec_diff for `make
# stress`: GFS_CODEC_DIFF_MUTANTS (default 5,000,000) mutants from a printed
# seed (GFS_CODEC_DIFF_SEED replays).  Builds the runner if needed.
set -eu
: "${top_builddir:?run through make stress}"
make -C "$top_builddir" tests/unit/check_codec_diff >/dev/null
GFS_CODEC_DIFF_MUTANTS=${GFS_CODEC_DIFF_MUTANTS:-5000000}
export GFS_CODEC_DIFF_MUTANTS
exec "$top_builddir/tests/unit/check_codec_diff"

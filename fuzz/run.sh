#!/bin/sh
# run.sh HARNESS SECONDS SEEDS WORK - one libFuzzer run (make fuzz).
#   HARNESS  the built fuzz/fuzz_NAME program
#   SECONDS  wall-clock budget (-max_total_time)
#   SEEDS    the seed corpus in the repository (read, never written)
#   WORK     a build-directory corpus the run adds to; crashes and
#            differences land in WORK/../ as crash-* / leak-* files.
# Prints libFuzzer's final stats (execs/s); exits non-zero on a finding.
set -eu
h=$1 secs=$2 seeds=$3 work=$4
mkdir -p "$work"
echo "fuzz: $h for ${secs}s, seeds $seeds, corpus $work"
exec "$h" -max_total_time="$secs" -max_len=4096 -timeout=10 \
	-print_final_stats=1 -artifact_prefix="$(dirname "$work")/" \
	"$work" "$seeds"

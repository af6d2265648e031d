#!/bin/sh
# fuzz_short.sh - every libFuzzer harness of fuzz/ for a short time
# (FUZZ_CHECK_SECONDS each, default 10: about 60 s in all).  Part of
# `make check` only in a build configured with --enable-fuzz (CI's
# build-fuzz/, scripts/test.sh); `make fuzz` is the long run.  A crash,
# leak, timeout or broken property fails the test; the input is left in
# $top_builddir/fuzz-work/NAME/ (docs/testing.md, "Fuzzing").
set -eu
secs=${FUZZ_CHECK_SECONDS:-10}
fails=0
for h in codec schema jsonl table records names; do
	prog=$top_builddir/fuzz/fuzz_$h
	if ! sh "$top_srcdir/fuzz/run.sh" "$prog" "$secs" \
		"$top_srcdir/fuzz/corpus/$h" "$top_builddir/fuzz-work/$h/corpus" \
		>"$top_builddir/fuzz-work-$h.log" 2>&1; then
		echo "FAIL: fuzz_$h; its log:"
		tail -40 "$top_builddir/fuzz-work-$h.log"
		fails=$((fails + 1))
	fi
	grep -E '^(stat::number_of_executed_units|stat::average_exec_per_sec)|(INITED|DONE) +cov:' \
		"$top_builddir/fuzz-work-$h.log" | sed "s/^/fuzz_$h: /" | tail -3
done
echo "fuzz_short: 6 harnesses x ${secs}s, $fails failed"
test "$fails" = 0

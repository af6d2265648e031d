#!/bin/bash
# Builds graphfs with AddressSanitizer + UBSan and failpoints, runs every test
# (`make check`), then every libFuzzer harness of fuzz/ for 10 s each in
# build-fuzz/ (FUZZ_SECONDS; about 60 s in all)
# and the threaded load tests under ThreadSanitizer in build-tsan/, and
# prints a closing "N passed, N failed" line.
set -uo pipefail
cd "$(dirname "$0")/.."
./scripts/deps.sh || exit 1
set -e
autoreconf -fi >/dev/null 2>&1
mkdir -p build-test && cd build-test
../configure -q --enable-asan --enable-failpoints --enable-werror
make -j"$(nproc)" >/dev/null
set +e
make -j"$(nproc)" check
status=$?
set -e
log=test-suite.log
pass=$(sed -n 's/^# PASS: *//p' $log | head -1)
fail=$(sed -n 's/^# FAIL: *//p' $log | head -1)
err=$(sed -n 's/^# ERROR: *//p' $log | head -1)
xpass=$(sed -n 's/^# XPASS: *//p' $log | head -1)
skip=$(sed -n 's/^# SKIP: *//p' $log | head -1)
if [ "$status" -ne 0 ]; then
	for f in $(find . -name '*.log' ! -name test-suite.log ! -name config.log); do
		grep -qE '^:test-result: (FAIL|ERROR)' "${f%.log}.trs" 2>/dev/null && { echo "==== $f"; tail -60 "$f"; }
	done
fi
# A short libFuzzer run of every harness (issues 9, 12: the codec paths
# against each other, the schema parser, the JSONL decoder, the table and
# manifest-record readers, the file-name encoding; fuzz/, docs/testing.md):
# `make fuzz` is what tests/fuzz_short.sh runs in a fuzz build's make
# check; it counts as one more test.
set +e
cd ..
fuzz_log=build-fuzz/fuzz.log
mkdir -p build-fuzz
( cd build-fuzz && ../configure -q --enable-fuzz --enable-werror &&
  make -j"$(nproc)" fuzz/fuzz_codec fuzz/fuzz_schema fuzz/fuzz_jsonl \
		fuzz/fuzz_table fuzz/fuzz_records fuzz/fuzz_names >/dev/null &&
  make -k fuzz FUZZ_SECONDS="${FUZZ_SECONDS:-10}" ) >"$fuzz_log" 2>&1
fuzz_rc=$?
grep -E '^(fuzz: |INFO: Seed: |stat::(number_of_executed_units|average_exec_per_sec))|DONE +cov:' "$fuzz_log"
if [ "$fuzz_rc" -eq 0 ]; then
	pass=$(( ${pass:-0} + 1 ))
else
	# Each finding's report, and its input in base64 (a CI machine's
	# build directory is gone afterwards): save it as
	# fuzz/corpus/<harness>/regress-<what> (docs/testing.md, "Fuzzing").
	echo "==== $fuzz_log (fuzz run failed: rc $fuzz_rc)"
	awk '/^fuzz: /{h=$0} /ERROR: (libFuzzer|AddressSanitizer|LeakSanitizer)|runtime error:|==ERROR/{if(!p)print "-- " h; p=1; n=0}
	     p && n++ < 60 {print} /Test unit written to/{p=0}' "$fuzz_log"
	for a in build-fuzz/fuzz-work/*/crash-* build-fuzz/fuzz-work/*/leak-* \
		 build-fuzz/fuzz-work/*/oom-* build-fuzz/fuzz-work/*/timeout-*; do
		[ -f "$a" ] || continue
		echo "-- $a ($(wc -c <"$a") bytes), base64:"; head -c 8192 "$a" | base64
	done
	fail=$(( ${fail:-0} + 1 ))
	[ "$status" -ne 0 ] || status=$fuzz_rc
fi
# The load's threads (parse workers, tables finished on a thread, the
# builder's spiller) under ThreadSanitizer: the tests that run them, in
# build-tsan/; each counts as one more test.
tsan_tests="tests/load_threads.sh tests/load_spill.sh tests/unit/check_load tests/unit/check_table tests/unit/check_xsort"
tsan_log=build-tsan/tsan.log
mkdir -p build-tsan
( cd build-tsan && ../configure -q --enable-tsan --enable-werror &&
  make -j"$(nproc)" >/dev/null &&
  TSAN_OPTIONS=halt_on_error=1 make -j"$(nproc)" check TESTS="$tsan_tests" ) >"$tsan_log" 2>&1
tsan_rc=$?
tsan_pass=$(sed -n 's/^# PASS: *//p' build-tsan/test-suite.log 2>/dev/null | head -1)
echo "tsan: ${tsan_pass:-0} of $(echo $tsan_tests | wc -w) passed (rc $tsan_rc)"
pass=$(( ${pass:-0} + ${tsan_pass:-0} ))
if [ "$tsan_rc" -ne 0 ]; then
	echo "==== $tsan_log (ThreadSanitizer run failed: rc $tsan_rc)"; tail -60 "$tsan_log"
	for f in $(find build-tsan/tests -name '*.log' 2>/dev/null); do
		grep -qE '^:test-result: (FAIL|ERROR)' "${f%.log}.trs" 2>/dev/null && { echo "==== $f"; tail -60 "$f"; }
	done
	fail=$(( ${fail:-0} + $(echo $tsan_tests | wc -w) - ${tsan_pass:-0} ))
	[ "$status" -ne 0 ] || status=$tsan_rc
fi
echo "${pass:-0} passed, $(( ${fail:-0} + ${err:-0} + ${xpass:-0} )) failed, ${skip:-0} skipped"
exit $status

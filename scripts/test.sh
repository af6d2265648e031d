#!/bin/bash
# Builds graphfs with AddressSanitizer + UBSan and failpoints, runs every test
# (`make check`), and prints a closing "N passed, N failed" line.
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
		grep -qE '^(FAIL|ERROR)' "${f%.log}.trs" 2>/dev/null && { echo "==== $f"; tail -60 "$f"; }
	done
fi
echo "${pass:-0} passed, $(( ${fail:-0} + ${err:-0} + ${xpass:-0} )) failed, ${skip:-0} skipped"
exit $status

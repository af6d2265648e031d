#!/bin/bash
# lint_failpoints.sh - the failpoint catalog stays honest (STYLE.md):
#  1. no call site passes anything but a catalog enum to gfs_fp_hit()
#     (a string literal would bypass the compile-time check);
#  2. every catalog name is spelled exactly once in src/failpoints.h;
#  3. every catalog entry is enabled by at least one test, and (in a
#     failpoint build, as part of `make check`) fired in at least one test
#     run: src/failpoints.c appends each armed point that fires to
#     $GRAPHFS_FP_COVERAGE, which `make check` empties before its tests and
#     this lint reads after all of them (Makefile.am).  A point a test arms
#     but no run reaches is not covered.
set -euo pipefail
: "${top_srcdir:?}"
cd "$top_srcdir"
fails=0
bad() { echo "FAIL - $*"; fails=$((fails + 1)); }

# 1. call sites hand gfs_fp_hit() an enum gfs_fp (a typed parameter, so a
#    string does not compile); nothing outside failpoints.c talks to libfiu
#    directly, and no failpoint API ever sees a string literal.
while IFS= read -r hit; do
	bad "libfiu called outside src/failpoints.c: $hit"
done < <(grep -rnE '\bfiu_[a-z_]+\(' src fuse tools | grep -vE '^src/failpoints\.c:' || true)
while IFS= read -r hit; do
	bad "string literal handed to a failpoint API: $hit"
done < <(grep -rnE '(fiu_[a-z_]+|gfs_fp_hit)\(\s*"' src fuse tools | grep -vE '^src/failpoints\.c:' || true)
while IFS= read -r hit; do
	bad "failpoint hit with something other than an identifier: $hit"
done < <(grep -rnE 'gfs_fp_hit\(' src fuse tools |
	 grep -vE '^src/failpoints\.h:' | grep -vE 'gfs_fp_hit\((enum gfs_fp [a-z_]+|GFS_FP_[A-Z0-9_]+|[a-z_]+)\)' || true)

# 2 and 3. the catalog
names=$(sed -n 's/.*X([A-Z0-9_]*, *"\([^"]*\)").*/\1/p' src/failpoints.h)
[ -n "$names" ] || bad "no catalog entries parsed from src/failpoints.h"
cov=${GRAPHFS_FP_COVERAGE:-}
fp_build=false
grep -q '^#define GFS_FAILPOINTS_ENABLED' "${top_builddir:-.}/config.h" 2>/dev/null && fp_build=true
if $fp_build && [ -n "$cov" ] && [ ! -e "$cov" ]; then
	echo "note: no failpoint fired in this run ($cov absent): coverage is judged only when the lint runs with the suite (make check)"
	cov=""
fi
[ -n "$cov" ] && ! $fp_build && cov=""
covered=0
for n in $names; do
	c=$(grep -c "\"$n\"" src/failpoints.h)
	[ "$c" = 1 ] || bad "catalog name '$n' spelled $c times in src/failpoints.h"
	if ! grep -rqF --include='*.sh' --include='*.c' --include='*.py' \
		--exclude=lint_failpoints.sh -e "$n" tests; then
		bad "catalog entry '$n' is enabled by no test"
	fi
	if [ -n "$cov" ]; then
		if grep -q "^$n " "$cov"; then
			covered=$((covered + 1))
		else
			bad "catalog entry '$n' is armed by no test run that reaches it (not in $cov)"
		fi
	fi
done
echo "lint_failpoints: $(echo "$names" | wc -w) catalog entries checked, ${cov:+$covered fired in this run, }$fails problem(s)"
[ -n "$cov" ] || { [ "$fails" = 0 ] && $fp_build && exit 77; }
exit $((fails > 0))

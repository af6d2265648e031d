#!/bin/bash
# lint_failpoints.sh - the failpoint catalog stays honest (STYLE.md):
#  1. no call site passes anything but a catalog enum to gfs_fp_hit()
#     (a string literal would bypass the compile-time check);
#  2. every catalog name is spelled exactly once in src/failpoints.h;
#  3. every catalog entry is enabled by at least one test.
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
for n in $names; do
	c=$(grep -c "\"$n\"" src/failpoints.h)
	[ "$c" = 1 ] || bad "catalog name '$n' spelled $c times in src/failpoints.h"
	if ! grep -rqF --include='*.sh' --include='*.c' --include='*.py' \
		--exclude=lint_failpoints.sh -e "$n" tests; then
		bad "catalog entry '$n' is enabled by no test"
	fi
done
echo "lint_failpoints: $(echo "$names" | wc -w) catalog entries checked, $fails problem(s)"
exit $((fails > 0))

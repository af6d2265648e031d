# tests/powercut/pclib.sh - shared by the power-cut tests (bash; source it
# after tests/crash/crashlib.sh).
#
#   pc_check NAME [powercut.py options] -- WRITER ARGS...   (@S = the store
#       at $T/NAME/w/s, @M = a mount point)
#   pc_summary FILE    the totals of the "NAME: seed ..." lines in FILE
#
# The recorder is built here, without sanitizers, by the C compiler of the
# build (CC from the environment, else cc).  Under an ASan build the
# sanitizer runtime must come first in LD_PRELOAD: PC_PRELOAD holds it.

PC_DIR=$top_srcdir/tests/powercut

# powercut.py unmounts every mount it makes; if it is killed (timeout),
# whatever it left mounted under $T goes before crashlib's cleanup.
pc_cleanup() {
	local m
	for m in $(awk -v t="$T/" 'index($2, t) == 1 { print $2 }' /proc/mounts); do
		timeout 20 fusermount3 -u "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
	done
	cleanup
}
trap pc_cleanup EXIT
PC_REC=$T/record.so
${CC:-cc} -O1 -fPIC -shared -o "$PC_REC" "$PC_DIR/record.c" -ldl -lpthread ||
	{ echo "cannot build the recorder"; exit 1; }
PC_PRELOAD=$(ldd "$GRAPHCTL" | awk '/lib(a|ub)san/ { printf "%s%s", sep, $3; sep=":" }')

pc_check() {
	local name=$1 rc=0 keep
	shift
	with_timeout 900 python3 "$PC_DIR/powercut.py" --work "$T/$name" \
		--name "$name" --recorder "$PC_REC" --preload "$PC_PRELOAD" \
		"$@" >"$T/$name.out" || rc=$?
	case " $* " in *" --expect-fail "*) cat "$T/$name.out"; return $rc ;; esac
	if [ "$rc" != 0 ] && [ -f "$T/$name/trace.log" ]; then
		# The test's directory goes on exit: keep what a replay needs.
		keep=$(mktemp -d "${TMPDIR:-/tmp}/gfs-powercut-$name.XXXXXX")
		cp -a "$T/$name/base" "$T/$name/w" "$T/$name/trace.log" "$keep/"
		cp -a "$T"/*.pg "$T"/*.jsonl "$keep/" 2>/dev/null || true
		sed "s|$T/$name|$keep|g; s|$T/|$keep/|g" "$T/$name.out"
		echo "  (trace kept in $keep)"
	else
		cat "$T/$name.out"
	fi
	return $rc
}

pc_summary() {
	python3 - "$1" <<'PY'
import re, sys
w = c = s = f = v = 0
for line in open(sys.argv[1]):
    m = re.search(r"(\d+) cut points, (\d+) states built, (\d+) unique, "
                  r"(\d+) checked .* (\d+) failed, (\d+) lost a version", line)
    if m:
        w += 1; c += int(m[1]); s += int(m[4]); f += int(m[5]); v += int(m[6])
print("# power loss: writers %d, cut points %d, crash states checked %d, "
      "violations %d, versions lost: %d" % (w, c, s, f, v))
PY
}

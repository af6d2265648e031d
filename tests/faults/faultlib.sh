# tests/faults/faultlib.sh - the fault shim for shell tests (bash; source it
# after tests/crash/crashlib.sh or tests/mount/lib_mount.sh, which set T).
#
#   fi_env KIND:N:ACTION STORE REPORT   sets FI_ENV (an env(1) argument list)
#   env "${FI_ENV[@]}" "$GRAPHCTL" ...   one run under the shim
#   fi_counts REPORT                     "kind=calls ..." of a counting run
#   fi_verdict RC STDERR REPORT KIND     why a faulted run is wrong (status 1)
#
# The shim (tests/faults/faultinj.c) is built here with the plain C
# compiler, never with sanitizers; for an ASan build of graphctl/graphfs it
# is preloaded after libasan.

FI_SO=$T/faultinj.so
${CC:-cc} -O2 -shared -fPIC -o "$FI_SO" "$top_srcdir/tests/faults/faultinj.c" -ldl ||
	{ echo "cannot build the fault shim"; exit 1; }
FI_PRELOAD=$FI_SO
_fi_asan=$(ldd "${GRAPHCTL:?}" 2>/dev/null | awk '/libasan/ { print $3 }')
[ -n "$_fi_asan" ] && FI_PRELOAD=$_fi_asan:$FI_SO
FI_ASAN=${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0

# fi_env SPEC STORE REPORT: SPEC empty = count only.
fi_env() {
	FI_ENV=(LD_PRELOAD="$FI_PRELOAD" ASAN_OPTIONS="$FI_ASAN"
		GFS_FAULT_DIR="$2" GFS_FAULT_REPORT="$3")
	[ -n "$1" ] && FI_ENV+=(GFS_FAULT="$1")
	return 0
}

# fi_counts REPORT: "kind=calls" for every kind the run made, in the order
# the shim lists them (summed over processes).
fi_counts() {
	awk '$1 == "count" {
		split($3, k, "="); split($4, c, "=")
		if (!(k[2] in n)) order[++m] = k[2]
		n[k[2]] += c[2]
	} END { for (i = 1; i <= m; i++) printf "%s=%d\n", order[i], n[order[i]] }' "$1"
}

# fi_hash STRING: a number from a string (cksum), for seeded choices.
fi_hash() {
	printf '%s' "$1" | cksum | cut -d' ' -f1
}

# fi_actions SEED.KEY KIND: the actions for KIND, the seeded one first.
fi_actions() {
	local a
	case $2 in
	write | pwrite | writev | pwritev) a=(EIO ENOSPC EDQUOT short) ;;
	*) a=(EIO ENOSPC EDQUOT) ;;
	esac
	local i=$(( $(fi_hash "$1") % ${#a[@]} )) j
	for j in $(seq 0 $((${#a[@]} - 1))); do
		echo "${a[$(( (i + j) % ${#a[@]} ))]}"
	done
}

# fi_picks SEED KEY COUNT K: N values to fail, in 1..COUNT: the first, the
# last and K seeded picks, sorted and unique.
fi_picks() {
	awk -v s="$(fi_hash "$1.$2")" -v c="$3" -v k="$4" 'BEGIN {
		srand(s % 2147483647); p[1] = 1; p[c] = 1
		for (i = 0; i < k; i++) p[1 + int(rand() * c)] = 1
		for (n in p) print n
	}' | sort -n
}

# fi_op_words KIND PATH: the words (ERE) a message about KIND on PATH may
# use for the operation.  LMDB does not say which system call failed: its
# failures say open/begin/commit of the manifest.
fi_op_words() {
	case $2 in
	*/manifest/*) echo 'open|begin|commit|manifest|lmdb'; return ;;
	esac
	case $1 in
	write | pwrite | writev | pwritev) echo 'write' ;;
	fsync | fdatasync) echo 'fsync' ;;
	link | linkat) echo 'link' ;;
	rename | renameat) echo 'rename' ;;
	unlink | unlinkat) echo 'unlink' ;;
	open | openat) echo 'open|create|read' ;;
	mkdir) echo 'mkdir' ;;
	mmap) echo 'mmap|open' ;;
	ftruncate) echo 'truncate' ;;
	read | pread) echo 'read' ;;
	*) echo "$1" ;;
	esac
}

# fi_verdict RC STDERR REPORT KIND: prints why the run is wrong and returns
# 1, or returns 0.  "CRASH" leads the reason of a crash.
fi_verdict() {
	local rc=$1 err=$2 rep=$3 kind=$4 path dir words
	if [ "$rc" -ge 124 ]; then
		echo "CRASH: exit $rc (signal or timeout)"
		return 1
	fi
	if grep -Eq 'Sanitizer|runtime error:|Assertion .* failed' "$err"; then
		echo "CRASH: sanitizer report or assertion"
		return 1
	fi
	path=$(sed -n 's/^fired .* path=//p' "$rep" | head -1)
	path=${path% (deleted)}
	if [ "$rc" = 0 ]; then
		# A failed LMDB commit is aborted and a new transaction rewrites
		# every page it references before its own fdatasync, so a writer
		# may retry the transaction; a table file or directory whose fsync
		# failed must never be trusted.
		case $kind:$path in
		fsync:*/manifest/* | fdatasync:*/manifest/*) ;;
		fsync:* | fdatasync:*)
			echo "exit 0 after a failed $kind (fsyncgate: never retried or ignored)"
			return 1 ;;
		esac
		return 0
	fi
	# The exact file, except inside LMDB (which does not say which of its
	# files failed: the manifest directory then).
	case $path in
	*/manifest/*) dir=${path%/*} ;;
	*) dir=$path ;;
	esac
	words=$(fi_op_words "$kind" "$path")
	if ! grep -qF -- "$dir" "$err"; then
		echo "exit $rc but stderr does not name '$dir' (the fault hit '$path')"
		return 1
	fi
	if ! grep -Eqi -- "$words" "$err"; then
		echo "exit $rc but stderr does not name the operation ($words)"
		return 1
	fi
	return 0
}

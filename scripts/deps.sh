#!/bin/bash
# Installs the Debian 12 packages graphfs needs to build, test, fuzz, run and
# benchmark (restic: a scenario of `make bench`; libzstd-dev and liblz4-dev:
# the compression study of `make bench-compress`; etcd-server, etcd-client:
# the etcd tests' own clusters, tests/etcd/cluster.sh).
set -euo pipefail
pkgs=(build-essential autoconf automake libtool pkg-config
      libfuse3-dev fuse3 liblmdb-dev lmdb-utils libfiu-dev fiu-utils
      check libsubunit-dev libjansson-dev libxxhash-dev
      rsync tar coreutils findutils procps psmisc util-linux bsdutils python3 jq git xxd
      vim nano   # tests/mount: writes through the mount with real editors (issue 10)
      strace     # tests/crash/commit_no_listing.sh: counts a commit's directory listings
      restic libzstd-dev liblz4-dev
      clang libclang-rt-14-dev   # --enable-fuzz: clang's libFuzzer (scripts/test.sh)
      libcurl4-openssl-dev       # src/etcd.c: etcd's v3 JSON gateway over HTTP (issue 13)
      etcd-server etcd-client)   # tests/etcd: a real 3-member cluster (etcd 3.4); etcdctl for tests only
missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
	SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo
	export DEBIAN_FRONTEND=noninteractive
	$SUDO apt-get update -qq
	$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

#!/usr/bin/env bash
# Measures what the build sandbox costs: examples/web.toml → qcow2 built by
# the kiln of an earlier revision (BEFORE, default: the last commit before
# the user-namespace sandbox) and by this checkout's kiln, alternating, in
# one run. Each build starts from a cache that holds only the downloaded
# packages and the repository metadata, so the mirror is not measured.
# RUNS=2 builds each twice; prints every wall time and the medians.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"
runs=${RUNS:-2}
before=${BEFORE:-7007f05}
tmp=$(mktemp -d /var/tmp/kiln-bench-sandbox.XXXXXX)
trap 'git worktree remove --force "$tmp/before-src" 2>/dev/null || true; rm -rf "$tmp"' EXIT

go build -o "$tmp/kiln-after" ./cmd/kiln
git worktree add -q --detach "$tmp/before-src" "$before"
(cd "$tmp/before-src" && go build -o "$tmp/kiln-before" ./cmd/kiln)

# One build fills the package cache both sides start from.
seed=$tmp/seed
"$tmp/kiln-after" --cache-dir "$seed" build -b examples/web.toml -t qcow2 --distro debian-12 -o "$tmp/out-seed" --progress none >/dev/null
rm -rf "$seed/trees" "$seed/files" "$seed/work"

results=$tmp/results
for i in $(seq "$runs"); do
	for side in before after; do
		cache=$tmp/cache-$side-$i
		cp -a -l "$seed" "$cache"
		/usr/bin/time -o "$tmp/time" -f '%e' "$tmp/kiln-$side" --cache-dir "$cache" build -b examples/web.toml -t qcow2 \
			--distro debian-12 -o "$tmp/out-$side-$i" --progress none >/dev/null 2>"$tmp/err" || { cat "$tmp/err" >&2; exit 1; }
		echo "$side $(cat "$tmp/time")" | tee -a "$results"
		rm -rf "$cache"
	done
done
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
b=$(awk '$1=="before" {print $2}' "$results" | median)
a=$(awk '$1=="after" {print $2}' "$results" | median)
awk -v b="$b" -v a="$a" -v r="$before" 'BEGIN {printf "median wall: before (%s) %.1f s, sandboxed %.1f s, overhead %+.1f %%\n", r, b, a, (a-b)*100/b}'

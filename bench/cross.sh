#!/usr/bin/env bash
# Cross build against native build, in one run: examples/base.toml → qcow2
# for this host's architecture and for the other one (through qemu-user),
# each into an empty build cache (downloaded packages are shared, and
# fetched before timing, so the mirror's speed is not measured). Then the
# foreign image is booted under TCG and the time to SSH is taken from
# `kiln boot-test`. Prints both build times, their ratio and the stages
# that take longest under emulation.
#   RUNS=3 repeats the builds (medians).
#   DEBS=DIR uses DIR as the shared package directory (a build cache's
#   debs/ that holds both architectures' packages already) and skips the
#   untimed warm-up builds that would fill it.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"
runs=${RUNS:-1}
go build -o bin/kiln ./cmd/kiln
host=$(uname -m)
case "$host" in x86_64) foreign=aarch64 ;; aarch64) foreign=x86_64 ;; *) echo "cross.sh: unknown host $host" >&2; exit 1 ;; esac
tmp=$(mktemp -d /var/tmp/kiln-bench.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
if [ -n "${DEBS:-}" ]; then ln -s "$(realpath "$DEBS")" "$tmp/debs"; else mkdir -p "$tmp/debs"; fi
ssh-keygen -q -t ed25519 -N '' -C kiln-bench -f "$tmp/id_ed25519"
cp examples/base.toml "$tmp/base.toml"
printf '\n[[customizations.sshkey]]\nuser = "root"\nkey = "%s"\n' "$(cat "$tmp/id_ed25519.pub")" >>"$tmp/base.toml"

seconds() { # cmd...: prints the wall time of cmd in seconds
	/usr/bin/time -o "$tmp/time" -f '%e' "$@" >/dev/null 2>"$tmp/err" || { cat "$tmp/err" >&2; return 1; }
	cat "$tmp/time"
}
build() { # arch run: a cold build into its own cache
	local cache=$tmp/cache-$1-$2
	mkdir -p "$cache"
	ln -sfn "$tmp/debs" "$cache/debs"
	seconds bin/kiln --cache-dir "$cache" build -b "$tmp/base.toml" -t qcow2 --distro debian-12 --arch "$1" -o "$tmp/out-$1" --force --progress plain
	cp "$tmp/err" "$tmp/progress-$1"
}

# Warm the shared package directory for both architectures (not timed).
if [ -z "${DEBS:-}" ]; then
	for a in "$host" "$foreign"; do build "$a" warmup >/dev/null; rm -rf "$tmp/cache-$a-warmup"; done
fi

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
for i in $(seq "$runs"); do
	echo "native $(build "$host" "$i")" >>"$tmp/results"
	echo "cross $(build "$foreign" "$i")" >>"$tmp/results"
	rm -rf "$tmp/cache-$host-$i" "$tmp/cache-$foreign-$i"
done
native=$(awk '$1=="native" {print $2}' "$tmp/results" | median)
cross=$(awk '$1=="cross" {print $2}' "$tmp/results" | median)
printf '%-28s %8s s\n' "native $host qcow2" "$native" "cross $foreign qcow2" "$cross"
awk -v n="$native" -v c="$cross" 'BEGIN {printf "%-28s %8.2f x\n", "cross / native", c / n}'
echo "slowest stages of the cross build:"
grep -E '^\[[0-9]+/[0-9]+\] .* [0-9.]+s$' "$tmp/progress-$foreign" | awk '{print $NF, $3}' | sort -rn | head -4

start=$(date +%s.%N)
bin/kiln boot-test "$tmp/out-$foreign/base-debian-12-$foreign.qcow2" --ssh-key "$tmp/id_ed25519" --user root \
	--check 'uname -m' --check hostname >"$tmp/boot.log" 2>&1 || { cat "$tmp/boot.log" >&2; exit 1; }
end=$(date +%s.%N)
awk -v s="$start" -v e="$end" 'BEGIN {printf "%-28s %8.1f s (TCG, to a working SSH login and the checks)\n", "boot-test '"$foreign"'", e - s}'

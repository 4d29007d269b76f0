#!/usr/bin/env bash
# Build time and output size of every image type for examples/base.toml:
#   cold   an empty build cache (downloaded packages are shared between the
#          types, so the mirror's speed is not measured)
#   warm   the same cache, the host name changed: the package installation
#          is reused and every stage after it, and the output, run again
# Prints one row per type: seconds cold, seconds warm, the output's size in
# bytes and the disk space it takes (sparse files take less).
# TYPES="qcow2 vhd" limits the run to those types.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"
types=${TYPES:-"qcow2 raw raw-xz raw-zst ami ami-xz vhd gce vmdk ova tar wsl container live-iso image-installer"}
go build -o bin/kiln ./cmd/kiln
tmp=$(mktemp -d /var/tmp/kiln-bench.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/debs"
cp examples/base.toml "$tmp/base.toml"
sed 's/^hostname = "base01"/hostname = "base02"/' examples/base.toml >"$tmp/renamed.toml"

seconds() { # cmd...: prints the wall time of cmd in seconds
	/usr/bin/time -o "$tmp/time" -f '%e' "$@" >/dev/null 2>"$tmp/err" || { cat "$tmp/err" >&2; return 1; }
	cat "$tmp/time"
}

printf '%-16s %8s %8s %14s %14s  %s\n' type "cold s" "warm s" "size bytes" "on disk bytes" file
for t in $types; do
	cache=$tmp/cache-$t
	mkdir -p "$cache"
	ln -s "$tmp/debs" "$cache/debs"
	cold=$(seconds bin/kiln --cache-dir "$cache" build -b "$tmp/base.toml" -t "$t" --distro debian-12 -o "$tmp/out-$t" --progress none)
	file=$(ls "$tmp/out-$t" | grep -v -e '\.manifest\.json$' -e '\.spdx\.json$' -e '\.build\.log$')
	size=$(stat -c %s "$tmp/out-$t/$file")
	disk=$(( $(stat -c %b "$tmp/out-$t/$file") * 512 ))
	warm=$(seconds bin/kiln --cache-dir "$cache" build -b "$tmp/renamed.toml" -t "$t" --distro debian-12 -o "$tmp/out-$t" --force --progress none)
	printf '%-16s %8s %8s %14s %14s  %s\n' "$t" "$cold" "$warm" "$size" "$disk" "$file"
	rm -rf "$cache" "$tmp/out-$t"
done

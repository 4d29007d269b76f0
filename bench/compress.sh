#!/usr/bin/env bash
# Measures each compressor as kiln runs it, on real inputs, before (the
# commands kiln ran until the presets were chosen) and after (the commands
# of internal/engine/stages/tar.go), printing wall time, CPU time (user +
# system, which a busy machine disturbs less than the wall time) and size.
#
# Inputs, each optional:
#   TREE_TAR=file   an uncompressed tar of a root tree (what the tar and wsl
#                   types compress)
#   DISK=file       a raw disk image, sparse as kiln writes it (what raw-xz,
#                   ami-xz, raw-zst and gce compress)
# With neither, it builds examples/base.toml once as `tar` and as `raw`
# with bin/kiln into a temporary cache and uses the tar inside the tar.xz
# and the raw disk.
#
# THREADS (default: every processor) is the thread count kiln would use.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"
threads=${THREADS:-$(nproc)}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/kiln-compress.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

if [ -z "${TREE_TAR:-}" ] && [ -z "${DISK:-}" ]; then
	go build -o bin/kiln ./cmd/kiln
	for t in tar raw; do
		bin/kiln --cache-dir "$tmp/cache" build -b examples/base.toml -t $t --distro debian-12 -o "$tmp/out" --progress none >/dev/null
	done
	TREE_TAR=$tmp/tree.tar
	xz -d -c "$tmp"/out/*.tar.xz >"$TREE_TAR"
	DISK=$(ls "$tmp"/out/*.raw)
fi

# run label input cmd...: compresses input with cmd, prints one row.
run() {
	local label=$1 input=$2
	shift 2
	/usr/bin/time -o "$tmp/time" -f '%e %U %S' "$@" <"$input" >"$tmp/out.bin"
	read -r wall user sys <"$tmp/time"
	printf '%-34s %8.1f %8.1f %12d\n' "$label" "$wall" "$(awk -v u="$user" -v s="$sys" 'BEGIN {print u + s}')" "$(stat -c %s "$tmp/out.bin")"
}

printf 'load: %s\n' "$(cat /proc/loadavg)"
printf '%-34s %8s %8s %12s\n' "codec as run" "wall s" "cpu s" "bytes"
if [ -n "${TREE_TAR:-}" ]; then
	printf 'tree tar: %d bytes\n' "$(stat -c %s "$TREE_TAR")"
	run "before xz -T0 (preset 6)" "$TREE_TAR" xz -T0 -c
	run "after xz -1 8MiB blocks" "$TREE_TAR" xz --threads="$threads" -1 --block-size=8MiB --no-adjust -c
	run "before gzip -n" "$TREE_TAR" gzip -n -c
	run "after pigz -6 -n" "$TREE_TAR" pigz --processes "$threads" -6 -n -c
	run "zstd -3 (before and after)" "$TREE_TAR" zstd -T"$threads" -3 -q -c
fi
if [ -n "${DISK:-}" ]; then
	printf 'disk: %d bytes, %d allocated\n' "$(stat -c %s "$DISK")" "$(($(stat -c '%b * %B' "$DISK")))"
	run "before xz -T0 (preset 6)" "$DISK" xz -T0 -c
	run "after xz -1 8MiB blocks" "$DISK" xz --threads="$threads" -1 --block-size=8MiB --no-adjust -c
	run "zstd -3 (before and after)" "$DISK" zstd -T"$threads" -3 -q -c
	# gce: disk.raw in a sparse oldgnu tar, gzip'd.
	ln -s "$(realpath "$DISK")" "$tmp/disk.raw"
	tar --create --file="$tmp/gce.tar" --directory="$tmp" --format=oldgnu --dereference --sparse disk.raw
	printf 'gce tar: %d bytes\n' "$(stat -c %s "$tmp/gce.tar")"
	run "gce before gzip -n" "$tmp/gce.tar" gzip -n -c
	run "gce after pigz -6 -n" "$tmp/gce.tar" pigz --processes "$threads" -6 -n -c
fi
printf 'load: %s\n' "$(cat /proc/loadavg)"

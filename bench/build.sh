#!/usr/bin/env bash
# Measures `kiln build` for examples/base.toml → qcow2 against the
# hand-rolled baseline (bench/baseline.sh) in one run:
#   kiln cold        empty cache (packages downloaded, everything built)
#   kiln no change   the same build again
#   kiln hostname    only the hostname changed
#   baseline cold    mmdebstrap + sfdisk + mkfs + GRUB + qemu-img, no cache
# Prints wall times, kiln's own peak RSS (from its build log), the largest
# process's peak RSS, and image sizes. RUNS=3 repeats each case (medians).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"
runs=${RUNS:-1}
go build -o bin/kiln ./cmd/kiln
tmp=$(mktemp -d /var/tmp/kiln-bench.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
sed 's/^hostname = "base01"/hostname = "base02"/' examples/base.toml >"$tmp/base-renamed.toml"
cp examples/base.toml "$tmp/base.toml"

timed() { # label cmd...: prints "label wall maxrss"
	local label=$1; shift
	/usr/bin/time -o "$tmp/time" -f '%e %M' "$@" >/dev/null 2>"$tmp/err" || { cat "$tmp/err" >&2; return 1; }
	echo "$label $(cat "$tmp/time")"
}

results=$tmp/results
for i in $(seq "$runs"); do
	cache=$tmp/cache-$i
	timed "kiln-cold" bin/kiln --cache-dir "$cache" build -b "$tmp/base.toml" -t qcow2 --distro debian-12 -o "$tmp/out-$i" --progress none >>"$results"
	grep -o "peak memory [0-9]* kB" "$tmp/out-$i"/base-debian-12-x86_64.build.log | awk -v l=kiln-rss '{print l, $3}' >>"$results"
	timed "kiln-nochange" bin/kiln --cache-dir "$cache" build -b "$tmp/base.toml" -t qcow2 --distro debian-12 -o "$tmp/out-$i" --force --progress none >>"$results"
	timed "kiln-hostname" bin/kiln --cache-dir "$cache" build -b "$tmp/base-renamed.toml" -t qcow2 --distro debian-12 -o "$tmp/out-$i" --force --progress none >>"$results"
	stat -c 'kiln-qcow2-bytes %s' "$tmp/out-$i"/base-debian-12-x86_64.qcow2 >>"$results"
	timed "baseline-cold" bench/baseline.sh "$tmp/baseline-$i.qcow2" >>"$results"
	stat -c 'baseline-qcow2-bytes %s' "$tmp/baseline-$i.qcow2" >>"$results"
	rm -rf "$cache"
done

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
printf '%-22s %10s %16s\n' case "wall (s)" "largest RSS (MB)"
for c in kiln-cold kiln-nochange kiln-hostname baseline-cold; do
	w=$(awk -v c=$c '$1==c {print $2}' "$results" | median)
	r=$(awk -v c=$c '$1==c {print $3/1024}' "$results" | median)
	printf '%-22s %10s %16.1f\n' "$c" "$w" "$r"
done
printf 'kiln own peak RSS: %s kB\n' "$(awk '$1=="kiln-rss" {print $2}' "$results" | median)"
printf 'qcow2 size: kiln %s bytes, baseline %s bytes\n' \
	"$(awk '$1=="kiln-qcow2-bytes" {print $2}' "$results" | median)" \
	"$(awk '$1=="baseline-qcow2-bytes" {print $2}' "$results" | median)"

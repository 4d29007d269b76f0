#!/usr/bin/env bash
# Measures `kiln build` for examples/base.toml → qcow2 against the
# hand-rolled baseline (bench/baseline.sh) in one run:
#   kiln cold        empty cache (packages downloaded, everything built)
#   kiln no change   the same build again
#   kiln hostname    only the hostname changed
#   baseline cold    mmdebstrap + sfdisk + mkfs + GRUB + qemu-img, no cache
# Prints wall times, kiln's own peak RSS (from its build log), the largest
# process's peak RSS, and image sizes. RUNS=3 repeats each case (medians).
# BEFORE=path/to/kiln also measures that binary's three kiln cases in the
# same run (its own cache), for before/after figures. STAGES=1 prints, for
# the rebuilds, each stage's time and the build's own total (--progress
# plain).
# The load average is printed at the start and the end: the machine's load
# moves these figures more than anything kiln does.
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
echo "load at start: $(cat /proc/loadavg)"
progress=none
[ "${STAGES:-0}" != 1 ] || progress=plain
stages() { # label: the stages' own times from the last build's progress
	[ "${STAGES:-0}" = 1 ] || return 0
	echo "$1:"; grep -E '^\[|^built' "$tmp/err" | sed 's/^/  /'
}
kiln_cases() { # prefix binary cache out
	local p=$1 bin=$2 cache=$3 out=$4
	timed "${p}cold" "$bin" --cache-dir "$cache" build -b "$tmp/base.toml" -t qcow2 --distro debian-12 -o "$out" --progress "$progress" >>"$results"
	grep -o "peak memory [0-9]* kB" "$out"/base-debian-12-x86_64.build.log | awk -v l="${p}rss" '{print l, $3}' >>"$results"
	timed "${p}nochange" "$bin" --cache-dir "$cache" build -b "$tmp/base.toml" -t qcow2 --distro debian-12 -o "$out" --force --progress "$progress" >>"$results"
	stages "${p}nochange"
	timed "${p}hostname" "$bin" --cache-dir "$cache" build -b "$tmp/base-renamed.toml" -t qcow2 --distro debian-12 -o "$out" --force --progress "$progress" >>"$results"
	stages "${p}hostname"
}
for i in $(seq "$runs"); do
	cache=$tmp/cache-$i
	kiln_cases kiln- bin/kiln "$cache" "$tmp/out-$i"
	stat -c 'kiln-qcow2-bytes %s' "$tmp/out-$i"/base-debian-12-x86_64.qcow2 >>"$results"
	if [ -n "${BEFORE:-}" ]; then
		kiln_cases before- "$BEFORE" "$tmp/before-cache-$i" "$tmp/before-out-$i"
		rm -rf "$tmp/before-cache-$i"
	fi
	timed "baseline-cold" bench/baseline.sh "$tmp/baseline-$i.qcow2" >>"$results"
	stat -c 'baseline-qcow2-bytes %s' "$tmp/baseline-$i.qcow2" >>"$results"
	rm -rf "$cache"
done

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
printf '%-22s %10s %16s\n' case "wall (s)" "largest RSS (MB)"
cases="kiln-cold kiln-nochange kiln-hostname"
[ -z "${BEFORE:-}" ] || cases="$cases before-cold before-nochange before-hostname"
for c in $cases baseline-cold; do
	w=$(awk -v c=$c '$1==c {print $2}' "$results" | median)
	r=$(awk -v c=$c '$1==c {print $3/1024}' "$results" | median)
	printf '%-22s %10s %16.1f\n' "$c" "$w" "$r"
done
printf 'kiln own peak RSS: %s kB\n' "$(awk '$1=="kiln-rss" {print $2}' "$results" | median)"
printf 'qcow2 size: kiln %s bytes, baseline %s bytes\n' \
	"$(awk '$1=="kiln-qcow2-bytes" {print $2}' "$results" | median)" \
	"$(awk '$1=="baseline-qcow2-bytes" {print $2}' "$results" | median)"
echo "load at end: $(cat /proc/loadavg)"

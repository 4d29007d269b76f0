#!/usr/bin/env bash
# Measures the time from QEMU's start to the first SSH login (what
# `kiln boot-test` reports as "SSH answered after") for examples/base.toml
# built as qcow2, with BIOS (SeaBIOS) and with UEFI (OVMF). RUNS=N boots
# each firmware N times (default 3) and prints the medians, with systemd's
# kernel/userspace split of the last boot and the load of the host, which
# matters: without KVM the guest is emulated (TCG) on the host's CPUs.
#
#   bench/boot.sh                      build the base qcow2, then boot it
#   IMAGE=x.qcow2 SSH_KEY=k SSH_USER=u bench/boot.sh
#                                      boot an image built before (SSH_KEY
#                                      is the private key its user accepts)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"
runs=${RUNS:-3}
go build -o bin/kiln ./cmd/kiln
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

image=${IMAGE:-}
key=${SSH_KEY:-}
user=${SSH_USER:-ops}
if [ -z "$image" ]; then
	# The base blueprint with a key made for this run in place of its own.
	ssh-keygen -q -t ed25519 -N '' -C kiln-bench -f "$tmp/id_ed25519"
	pub=$(cat "$tmp/id_ed25519.pub")
	awk -v pub="$pub" '/^key = "ssh-ed25519 / {print "key = \"" pub "\""; next} {print}' examples/base.toml >"$tmp/base.toml"
	grep -qF "$pub" "$tmp/base.toml"
	echo "building examples/base.toml as qcow2 (load $(cut -d' ' -f1-3 /proc/loadavg))" >&2
	bin/kiln build -b "$tmp/base.toml" -t qcow2 --distro debian-12 -o "$tmp/out" --progress none >&2
	image=$tmp/out/base-debian-12-x86_64.qcow2
	key=$tmp/id_ed25519
elif [ -z "$key" ]; then
	echo "IMAGE needs SSH_KEY, the private key that logs in as SSH_USER (default ops)" >&2
	exit 2
fi

results=$tmp/results
for i in $(seq "$runs"); do
	for fw in bios uefi; do
		load=$(cut -d' ' -f1 /proc/loadavg)
		bin/kiln boot-test "$image" --ssh-key "$key" --user "$user" --firmware "$fw" >"$tmp/boot.out" 2>&1 ||
			{ cat "$tmp/boot.out" >&2; exit 1; }
		ssh=$(sed -n "s/^$fw: SSH answered after \([0-9.]*\) s$/\1/p" "$tmp/boot.out")
		[ -n "$ssh" ] || { cat "$tmp/boot.out" >&2; exit 1; }
		echo "$fw $ssh $load" >>"$results"
		grep "^$fw: Startup finished" "$tmp/boot.out" >"$tmp/analyze-$fw" || true
		echo "run $i $fw: ssh after $ssh s (load $load)" >&2
	done
done

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
echo "image: $(basename "$image"), $runs run(s) per firmware, load now $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-6s %18s %10s %10s  %s\n' firmware "ssh median (s)" "min (s)" "max (s)" "load at start (1 min)"
for fw in bios uefi; do
	vals=$(awk -v f=$fw '$1==f {print $2}' "$results")
	loads=$(awk -v f=$fw '$1==f {printf "%s ", $3}' "$results")
	printf '%-6s %18s %10s %10s  %s\n' "$fw" "$(median <<<"$vals")" "$(sort -n <<<"$vals" | head -1)" "$(sort -n <<<"$vals" | tail -1)" "$loads"
done
for fw in bios uefi; do
	[ -s "$tmp/analyze-$fw" ] && sed 's/^/last boot, /' "$tmp/analyze-$fw"
done
exit 0

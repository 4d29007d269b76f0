#!/usr/bin/env bash
# Measures `kiln manifest` for examples/web.toml (about 10 packages on top of
# the qcow2 defaults): once with an empty cache (cold: repository metadata is
# fetched) and several times with the cache warm. Prints wall time and peak
# RSS: the largest of kiln and the apt processes it runs (wait4's maxrss).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"
runs=${RUNS:-5}
go build -o bin/kiln ./cmd/kiln
cache=$(mktemp -d)
trap 'rm -rf "$cache"' EXIT

measure() {
	local label=$1
	local out
	out=$( { /usr/bin/time -f '%e %M' bin/kiln --cache-dir "$cache" manifest \
		--blueprint examples/web.toml --distro debian-12 --type qcow2 >/dev/null; } 2>&1 | tail -n1)
	printf '%-6s wall %6.2f s   peak RSS (largest process) %6.1f MB\n' "$label" "$(cut -d' ' -f1 <<<"$out")" "$(awk '{print $2/1024}' <<<"$out")"
}

measure cold
for i in $(seq "$runs"); do measure warm; done


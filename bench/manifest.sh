#!/usr/bin/env bash
# Measures `kiln manifest` for examples/web.toml (about 10 packages on top of
# the qcow2 defaults): once with an empty cache (cold: repository metadata is
# fetched), several times with the cache warm (the solution is cached too),
# and with warm metadata for requests apt has not answered before. Prints wall time and peak
# RSS: the largest of kiln and the apt processes it runs (wait4's maxrss).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"
runs=${RUNS:-5}
go build -o bin/kiln ./cmd/kiln
cache=$(mktemp -d)
trap 'rm -rf "$cache"' EXIT

measure() {
	local label=$1 bp=${2:-examples/web.toml}
	local out
	out=$( { /usr/bin/time -f '%e %M' bin/kiln --cache-dir "$cache" manifest \
		--blueprint "$bp" --distro debian-12 --type qcow2 >/dev/null; } 2>&1 | tail -n1)
	printf '%-11s wall %6.2f s   peak RSS (largest process) %6.1f MB\n' "$label" "$(cut -d' ' -f1 <<<"$out")" "$(awk '{print $2/1024}' <<<"$out")"
}

measure cold
for i in $(seq "$runs"); do measure warm; done

# Warm metadata but a request apt has not answered before: the example plus
# one more package each time.
for extra in htop tmux jq rsync git; do
	sed "0,/^\[\[packages\]\]/s//[[packages]]\nname = \"$extra\"\n\n[[packages]]/" examples/web.toml >"$cache/$extra.toml"
	measure new-request "$cache/$extra.toml"
done


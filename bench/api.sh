#!/usr/bin/env bash
# Measures the service's API with builds paused (no worker) on SQLite:
# POST /compose and GET /composes/{id} at 64 concurrent clients, GET
# /composes (page of 100) in an org with 100 000 composes, and the idle RSS
# of kiln serve. DURATION=10s per case by default.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"
go build -o bin/kiln ./cmd/kiln
go run ./bench/apiload -kiln bin/kiln -duration "${DURATION:-10s}" -clients "${CLIENTS:-64}" -seed-composes "${SEED:-100000}"

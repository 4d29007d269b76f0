#!/usr/bin/env bash
# Measures the job queue of both store backends (SQLite, and PostgreSQL on
# a throwaway server the test binary starts): no-op jobs, one producer,
# 8 workers long-polling with Wait and finishing each job at once, on two
# paths (storetest.BenchmarkQueue):
#   single                 one compose per enqueue, one job per Dequeue,
#                          8 jobs in flight (the path before batches)
#   batch-enqueueE-takeT   up to E composes per CreateComposes, up to T
#                          jobs per DequeueBatch, 8*T jobs in flight
# Prints jobs/s (enqueue -> dequeue -> finish) and the p50/p99 time from
# enqueue to a waiting worker holding the job. JOBS=20000 per run,
# COUNT=3 runs per backend and path by default.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores"
go test -run '^$' -bench Queue -benchtime "${JOBS:-20000}x" -count "${COUNT:-3}" \
	./internal/service/store/sqlite/ ./internal/service/store/postgres/ |
	awk '/^pkg:/ { split($2, p, "/"); backend = p[length(p)] }
		/^BenchmarkQueue/ { path = $1; sub(/^BenchmarkQueue\//, "", path); sub(/-[0-9]+$/, "", path)
			printf "%-9s %-22s %8.0f jobs/s   p50 %6.2f ms   p99 %7.2f ms\n", backend, path, $5, $7, $9 }
		/^(FAIL|---)/ { print }'
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"

#!/usr/bin/env bash
# Measures the aws.s3 target's upload against the S3 test server on
# loopback, and that server's raw PUT throughput in the same run: one
# raw PUT and one target upload per round, the best round of each kept.
# Prints both in MB/s and their ratio (the goal is a ratio of 0.8 or
# more). MIB=128 sets the image's size, ROUNDS=5 the rounds; PART_MIB
# and CONCURRENCY override the target's part size and parallel parts.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"
export KILN_BENCH_MIB="${MIB:-128}"
[ -n "${PART_MIB:-}" ] && export KILN_BENCH_PART_MIB="$PART_MIB"
[ -n "${CONCURRENCY:-}" ] && export KILN_BENCH_CONCURRENCY="$CONCURRENCY"
out=$(go test -run '^$' -bench '^BenchmarkS3Upload$' -benchtime "${ROUNDS:-5}x" ./internal/target/)
line=$(grep '^BenchmarkS3Upload' <<<"$out") || { echo "$out" >&2; exit 1; }
metric() { awk -v unit="$1" '{for (i = 2; i <= NF; i++) if ($i == unit) print $(i-1)}' <<<"$line"; }
raw=$(metric raw-MB/s)
tgt=$(metric target-MB/s)
ratio=$(metric target/raw)
echo "image:              ${KILN_BENCH_MIB} MiB, ${ROUNDS:-5} rounds, best of each"
echo "raw PUT:            ${raw} MB/s"
echo "aws.s3 upload:      ${tgt} MB/s"
echo "ratio (target/raw): ${ratio}"
echo "raw multipart:      $(metric raw-multipart-MB/s) MB/s (the same parts and concurrency, plain HTTP)"
echo "ratio (target/raw multipart): $(metric target/raw-multipart)"

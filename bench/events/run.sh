#!/bin/sh
# Benchmark of nubo's event delivery against a plain JetStream pull
# consumer doing the same HTTP calls, one run, one machine (see main.go):
# publish N events, deliver each by HTTP POST (CloudEvents binary mode) to
# one Go HTTP service, 16 at a time. Prints a markdown table (events/s,
# p50 and p99 publish-to-delivery latency) and the throughput ratio.
#
#   bench/events/run.sh [N] [ROUNDS]     (default 20000 events, 2 rounds)
set -eu
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT INT TERM
cd "$ROOT"
go build -o "$WORK/events-bench" ./bench/events
"$WORK/events-bench" -n "${1:-20000}" -rounds "${2:-2}"

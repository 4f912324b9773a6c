#!/bin/sh
# Benchmark of nubo's event store against raw JetStream on the same
# embedded server, one run (see main.go): appends/s with an expected
# version (8 writers, one stream each) against synchronous publishes, then
# projection lag at a steady rate.
#
#   bench/eventstore/run.sh [DURATION] [ROUNDS] [RATE]   (default 5s, 3 rounds, 1000/s)
set -eu
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT INT TERM
cd "$ROOT"
go build -o "$WORK/eventstore-bench" ./bench/eventstore
"$WORK/eventstore-bench" -d "${1:-5s}" -rounds "${2:-3}" -rate "${3:-1000}"

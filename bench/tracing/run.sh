#!/bin/sh
# Benchmark of nubo's tracing, one run, one machine:
#  1. spans/s nubo's OTLP/HTTP receiver takes into its store on disk (batches
#     of 512 protobuf spans from 4 connections), and the same load into the
#     peer, the Jaeger v2 binary with its in-memory store, when JAEGER points
#     at one (build it outside the repository:
#       cd /tmp/j && go mod init j && go get -tool github.com/jaegertracing/jaeger/cmd/jaeger@v1.75.0 &&
#       go build -o /tmp/j/jaeger github.com/jaegertracing/jaeger/cmd/jaeger);
#  2. the mesh's requests/s with a span per request (sample rate 1) against
#     without (wrk, 50 connections, as bench/mesh/run.sh).
#
#   JAEGER=/tmp/j/jaeger bench/tracing/run.sh [DURATION]   (default 10s; needs wrk)
set -eu

DUR=${1:-10s}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
WORK=$(mktemp -d)
PIDS=""
trap 'for p in $PIDS; do kill $p 2>/dev/null || true; done; sleep 0.5; rm -rf "$WORK"' EXIT
cd "$ROOT"
go build -o "$WORK/receiver" ./bench/tracing/receiver
go build -o "$WORK/load" ./bench/tracing/load
go build -o "$WORK/backend" ./bench/mesh/backend
go build -o "$WORK/meshproxy" ./bench/mesh/meshproxy

wait_port() {
	for i in $(seq 1 100); do
		curl -s -o /dev/null "http://$1/" && return 0
		sleep 0.1
	done
	echo "bench/tracing: nothing on $1" >&2
	exit 1
}

echo "## OTLP/HTTP intake, batches of 512, 4 connections, $DUR"
"$WORK/receiver" -addr 127.0.0.1:9141 -dir "$WORK/traces" &
PIDS="$PIDS $!"
wait_port 127.0.0.1:9141
printf 'nubo:   '
"$WORK/load" -url http://127.0.0.1:9141/v1/traces -d "$DUR"
if [ -n "${JAEGER:-}" ]; then
	"$JAEGER" >"$WORK/jaeger.log" 2>&1 &
	PIDS="$PIDS $!"
	wait_port 127.0.0.1:4318
	printf 'jaeger: '
	"$WORK/load" -url http://127.0.0.1:4318/v1/traces -d "$DUR"
fi

echo "## mesh, wrk 50 connections, $DUR"
"$WORK/backend" -addr 127.0.0.1:9101 &
PIDS="$PIDS $!"
for mode in off on; do
	if [ $mode = on ]; then
		"$WORK/meshproxy" -backend 127.0.0.1:9101 -trace-dir "$WORK/mesh-traces" >"$WORK/mesh.url" &
	else
		"$WORK/meshproxy" -backend 127.0.0.1:9101 >"$WORK/mesh.url" &
	fi
	MP=$!
	URL=""
	for i in $(seq 1 100); do
		URL=$(head -n1 "$WORK/mesh.url" 2>/dev/null || true)
		[ -n "$URL" ] && curl -sf "$URL/" >/dev/null && break
		sleep 0.1
	done
	printf 'tracing %s: ' $mode
	wrk -t2 -c50 -d"$DUR" "$URL/" | awk '/Requests\/sec/ {print $2 " req/s"}'
	kill $MP
	wait $MP 2>/dev/null || true
done

#!/bin/sh
# Benchmark of nubo's mesh proxy against nginx and haproxy, one run, one
# machine: a Go backend, then wrk (50 connections) directly, through the
# mesh (Istio metrics and one allow policy on), through nginx and through
# haproxy (Debian's packages, keep-alive reverse proxies). Prints a markdown
# table: requests/s, p50, p99, the latency each proxy adds at p99 over the
# direct run, and the ratio of requests/s to nginx's.
#
#   bench/mesh/run.sh [DURATION]      (default 10s; needs wrk, nginx, haproxy)
set -eu

DUR=${1:-10s}
CONNS=50
THREADS=2
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
NAME=mesh
BACKEND=127.0.0.1:9101
NGINX=127.0.0.1:9102
HAPROXY=127.0.0.1:9103
. "$ROOT/bench/peers.sh"

cd "$ROOT"
go build -o "$WORK/backend" ./bench/mesh/backend
go build -o "$WORK/meshproxy" ./bench/mesh/meshproxy

"$WORK/backend" -addr $BACKEND &
PIDS="$PIDS $!"

"$WORK/meshproxy" -backend $BACKEND >"$WORK/mesh.url" &
PIDS="$PIDS $!"

start_peers

# Wait for every listener.
MESH=""
for i in $(seq 1 100); do
	MESH=$(head -n1 "$WORK/mesh.url" 2>/dev/null || true)
	if [ -n "$MESH" ] && curl -sf "$MESH/" >/dev/null && peers_up; then
		break
	fi
	sleep 0.1
done
[ -n "$MESH" ] || { echo "bench/mesh: the mesh did not start" >&2; exit 1; }

{
	run direct "http://$BACKEND/"
	run nubo "$MESH/"
	run nginx "http://$NGINX/"
	run haproxy "http://$HAPROXY/"
} >"$WORK/results"

print_table

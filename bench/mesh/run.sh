#!/bin/sh
# Benchmark of nubo's mesh proxy against nginx and haproxy, one run, one
# machine: a Go backend, then wrk (50 connections) directly, through the
# mesh (Istio metrics and one allow policy on), through nginx and through
# haproxy (Debian's packages, keep-alive reverse proxies). Prints a markdown
# table: requests/s, p50, p99, the latency each proxy adds at p99 over the
# direct run, and the ratio of requests/s to nginx's.
#
# Then the same through the mesh's ingress (a plain-HTTP path to the same
# service), and every path again with a 1 KiB POST body (bench/post1k.lua).
# With BEFORE set to another checkout of nubo, its mesh (built with this
# checkout's bench/mesh/meshproxy copied in) runs too, as nubo-before: a
# before/after comparison in one run.
#
#   bench/mesh/run.sh [DURATION]      (default 10s; needs wrk, nginx, haproxy)
#   BEFORE=/tmp/nubo-main bench/mesh/run.sh 5s
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

"$WORK/meshproxy" -backend $BACKEND -ingress 127.0.0.1:9104 >"$WORK/mesh.url" &
NUBO=$!
PIDS="$PIDS $!"

if [ -n "${BEFORE:-}" ]; then
	mkdir -p "$BEFORE/bench/mesh/meshproxy"
	cp bench/mesh/meshproxy/main.go "$BEFORE/bench/mesh/meshproxy/main.go"
	(cd "$BEFORE" && go build -o "$WORK/meshproxy-before" ./bench/mesh/meshproxy)
	"$WORK/meshproxy-before" -backend $BACKEND -ingress 127.0.0.1:9105 >"$WORK/before.url" &
	NUBO_BEFORE=$!
	PIDS="$PIDS $!"
fi

start_peers
HAPROXY_PID=$!

# Wait for every listener.
MESH=""
for i in $(seq 1 100); do
	MESH=$(sed -n 1p "$WORK/mesh.url" 2>/dev/null || true)
	INGRESS=$(sed -n 2p "$WORK/mesh.url" 2>/dev/null || true)
	OLD=$(sed -n 1p "$WORK/before.url" 2>/dev/null || true)
	OLDINGRESS=$(sed -n 2p "$WORK/before.url" 2>/dev/null || true)
	if [ -n "${BEFORE:-}" ] && ! { [ -n "$OLDINGRESS" ] && curl -sf "$OLD/" >/dev/null; }; then
		sleep 0.1
		continue
	fi
	if [ -n "$INGRESS" ] && curl -sf "$MESH/" >/dev/null && curl -sf "$INGRESS/" >/dev/null && peers_up; then
		break
	fi
	sleep 0.1
done
[ -n "$MESH" ] || { echo "bench/mesh: the mesh did not start" >&2; exit 1; }

# nubo and nginx alternate, so that a change in the machine's load falls
# on both.
NGINX_PIDS=$(nginx_pids)
{
	PROC=""; run direct "http://$BACKEND/"
	PROC=$NUBO; run nubo "$MESH/"
	PROC=$NGINX_PIDS; run nginx "http://$NGINX/"
	PROC=$NUBO; run nubo-ingress "$INGRESS/"
	PROC=$HAPROXY_PID; run haproxy "http://$HAPROXY/"
	[ -z "${BEFORE:-}" ] || { PROC=$NUBO_BEFORE; run nubo-before "$OLD/"; }
	[ -z "${BEFORE:-}" ] || { PROC=$NUBO_BEFORE; run nubo-before-ingress "$OLDINGRESS/"; }
	PROC=""; run_post direct-post "http://$BACKEND/"
	PROC=$NUBO; run_post nubo-post "$MESH/"
	PROC=$NGINX_PIDS; run_post nginx-post "http://$NGINX/"
	PROC=$NUBO; run_post nubo-ingress-post "$INGRESS/"
	PROC=$HAPROXY_PID; run_post haproxy-post "http://$HAPROXY/"
	[ -z "${BEFORE:-}" ] || { PROC=$NUBO_BEFORE; run_post nubo-before-post "$OLD/"; }
} >"$WORK/results"

print_table

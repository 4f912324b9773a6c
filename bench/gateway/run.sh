#!/bin/sh
# Benchmark of nubo's API gateway against nginx and haproxy as plain
# reverse proxies, one run, one machine: a Go backend (bench/mesh/backend),
# then wrk (50 connections) directly, through the gateway's plain route,
# through its route with a JWT authorizer, a throttle (a limit wrk never
# reaches) and metrics, through nginx and through haproxy (Debian's
# packages, keep-alive reverse proxies). Prints a markdown table:
# requests/s, p50, p99, the latency each adds at p99 over the direct run,
# and the ratio of requests/s to nginx's; then what the JWT route costs
# over the plain one.
#
# Then a route with a service integration (through the mesh, as the
# gateway's identity), the mesh's ingress in front of that route
# (ingress -> gateway -> service), and the plain route and the peers with a
# 1 KiB POST body (bench/post1k.lua). With BEFORE set to another checkout
# of nubo, its gateway (built with this checkout's bench/gateway/gatewayd)
# runs too, as nubo-before.
#
#   bench/gateway/run.sh [DURATION]   (default 10s; needs wrk, nginx, haproxy)
set -eu

DUR=${1:-10s}
CONNS=50
THREADS=2
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
NAME=gateway
BACKEND=127.0.0.1:9111
NGINX=127.0.0.1:9112
HAPROXY=127.0.0.1:9113
. "$ROOT/bench/peers.sh"

cd "$ROOT"
go build -o "$WORK/backend" ./bench/mesh/backend
go build -o "$WORK/gatewayd" ./bench/gateway/gatewayd

"$WORK/backend" -addr $BACKEND &
PIDS="$PIDS $!"

"$WORK/gatewayd" -backend $BACKEND -ingress 127.0.0.1:9115 >"$WORK/gateway.out" &
NUBO=$!
PIDS="$PIDS $!"

if [ -n "${BEFORE:-}" ]; then
	mkdir -p "$BEFORE/bench/gateway/gatewayd"
	# Without the in-process hop, which an older gateway does not have.
	sed '/gcfg.ServiceTransport = /d' bench/gateway/gatewayd/main.go >"$BEFORE/bench/gateway/gatewayd/main.go"
	(cd "$BEFORE" && go build -o "$WORK/gatewayd-before" ./bench/gateway/gatewayd)
	"$WORK/gatewayd-before" -backend $BACKEND -ingress 127.0.0.1:9116 >"$WORK/before.out" &
	NUBO_BEFORE=$!
	PIDS="$PIDS $!"
fi

start_peers
HAPROXY_PID=$!

# Wait for every listener.
GW=""
TOKEN=""
for i in $(seq 1 100); do
	GW=$(sed -n 1p "$WORK/gateway.out" 2>/dev/null || true)
	TOKEN=$(sed -n 2p "$WORK/gateway.out" 2>/dev/null || true)
	INGRESS=$(sed -n 3p "$WORK/gateway.out" 2>/dev/null || true)
	OLD=$(sed -n 1p "$WORK/before.out" 2>/dev/null || true)
	OLDINGRESS=$(sed -n 3p "$WORK/before.out" 2>/dev/null || true)
	if [ -n "${BEFORE:-}" ] && ! { [ -n "$OLDINGRESS" ] && curl -sf "$OLDINGRESS/svc" >/dev/null; }; then
		sleep 0.1
		continue
	fi
	if [ -n "$INGRESS" ] && curl -sf "$GW/" >/dev/null && curl -sf "$INGRESS/svc" >/dev/null &&
		curl -sf -H "Authorization: Bearer $TOKEN" "$GW/auth" >/dev/null && peers_up; then
		break
	fi
	sleep 0.1
done
[ -n "$TOKEN" ] || { echo "bench/gateway: the gateway did not start" >&2; exit 1; }
if [ "$(curl -s -o /dev/null -w '%{http_code}' "$GW/auth")" != 401 ]; then
	echo "bench/gateway: the JWT route answers without a token" >&2
	exit 1
fi

NGINX_PIDS=$(nginx_pids)
{
	PROC=""; run direct "http://$BACKEND/"
	PROC=$NUBO; run nubo-plain "$GW/"
	PROC=$NGINX_PIDS; run nginx "http://$NGINX/"
	PROC=$NUBO; run nubo-jwt "$GW/auth" "Authorization: Bearer $TOKEN"
	PROC=$HAPROXY_PID; run haproxy "http://$HAPROXY/"
	PROC=$NUBO; run nubo-service "$GW/svc"
	PROC=$NUBO; run nubo-ingress-gw-svc "$INGRESS/svc"
	[ -z "${BEFORE:-}" ] || { PROC=$NUBO_BEFORE; run nubo-before-plain "$OLD/"; }
	[ -z "${BEFORE:-}" ] || { PROC=$NUBO_BEFORE; run nubo-before-jwt "$OLD/auth" "Authorization: Bearer $(sed -n 2p "$WORK/before.out")"; }
	[ -z "${BEFORE:-}" ] || { PROC=$NUBO_BEFORE; run nubo-before-ingress-gw-svc "$OLDINGRESS/svc"; }
	PROC=""; run_post direct-post "http://$BACKEND/"
	PROC=$NUBO; run_post nubo-plain-post "$GW/"
	PROC=$NGINX_PIDS; run_post nginx-post "http://$NGINX/"
	PROC=$NUBO; run_post nubo-service-post "$GW/svc"
	PROC=$HAPROXY_PID; run_post haproxy-post "http://$HAPROXY/"
	[ -z "${BEFORE:-}" ] || { PROC=$NUBO_BEFORE; run_post nubo-before-plain-post "$OLD/"; }
} >"$WORK/results"

print_table
awk '
	$1 == "nubo-plain" { plain = $2; plain50 = $3 }
	$1 == "nubo-jwt" { jwt = $2; jwt50 = $3 }
	END { printf "\nJWT + throttle + metrics over the plain route: %.0f%% of its requests/s, %+.2f ms at p50\n", 100 * jwt / plain, jwt50 - plain50 }
' "$WORK/results"

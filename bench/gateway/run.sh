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
#   bench/gateway/run.sh [DURATION]   (default 10s; needs wrk, nginx, haproxy)
set -eu

DUR=${1:-10s}
CONNS=50
THREADS=2
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
WORK=$(mktemp -d)
BACKEND=127.0.0.1:9111
NGINX=127.0.0.1:9112
HAPROXY=127.0.0.1:9113
PIDS=""

cleanup() {
	for p in $PIDS; do kill "$p" 2>/dev/null || true; done
	[ -f "$WORK/nginx.pid" ] && kill "$(cat "$WORK/nginx.pid")" 2>/dev/null || true
	rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

for tool in wrk nginx haproxy go curl; do
	command -v $tool >/dev/null || { echo "bench/gateway: $tool is missing (apt-get install wrk nginx-light haproxy)" >&2; exit 1; }
done

cd "$ROOT"
go build -o "$WORK/backend" ./bench/mesh/backend
go build -o "$WORK/gatewayd" ./bench/gateway/gatewayd

"$WORK/backend" -addr $BACKEND &
PIDS="$PIDS $!"

"$WORK/gatewayd" -backend $BACKEND >"$WORK/gateway.out" &
PIDS="$PIDS $!"

cat >"$WORK/nginx.conf" <<CONF
worker_processes auto;
pid $WORK/nginx.pid;
error_log $WORK/nginx.error.log;
daemon on;
events { worker_connections 4096; }
http {
	access_log off;
	upstream backend { server $BACKEND; keepalive 128; }
	server {
		listen $NGINX;
		location / {
			proxy_pass http://backend;
			proxy_http_version 1.1;
			proxy_set_header Connection "";
		}
	}
}
CONF
nginx -c "$WORK/nginx.conf" -e "$WORK/nginx.error.log"

cat >"$WORK/haproxy.cfg" <<CONF
global
	nbthread 2
	maxconn 4096
defaults
	mode http
	timeout connect 5s
	timeout client 60s
	timeout server 60s
	http-reuse always
frontend fe
	bind $HAPROXY
	default_backend be
backend be
	server s1 $BACKEND
CONF
haproxy -f "$WORK/haproxy.cfg" &
PIDS="$PIDS $!"

# Wait for every listener.
GW=""
TOKEN=""
for i in $(seq 1 100); do
	GW=$(sed -n 1p "$WORK/gateway.out" 2>/dev/null || true)
	TOKEN=$(sed -n 2p "$WORK/gateway.out" 2>/dev/null || true)
	if [ -n "$TOKEN" ] && curl -sf "http://$BACKEND/" >/dev/null && curl -sf "$GW/" >/dev/null &&
		curl -sf -H "Authorization: Bearer $TOKEN" "$GW/auth" >/dev/null &&
		curl -sf "http://$NGINX/" >/dev/null && curl -sf "http://$HAPROXY/" >/dev/null; then
		break
	fi
	sleep 0.1
done
[ -n "$TOKEN" ] || { echo "bench/gateway: the gateway did not start" >&2; exit 1; }
if [ "$(curl -s -o /dev/null -w '%{http_code}' "$GW/auth")" != 401 ]; then
	echo "bench/gateway: the JWT route answers without a token" >&2
	exit 1
fi

# run NAME URL [HEADER]: warm up, then measure; prints "NAME rps p50 p99" (ms).
run() {
	if [ $# -gt 2 ]; then
		wrk -t$THREADS -c$CONNS -d2s -H "$3" "$2" >/dev/null
		wrk -t$THREADS -c$CONNS -d"$DUR" --latency -H "$3" "$2" >"$WORK/$1.out"
	else
		wrk -t$THREADS -c$CONNS -d2s "$2" >/dev/null
		wrk -t$THREADS -c$CONNS -d"$DUR" --latency "$2" >"$WORK/$1.out"
	fi
	awk -v name="$1" '
		function ms(v) {
			if (v ~ /us$/) { sub(/us$/, "", v); return v / 1000 }
			if (v ~ /ms$/) { sub(/ms$/, "", v); return v + 0 }
			if (v ~ /s$/)  { sub(/s$/, "", v);  return v * 1000 }
			return v
		}
		/Requests\/sec/ { rps = $2 }
		$1 == "50%" { p50 = ms($2) }
		$1 == "99%" { p99 = ms($2) }
		/Non-2xx/ { bad = $NF }
		END {
			if (bad != "") { print "bench/gateway: " name ": " bad " non-2xx answers" > "/dev/stderr" }
			printf "%s %s %s %s\n", name, rps, p50, p99
		}' "$WORK/$1.out"
}

{
	run direct "http://$BACKEND/"
	run nubo-plain "$GW/"
	run nubo-jwt "$GW/auth" "Authorization: Bearer $TOKEN"
	run nginx "http://$NGINX/"
	run haproxy "http://$HAPROXY/"
} >"$WORK/results"

echo "wrk -t$THREADS -c$CONNS -d$DUR, $(nproc) CPUs ($(uname -m)), $(date -u +%Y-%m-%d)"
echo
awk '
	{ name[NR] = $1; rps[NR] = $2; p50[NR] = $3; p99[NR] = $4 }
	$1 == "direct" { base = $4 }
	$1 == "nginx" { ng = $2 }
	$1 == "nubo-plain" { plain = $2; plain50 = $3 }
	$1 == "nubo-jwt" { jwt = $2; jwt50 = $3 }
	END {
		print "| path | requests/s | p50 | p99 | added p99 | requests/s vs nginx |"
		print "|---|---:|---:|---:|---:|---:|"
		for (i = 1; i <= NR; i++) {
			added = (name[i] == "direct") ? "-" : sprintf("%.2f ms", p99[i] - base)
			ratio = (name[i] == "direct") ? "-" : sprintf("%.2f", rps[i] / ng)
			printf "| %s | %.0f | %.2f ms | %.2f ms | %s | %s |\n", name[i], rps[i], p50[i], p99[i], added, ratio
		}
		printf "\nJWT + throttle + metrics over the plain route: %.0f%% of its requests/s, %+.2f ms at p50\n", 100 * jwt / plain, jwt50 - plain50
	}' "$WORK/results"

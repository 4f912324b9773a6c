# Shared by the HTTP benchmarks (bench/mesh, bench/gateway): the peers nginx
# and haproxy as keep-alive reverse proxies of one backend, wrk runs, and the
# results table. Source it after setting NAME (the benchmark's name, for
# messages), BACKEND, NGINX and HAPROXY (host:port) and DUR, CONNS, THREADS.
# It makes WORK and PIDS and cleans them up on exit.

WORK=$(mktemp -d)
PIDS=""

cleanup() {
	for p in $PIDS; do kill "$p" 2>/dev/null || true; done
	[ -f "$WORK/nginx.pid" ] && kill "$(cat "$WORK/nginx.pid")" 2>/dev/null || true
	rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

for tool in wrk nginx haproxy go curl; do
	command -v $tool >/dev/null || { echo "bench/$NAME: $tool is missing (apt-get install wrk nginx-light haproxy curl)" >&2; exit 1; }
done

# start_peers starts nginx and haproxy in front of $BACKEND.
start_peers() {
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
}

# peers_up reports whether the backend and both peers answer.
peers_up() {
	curl -sf "http://$BACKEND/" >/dev/null && curl -sf "http://$NGINX/" >/dev/null && curl -sf "http://$HAPROXY/" >/dev/null
}

# run LABEL URL [HEADER]: warm up, then measure; prints "LABEL rps p50 p99" (ms).
# WRK_EXTRA holds more wrk arguments (run_post sets the POST script).
WRK_EXTRA=""
run() {
	if [ $# -gt 2 ]; then
		wrk -t$THREADS -c$CONNS -d2s $WRK_EXTRA -H "$3" "$2" >/dev/null
		wrk -t$THREADS -c$CONNS -d"$DUR" --latency $WRK_EXTRA -H "$3" "$2" >"$WORK/$1.out"
	else
		wrk -t$THREADS -c$CONNS -d2s $WRK_EXTRA "$2" >/dev/null
		wrk -t$THREADS -c$CONNS -d"$DUR" --latency $WRK_EXTRA "$2" >"$WORK/$1.out"
	fi
	awk -v name="$1" -v bench="$NAME" '
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
			if (bad != "") { print "bench/" bench ": " name ": " bad " non-2xx answers" > "/dev/stderr" }
			printf "%s %s %s %s\n", name, rps, p50, p99
		}' "$WORK/$1.out"
}

# run_post LABEL URL [HEADER]: run with a 1 KiB POST body (bench/post1k.lua).
run_post() {
	WRK_EXTRA="-s $ROOT/bench/post1k.lua"
	run "$@"
	WRK_EXTRA=""
}

# print_table prints the markdown table of $WORK/results: requests/s, p50,
# p99, the latency added at p99 over the direct run, and the ratio to nginx.
# Rows named *-post are compared with direct-post and nginx-post.
print_table() {
	echo "wrk -t$THREADS -c$CONNS -d$DUR, $(nproc) CPUs ($(uname -m)), $(date -u +%Y-%m-%dT%H:%MZ), load average$(uptime | sed 's/.*load average://')"
	echo
	awk '
		{ name[NR] = $1; rps[NR] = $2; p50[NR] = $3; p99[NR] = $4 }
		$1 == "direct" { base[""] = $4 }
		$1 == "direct-post" { base["-post"] = $4 }
		$1 == "nginx" { ng[""] = $2 }
		$1 == "nginx-post" { ng["-post"] = $2 }
		END {
			print "| path | requests/s | p50 | p99 | added p99 | requests/s vs nginx |"
			print "|---|---:|---:|---:|---:|---:|"
			for (i = 1; i <= NR; i++) {
				k = (name[i] ~ /-post$/) ? "-post" : ""
				direct = (name[i] == "direct" || name[i] == "direct-post")
				added = direct ? "-" : sprintf("%.2f ms", p99[i] - base[k])
				ratio = (direct || ng[k] == "") ? "-" : sprintf("%.2f", rps[i] / ng[k])
				printf "| %s | %.0f | %.2f ms | %.2f ms | %s | %s |\n", name[i], rps[i], p50[i], p99[i], added, ratio
			}
		}' "$WORK/results"
}

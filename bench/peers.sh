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

# cpu_ticks PID...: the user and system CPU time the processes have used,
# in clock ticks.
cpu_ticks() {
	for p in "$@"; do
		awk '{ print $14 + $15 }' "/proc/$p/stat" 2>/dev/null || echo 0
	done | awk '{ s += $1 } END { print s + 0 }'
}

# nginx_pids: nginx's master and workers.
nginx_pids() {
	m=$(cat "$WORK/nginx.pid")
	echo "$m $(pgrep -P "$m" | tr '\n' ' ')"
}

# run LABEL URL [HEADER]: warm up, then measure; prints "LABEL rps p50 p99
# cpu" (ms; cpu: the CPU time in microseconds the processes in PROC used
# per request during the measured run, "-" without PROC). On a machine
# busy with other work, requests/s swing with what the scheduler gives
# each process; the CPU time a proxy spends per request does not.
# WRK_EXTRA holds more wrk arguments (run_post sets the POST script).
WRK_EXTRA=""
PROC=""
run() {
	if [ $# -gt 2 ]; then
		wrk -t$THREADS -c$CONNS -d2s $WRK_EXTRA -H "$3" "$2" >/dev/null
		t0=$(cpu_ticks $PROC)
		wrk -t$THREADS -c$CONNS -d"$DUR" --latency $WRK_EXTRA -H "$3" "$2" >"$WORK/$1.out"
	else
		wrk -t$THREADS -c$CONNS -d2s $WRK_EXTRA "$2" >/dev/null
		t0=$(cpu_ticks $PROC)
		wrk -t$THREADS -c$CONNS -d"$DUR" --latency $WRK_EXTRA "$2" >"$WORK/$1.out"
	fi
	t1=$(cpu_ticks $PROC)
	awk -v name="$1" -v bench="$NAME" -v ticks="$((t1 - t0))" -v hz="$(getconf CLK_TCK)" -v proc="$PROC" '
		function ms(v) {
			if (v ~ /us$/) { sub(/us$/, "", v); return v / 1000 }
			if (v ~ /ms$/) { sub(/ms$/, "", v); return v + 0 }
			if (v ~ /s$/)  { sub(/s$/, "", v);  return v * 1000 }
			return v
		}
		/requests in/ { n = $1 }
		/Requests\/sec/ { rps = $2 }
		$1 == "50%" { p50 = ms($2) }
		$1 == "99%" { p99 = ms($2) }
		/Non-2xx/ { bad = $NF }
		END {
			if (bad != "") { print "bench/" bench ": " name ": " bad " non-2xx answers" > "/dev/stderr" }
			cpu = (proc == "" || n == 0) ? "-" : sprintf("%.1f", ticks / hz * 1e6 / n)
			printf "%s %s %s %s %s\n", name, rps, p50, p99, cpu
		}' "$WORK/$1.out"
}

# run_post LABEL URL [HEADER]: run with a 1 KiB POST body (bench/post1k.lua).
run_post() {
	WRK_EXTRA="-s $ROOT/bench/post1k.lua"
	run "$@"
	WRK_EXTRA=""
}

# print_table prints the markdown table of $WORK/results: requests/s, p50,
# p99, the latency added at p99 over the direct run, the ratio to nginx,
# the proxy's CPU time per request and nginx's over it (above 1: less CPU
# per request than nginx). Rows named *-post are compared with
# direct-post and nginx-post.
print_table() {
	echo "wrk -t$THREADS -c$CONNS -d$DUR, $(nproc) CPUs ($(uname -m)), $(date -u +%Y-%m-%dT%H:%MZ), load average$(uptime | sed 's/.*load average://')"
	echo
	awk '
		{ name[NR] = $1; rps[NR] = $2; p50[NR] = $3; p99[NR] = $4; cpu[NR] = $5 }
		$1 == "direct" { base[""] = $4 }
		$1 == "direct-post" { base["-post"] = $4 }
		$1 == "nginx" { ng[""] = $2; ngcpu[""] = $5 }
		$1 == "nginx-post" { ng["-post"] = $2; ngcpu["-post"] = $5 }
		END {
			print "| path | requests/s | p50 | p99 | added p99 | requests/s vs nginx | proxy CPU per request | CPU efficiency vs nginx |"
			print "|---|---:|---:|---:|---:|---:|---:|---:|"
			for (i = 1; i <= NR; i++) {
				k = (name[i] ~ /-post$/) ? "-post" : ""
				direct = (name[i] == "direct" || name[i] == "direct-post")
				added = direct ? "-" : sprintf("%.2f ms", p99[i] - base[k])
				ratio = (direct || ng[k] == "") ? "-" : sprintf("%.2f", rps[i] / ng[k])
				c = (cpu[i] == "-") ? "-" : sprintf("%.1f µs", cpu[i])
				eff = (cpu[i] == "-" || ngcpu[k] == "" || ngcpu[k] == "-" || cpu[i] == 0) ? "-" : sprintf("%.2f", ngcpu[k] / cpu[i])
				printf "| %s | %.0f | %.2f ms | %.2f ms | %s | %s | %s | %s |\n", name[i], rps[i], p50[i], p99[i], added, ratio, c, eff
			}
		}' "$WORK/results"
}

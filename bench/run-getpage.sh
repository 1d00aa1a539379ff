#!/bin/sh
# Runs the page-fetch benchmark: 10,000 fetches of a 1 KiB page from a local
# nginx, at most 100 at once, with a new connection per request and with
# keep-alive, by twine (bench/getpage, tw_get_page) and by libcurl's multi
# interface (bench/getpage-curl, driven both ways: curl_multi_socket_action
# on epoll, and curl_multi_perform with curl_multi_poll); prints wall time,
# pages/s, CPU seconds and peak RSS of each, the ratios of twine to the
# faster libcurl, and whether the goals are met. Builds nothing: run `make
# bench` in the build directory first (configure finds libcurl when
# libcurl4-openssl-dev is installed).
#
# Usage: run-getpage.sh [--quick] [--runs N] [--requests N] [BUILDDIR]
#   BUILDDIR defaults to the current directory. Every client runs N times
#   (5; --quick: 1), alternating with the others; the table shows each one's
#   best run. nginx runs pinned to CPU $SERVER_CPU (0), the clients to
#   $CLIENT_CPU (1).
set -eu

usage() {
    echo "usage: $0 [--quick] [--runs N] [--requests N] [BUILDDIR]"
}

runs=5
requests=10000
concurrency=100
size=1024
build=.
while [ $# -gt 0 ]; do
    case $1 in
    --quick) runs=1 ;;
    --runs) runs=$2; shift ;;
    --requests) requests=$2; shift ;;
    -h | --help) usage; exit 0 ;;
    -*) usage >&2; exit 2 ;;
    *) build=$1 ;;
    esac
    shift
done

server_cpu=${SERVER_CPU:-0}
client_cpu=${CLIENT_CPU:-1}
nginx=${NGINX:-/usr/sbin/nginx}
python=${PYTHON3:-python3}
time_cmd=/usr/bin/time
twine_client="$build/bench/getpage"
curl_client="$build/bench/getpage-curl"
for tool in "$nginx:nginx" "$time_cmd:time" "$(command -v taskset || echo taskset):util-linux" \
            "$(command -v "$python" || echo "$python"):python3"; do
    if [ ! -x "${tool%:*}" ]; then
        echo "$0: ${tool%:*} is missing (Debian package ${tool#*:})" >&2
        exit 1
    fi
done
if [ ! -x "$twine_client" ]; then
    echo "$0: no $twine_client; build it with 'make bench' in $build" >&2
    exit 1
fi
if [ ! -x "$curl_client" ]; then
    echo "$0: no $curl_client: install libcurl4-openssl-dev, configure again," \
         "and run 'make bench' in $build" >&2
    exit 1
fi

tmp=$(mktemp -d)
. "$(dirname "$0")/../tests/nginx-start.sh"
cleanup() {
    nginx_stop
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

# nginx, pinned, on a free port of 127.0.0.1 -----------------------------------------------

# Its worker drops root for "nobody", which must read the page.
chmod 755 "$tmp"
mkdir "$tmp/www"
head -c "$size" /dev/zero | tr '\0' x >"$tmp/www/page.html"

write_config() {   # write_config PORT
    cat >"$tmp/nginx.conf" <<EOF
daemon off;
worker_processes 1;
pid $tmp/nginx.pid;
error_log $tmp/error.log warn;
events { worker_connections 4096; }
http {
    types { text/html html; }
    client_body_temp_path $tmp/client_body;
    proxy_temp_path $tmp/proxy;
    fastcgi_temp_path $tmp/fastcgi;
    uwsgi_temp_path $tmp/uwsgi;
    scgi_temp_path $tmp/scgi;
    access_log off;
    keepalive_requests 100000;
    server {
        listen 127.0.0.1:$1;
        root $tmp/www;
    }
}
EOF
}

if ! nginx_start taskset -c "$server_cpu"; then
    echo "$0: nginx did not start:" >&2
    cat "$tmp/nginx.err" "$tmp/error.log" >&2 2>/dev/null || true
    exit 1
fi
url="http://127.0.0.1:$port/page.html"

# The runs -----------------------------------------------------------------------------------

# measure CLIENT MODE: one run; appends "MODE CLIENT wall-s cpu-s peak-rss-kb"
# to the results. The wall time is the client's own (first request to last
# page); CPU time and peak RSS are /usr/bin/time's (timeout, which ends a
# client that hangs, is its child and the client its grandchild: both
# counted, timeout's share negligible). libtool runs twine's client itself
# rather than its wrapper script.
measure() {
    case $1 in
    twine) client=$twine_client options= ;;
    curl-socket) client=$curl_client options= ;;
    curl-poll) client=$curl_client options=--multi-poll ;;
    esac
    case $2 in
    new) options="$options --new-connections" ;;
    esac
    # $options unquoted: it is a few words or none.
    if ! "$build/libtool" --mode=execute taskset -c "$client_cpu" \
            "$time_cmd" -f '%e %U %S %M' -o "$tmp/time.out" timeout 300 \
            "$client" --requests "$requests" --concurrency "$concurrency" --size "$size" \
            $options "$url" >"$tmp/client.out" 2>"$tmp/client.err"; then
        echo "$0: $1 ($2) failed:" >&2
        cat "$tmp/client.out" "$tmp/client.err" >&2
        exit 1
    fi
    wall=$(awk '$1 == "wall_s" { print $2 }' "$tmp/client.out")
    awk -v m="$2" -v c="$1" -v w="$wall" '{ print m, c, w, $2 + $3, $4 }' "$tmp/time.out" \
        >>"$tmp/results"
}

echo "nginx on 127.0.0.1:$port (CPU $server_cpu), clients on CPU $client_cpu;" \
     "$requests fetches of $size bytes, $concurrency at once" >&2
clients="twine curl-socket curl-poll"
for client in $clients; do    # a warm-up, not counted
    measure "$client" keep-alive
done
rm "$tmp/results"
for i in $(seq "$runs"); do
    echo "run $i of $runs" >&2
    for mode in new keep-alive; do
        for client in $clients; do
            measure "$client" "$mode"
        done
    done
done

cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo 2>/dev/null | head -n 1)
awk -v requests="$requests" -v size="$size" -v conc="$concurrency" -v runs="$runs" \
    -v cpus="$(nproc)" -v cpu="${cpu:-unknown CPU}" -v scpu="$server_cpu" -v ccpu="$client_cpu" '
# Each client and mode: its best run (the shortest wall time), and the median rate.
{
    k = $1 " " $2
    n[k]++
    rate[k, n[k]] = requests / $3
    if (!(k in wall) || $3 < wall[k]) { wall[k] = $3; cpu_s[k] = $4; rss[k] = $5 / 1024 }
}
function median(k,    s, i, j, x) {
    for (i = 1; i <= n[k]; i++) {
        x = rate[k, i]
        for (j = i - 1; j >= 1 && s[j] > x; j--)
            s[j + 1] = s[j]
        s[j + 1] = x
    }
    return s[int((n[k] + 1) / 2)]
}
function row(mode, client, label,    k) {
    k = mode " " client
    printf "| %-10s | %-27s | %6.3f | %7.0f (%7.0f) | %5.2f | %11.1f |\n", mode, label, wall[k],
           requests / wall[k], median(k), cpu_s[k], rss[k]
}
# The faster way of driving libcurl in a mode.
function curl(mode) {
    return wall[mode " curl-socket"] <= wall[mode " curl-poll"] ? "curl-socket" : "curl-poll"
}
function goal(mode, want,    t, c, r) {
    t = mode " twine"; c = mode " " curl(mode)
    r = wall[c] / wall[t]
    printf "  %-10s pages/s %.2fx (goal %.1fx: %s), peak RSS %.1f vs %.1f MB (goal lower: %s), CPU s %.2fx\n",
           mode, r, want, (r >= want ? "met" : "NOT met"), rss[t], rss[c],
           (rss[t] < rss[c] ? "met" : "NOT met"), cpu_s[t] / cpu_s[c]
}
END {
    printf "Page-fetch benchmark: %d fetches of a %d-byte page from nginx, %d at once\n", requests, size, conc
    printf "machine: %s CPUs, %s; nginx on CPU %s, the client on CPU %s; best of %d run(s)\n\n",
           cpus, cpu, scpu, ccpu, runs
    printf "| %-10s | %-27s | %6s | %17s | %5s | %11s |\n", "mode", "client", "wall s",
           "pages/s (median)", "CPU s", "peak RSS MB"
    printf "|------------|-----------------------------|-------:|------------------:|------:|------------:|\n"
    for (m = 1; m <= 2; m++) {
        mode = m == 1 ? "new" : "keep-alive"
        row(mode, "twine", "twine (tw_get_page)")
        row(mode, "curl-socket", "libcurl multi_socket_action")
        row(mode, "curl-poll", "libcurl multi_poll")
    }
    printf "\nnew: a new connection per request. CPU s: the client'"'"'s user + system time.\n"
    printf "Twine / the faster libcurl of each mode (goals: pages/s at least 1.3x with new\n"
    printf "connections and 1.0x with keep-alive, a lower peak RSS):\n"
    goal("new", 1.3)
    goal("keep-alive", 1.0)
}
' "$tmp/results"

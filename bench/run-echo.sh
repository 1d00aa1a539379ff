#!/bin/sh
# Runs the echo benchmark: the same load (bench/echo) against twine's
# examples/echo-server and against bench/epoll-echo, a plain epoll server that
# is the ceiling; prints both side by side with their ratio and whether the
# goal (a ratio of at least 0.9) is met. Builds nothing: run `make bench` in
# the build directory first.
#
# Usage: run-echo.sh [--quick] [--runs N] [--seconds S] [BUILDDIR]
#   BUILDDIR defaults to the current directory. Each figure is the best of
#   N runs (5; --quick: 1) of S seconds (3; --quick: 1), the median beside it.
#   The servers run pinned to CPU $SERVER_CPU (0), the load to $LOAD_CPU (1).
#   The goal is judged on the median ratio of runs made one after the other,
#   which a busy machine disturbs less than it does a ratio of best runs.
set -eu

usage() {
    echo "usage: $0 [--quick] [--runs N] [--seconds S] [BUILDDIR]"
}

runs=5
seconds=3
build=.
while [ $# -gt 0 ]; do
    case $1 in
    --quick) runs=1 seconds=1 ;;
    --runs) runs=$2; shift ;;
    --seconds) seconds=$2; shift ;;
    -h | --help) usage; exit 0 ;;
    -*) usage >&2; exit 2 ;;
    *) build=$1 ;;
    esac
    shift
done

server_cpu=${SERVER_CPU:-0}
load_cpu=${LOAD_CPU:-1}
twine_server="$build/examples/echo-server"
epoll_server="$build/bench/epoll-echo"
load="$build/bench/echo"
if ! command -v taskset >/dev/null; then
    echo "$0: taskset (util-linux) is needed to pin the processes" >&2
    exit 1
fi
for bin in "$twine_server" "$epoll_server" "$load"; do
    if [ ! -x "$bin" ]; then
        echo "$0: no $bin; build it with 'make bench' in $build" >&2
        exit 1
    fi
done

tmp=$(mktemp -d)
cleanup() {
    for f in "$tmp"/*.pid; do
        [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null
    done
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

hz=$(getconf CLK_TCK)
cpu_ticks() {   # user + system time of server $1, in clock ticks
    sed 's/.*) //' "/proc/$(cat "$tmp/$1.pid")/stat" | awk '{ print $12 + $13 }'
}
now() { date +%s.%N; }

# start_server NAME COMMAND...: runs it pinned and waits (10 s at most) for
# its "listening on" line; its pid goes to $tmp/NAME.pid, its port to NAME.port.
start_server() {
    name=$1
    shift
    taskset -c "$server_cpu" "$@" >"$tmp/$name.out" 2>"$tmp/$name.err" &
    echo $! >"$tmp/$name.pid"
    tries=0
    until grep -q '^listening on' "$tmp/$name.out"; do
        tries=$((tries + 1))
        if [ $tries -gt 200 ] || ! kill -0 "$(cat "$tmp/$name.pid")" 2>/dev/null; then
            echo "$0: $name did not start:" >&2
            cat "$tmp/$name.err" >&2
            exit 1
        fi
        sleep 0.05
    done
    sed -n 's/^listening on .*:\([0-9]*\)$/\1/p' "$tmp/$name.out" | head -n 1 >"$tmp/$name.port"
}

# The two workloads: bench/echo's options.
rtt_size=64
rtt_load="--mode rtt --conns 50 --size $rtt_size"
stream_load="--mode stream --conns 4 --size 65536 --window 1048576"

# measure RUN NAME WORKLOAD: one load run against server NAME; appends "RUN
# NAME WORKLOAD rate echoed-bytes server-cpu-seconds wall-seconds" to the
# results.
measure() {
    case $3 in
    rtt) options=$rtt_load ;;
    stream) options=$stream_load ;;
    esac
    ticks=$(cpu_ticks "$2")
    start=$(now)
    # $options unquoted: it is several words.
    if ! taskset -c "$load_cpu" "$load" --port "$(cat "$tmp/$2.port")" $options \
            --seconds "$seconds" >"$tmp/load.out"; then
        echo "$0: the load against $2 failed" >&2
        exit 1
    fi
    end=$(now)
    ticks=$(( $(cpu_ticks "$2") - ticks ))
    awk -v run="$1" -v name="$2" -v w="$3" -v t="$ticks" -v hz="$hz" -v s="$start" -v e="$end" '
        $1 == "rtt_per_s" || $1 == "mb_per_s" { rate = $2 }
        $1 == "echoed_bytes" { bytes = $2 }
        END { print run, name, w, rate, bytes, t / hz, e - s }' "$tmp/load.out" >>"$tmp/results"
}

# Both servers stay up (the idle one costs nothing), and each load run on
# twine is followed at once by the same on epoll: a disturbance of the
# machine falls on both figures of a pair rather than on one server only.
start_server twine "$twine_server" 0
start_server epoll "$epoll_server" 0
for i in $(seq "$runs"); do
    echo "run $i of $runs" >&2
    for w in rtt stream; do
        measure "$i" twine "$w"
        measure "$i" epoll "$w"
    done
done

cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo 2>/dev/null | head -n 1)
cpus=$(nproc 2>/dev/null || echo "?")

awk -v cpu="${cpu:-unknown CPU}" -v cpus="$cpus" -v runs="$runs" -v seconds="$seconds" \
    -v scpu="$server_cpu" -v lcpu="$load_cpu" -v rtt_size="$rtt_size" '
# Per server and workload: the rates, and the server CPU time per unit of
# work (microseconds per round trip, seconds per GB echoed); per workload, the
# ratio twine / epoll of each pair of runs.
{
    k = $2 " " $3
    n[k]++
    rate[k, n[k]] = $4
    cost[k, n[k]] = $3 == "rtt" ? $6 * 1e6 / ($5 / rtt_size) : $6 / ($5 / 1e9)
    busy[k, n[k]] = 100 * $6 / $7
    if ($2 == "epoll")              # its twine run came just before
        paired[$3, n[k]] = rate["twine " $3, n[k]] / $4
}

function sorted(a, k, out,    i, j, x) {   # out[1..n[k]] = a[k, *] in rising order
    for (i = 1; i <= n[k]; i++) {
        x = a[k, i]
        for (j = i - 1; j >= 1 && out[j] > x; j--)
            out[j + 1] = out[j]
        out[j + 1] = x
    }
}
function best(k,    s) { sorted(rate, k, s); return s[n[k]] }
function median(a, k,    s) { sorted(a, k, s); return s[int((n[k] + 1) / 2)] }
function median_ratio(w) { n[w] = n["twine " w]; return median(paired, w) }   # n[w]: pairs
function grouped(x, decimals,    s, frac) {
    s = sprintf("%." decimals "f", x)
    frac = ""
    if (decimals > 0) { frac = substr(s, index(s, ".")); s = substr(s, 1, index(s, ".") - 1) }
    while (s ~ /[0-9][0-9][0-9][0-9]/)
        sub(/[0-9][0-9][0-9]([,]|$)/, ",&", s)
    return s frac
}
function line(label, a, b, c) { printf "| %-42s | %20s | %20s | %12s |\n", label, a, b, c }
function rate_row(label, w, decimals,    t, e) {
    t = "twine " w; e = "epoll " w
    line(label, grouped(best(t), decimals) " (" grouped(median(rate, t), decimals) ")",
         grouped(best(e), decimals) " (" grouped(median(rate, e), decimals) ")",
         sprintf("%.2f (%.2f)", best(t) / best(e), median_ratio(w)))
}
function cost_row(label, w,    t, e) {
    t = "twine " w; e = "epoll " w
    line(label, sprintf("%.2f", median(cost, t)), sprintf("%.2f", median(cost, e)),
         sprintf("%.2f", median(cost, e) / median(cost, t)))
}
function goal(label, w,    r) {
    r = median_ratio(w)
    printf "  %-14s %5.2f   %s\n", label, r, (r >= 0.9 ? "met" : "NOT met")
}

END {
    printf "Echo benchmark over loopback: the server on CPU %s, the load (bench/echo) on CPU %s\n", scpu, lcpu
    printf "machine: %s CPUs, %s; %d run(s) of %s s each\n\n", cpus, cpu, runs, seconds
    printf "Throughput: the best run, the median in brackets (higher is better); ratio: of\n"
    printf "the best runs, and in brackets the median of the ratios of runs made one after the other\n\n"
    line("workload", "twine", "epoll ceiling", "ratio")
    printf "|%s|%s|%s|%s|\n", "--------------------------------------------", "---------------------:",
           "---------------------:", "-------------:"
    rate_row("round trips/s, 50 connections x " rtt_size " B", "rtt", 0)
    rate_row("MB/s, 4 connections x 64 KiB blocks", "stream", 1)
    printf "\nratio = twine / epoll ceiling. Goal: at least 0.9 in every workload (median ratio):\n"
    goal("round trips/s", "rtt")
    goal("MB/s", "stream")

    printf "\nServer CPU time per unit of work, median (lower is better; ratio = epoll / twine)\n\n"
    line("cost", "twine", "epoll ceiling", "ratio")
    printf "|%s|%s|%s|%s|\n", "--------------------------------------------", "---------------------:",
           "---------------------:", "-------------:"
    cost_row("CPU us per round trip", "rtt")
    cost_row("CPU s per GB echoed", "stream")
    printf "\nserver busy (median): twine %.0f%% / %.0f%%, epoll %.0f%% / %.0f%% (round trips / MB/s);\n",
           median(busy, "twine rtt"), median(busy, "twine stream"),
           median(busy, "epoll rtt"), median(busy, "epoll stream")
    printf "below 100%%, a server waited for the load generator and for wakeups.\n"
}
' "$tmp/results"

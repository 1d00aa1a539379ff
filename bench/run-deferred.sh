#!/bin/sh
# Runs the Deferred benchmark on twine (bench/deferred) and on Twisted
# (bench/deferred-twisted.py) and prints the two side by side, with the goals.
# Builds nothing: run `make bench/deferred` in the build directory first.
#
# Usage: run-deferred.sh [--quick] [path/to/bench/deferred]
#   The binary defaults to ./bench/deferred (from the build directory).
#   PYTHON names the interpreter with Twisted (default /usr/bin/python3).
set -eu

usage() {
    echo "usage: $0 [--quick] [path/to/bench/deferred]"
}

quick=
bin=./bench/deferred
for arg in "$@"; do
    case $arg in
    --quick) quick=--quick ;;
    -h | --help) usage; exit 0 ;;
    -*) usage >&2; exit 2 ;;
    *) bin=$arg ;;
    esac
done

here=$(cd "$(dirname "$0")" && pwd)
python=${PYTHON:-/usr/bin/python3}

if [ ! -x "$bin" ]; then
    echo "$0: no benchmark binary at $bin; build it with 'make bench/deferred'" >&2
    exit 1
fi

if ! "$python" -c 'import twisted' 2>/dev/null; then
    echo "$0: $python cannot import twisted (Debian package python3-twisted," \
         "which scripts/install-deps.sh installs)" >&2
    exit 1
fi

twine_out=$(mktemp)
twisted_out=$(mktemp)
trap 'rm -f "$twine_out" "$twisted_out"' EXIT

echo "running twine:   $bin $quick" >&2
"$bin" $quick >"$twine_out"
echo "running Twisted: $python $here/deferred-twisted.py $quick" >&2
"$python" "$here/deferred-twisted.py" $quick >"$twisted_out"

cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo 2>/dev/null | head -n 1)
cpus=$(nproc 2>/dev/null || echo "?")

awk -v cpu="${cpu:-unknown CPU}" -v cpus="$cpus" '
# Both outputs are "key value" lines; "#" lines are comments.
FNR == NR { if ($1 !~ /^#/) tw[$1] = $2; next }
/^# Twisted [0-9]/ { versions = substr($0, 3) }
$1 !~ /^#/ { tx[$1] = $2 }

function grouped(n,    s) {
    s = sprintf("%d", n)
    while (s ~ /[0-9][0-9][0-9][0-9]/)
        sub(/[0-9][0-9][0-9]([,]|$)/, ",&", s)
    return s
}
function ratio(k) { return tw[k "_ns"] > 0 ? tx[k "_ns"] / tw[k "_ns"] : 0 }
function row(label, k) {
    printf "| %-52s | %11.1f | %13.1f | %7.1fx |\n", label, tw[k "_ns"], tx[k "_ns"], ratio(k)
}
function goal(label, value, met) {
    printf "  %-28s %12s   %s\n", label, value, met ? "met" : "NOT met"
}

END {
    for (k in tw) if (k ~ /_ns$/ && !(k in tx)) { print "missing " k " from Twisted" > "/dev/stderr"; exit 1 }
    for (k in tx) if (k ~ /_ns$/ && !(k in tw)) { print "missing " k " from twine" > "/dev/stderr"; exit 1 }

    chain = grouped(tw["case2_links"]) "-link chain, per link"
    if (tx["case2_links"] != tw["case2_links"])
        chain = chain " (Twisted: " grouped(tx["case2_links"]) " links)"
    list = "DeferredList over " grouped(tw["case3_inputs"]) " fired Deferreds, per input"

    printf "Deferred benchmark: ns per operation, best of several runs (lower is better)\n"
    printf "machine: %s CPUs, %s; %s\n\n", cpus, cpu, versions
    printf "| %-52s | %11s | %13s | %8s |\n", "case", "twine ns/op", "Twisted ns/op", "ratio"
    printf "|%s|%s|%s|%s|\n", "------------------------------------------------------",
           "------------:", "--------------:", "---------:"
    row("create + 10 callbacks + fire + free", "case1")
    row(chain, "case2")
    row(list, "case3")
    printf "\nratio = Twisted / twine. Goals:\n"
    for (i = 1; i <= 3; i++)
        goal("case " i ": ratio >= 100x", sprintf("%.1fx", ratio("case" i)), ratio("case" i) >= 100)
    goal("case 1: < 150 ns", sprintf("%.1f ns", tw["case1_ns"]), tw["case1_ns"] < 150)
}
' "$twine_out" "$twisted_out"

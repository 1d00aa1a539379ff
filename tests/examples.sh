#!/bin/sh
# Runs the example programs and checks what they do. The network examples run
# for real on 127.0.0.1, on ports the kernel picks; the servers' "listening
# on" lines tell which. Every wait polls for an outcome, with a bounded total
# time, and every process started here is killed on the way out.
set -u
b="${top_builddir:-.}/examples"
clients="${top_srcdir:-.}/tests/example-clients.py"
python=${PYTHON3:-python3}
tmp=$(mktemp -d)
fail=0

cleanup() {   # kills what is still running: no exit status recorded yet
    for f in "$tmp"/*.pid; do
        [ -f "$f" ] && [ ! -f "${f%.pid}.rc" ] && kill -9 "$(cat "$f")" 2>/dev/null
    done
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

pass() { echo "PASS: $1"; }
failed() {   # failed NAME [FILE...]: the files' contents explain
    name=$1
    shift
    echo "FAIL: $name"
    for f in "$@"; do
        [ -s "$f" ] && sed 's/^/    /' "$f"
    done
    fail=1
}

check() {   # check NAME EXPECTED-REGEX COMMAND...
    name=$1 want=$2
    shift 2
    if out=$("$@" 2>&1) && printf '%s\n' "$out" | grep -q -E "$want"; then
        pass "$name"
    else
        echo "FAIL: $name (exit or output wrong):"
        printf '%s\n' "$out" | sed 's/^/    /'
        fail=1
    fi
}

# start NAME COMMAND...: runs COMMAND in the background with its output in
# $tmp/NAME.out and NAME.err, its pid in NAME.pid and, once it has exited,
# its exit status in NAME.rc.
start() {
    name=$1
    shift
    (
        sh -c 'echo $$ >"$0" && exec "$@"' "$tmp/$name.pid" "$@" \
            >"$tmp/$name.out" 2>"$tmp/$name.err"
        { echo $? >"$tmp/$name.rc"; } 2>/dev/null   # $tmp is gone after an interrupt
    ) &
}

# wait_for FILE REGEX [COUNT]: until COUNT (default 1) lines of FILE match,
# for at most 10 s.
wait_for() {
    tries=0
    until [ "$(grep -c -E "$2" "$1" 2>/dev/null)" -ge "${3:-1}" ] 2>/dev/null; do
        tries=$((tries + 1))
        [ $tries -gt 200 ] && return 1
        sleep 0.05
    done
}

# stop NAME: sends SIGTERM, then prints the exit status, or "still running"
# when the program has not exited 10 s later.
stop() {
    kill -TERM "$(cat "$tmp/$1.pid")"
    if wait_for "$tmp/$1.rc" .; then cat "$tmp/$1.rc"; else echo "still running"; fi
}

listening='^listening on 127\.0\.0\.1:[1-9][0-9]*$'

# port_of NAME N: the port of server NAME's Nth "listening on" line.
port_of() {
    sed -n 's/^listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$tmp/$1.out" | sed -n "$2p"
}

# check_run NAME WANT-STATUS WANT-OUTPUT COMMAND...: the command's exit status
# (0, or "fails" for any other) and its whole output (stdout and stderr; for a
# failure, a regex it must match).
check_run() {
    name=$1 want_status=$2 want=$3
    shift 3
    out=$("$@" 2>&1)
    status=$?
    if [ "$want_status" = 0 ]; then
        [ $status -eq 0 ] && [ "$out" = "$want" ]
    else
        [ $status -ne 0 ] && printf '%s\n' "$out" | grep -q -E "$want"
    fi
    if [ $? -eq 0 ]; then
        pass "$name"
    else
        echo "FAIL: $name (exit status $status, output:)"
        printf '%s\n' "$out" | sed 's/^/    /'
        fail=1
    fi
}

check deferred-demo '^7 pages: 5 ok, 2 failed; at most 3 fetches at once$' "$b/deferred-demo"
check tour '^done \(success\)$' "$b/tour"

# echo-server on two ports, echo-client against each ---------------------------

start echo "$b/echo-server" -i 127.0.0.1 0 0
if wait_for "$tmp/echo.out" "$listening" 2 && [ "$(port_of echo 1)" != "$(port_of echo 2)" ]; then
    pass "echo-server: listening on two ports"
else
    failed "echo-server: no two 'listening on' lines with distinct ports" "$tmp/echo.out" "$tmp/echo.err"
fi
port1=$(port_of echo 1)
port2=$(port_of echo 2)

check_run "echo-client: answers on the first port" 0 "$(printf 'hello, world\n\nthree  spaced  words')" \
    "$b/echo-client" 127.0.0.1 "$port1" "hello, world" "" "three  spaced  words"
check_run "echo-client: answers on the second port" 0 "second port" \
    "$b/echo-client" localhost "$port2" "second port"
if command -v "$python" >/dev/null; then
    check_run "echo-server: 16 MiB of raw bytes come back intact" 0 "" \
        "$python" "$clients" bulk "$port2" 16777216
else
    echo "FAIL: $python is needed (scripts/install-deps.sh installs it)"
    fail=1
fi

status=$(stop echo)
if [ "$status" = 0 ]; then
    pass "echo-server: SIGTERM stops it, exit status 0"
else
    failed "echo-server: after SIGTERM: $status" "$tmp/echo.err"
fi
check_run "echo-client: a closed port fails with its reason" fails \
    '^echo-client: connect to 127\.0\.0\.1:[0-9]+: Connection refused$' \
    "$b/echo-client" 127.0.0.1 "$port1" "nobody listens"

# chat-server with three clients ---------------------------------------------------

start chat "$b/chat-server" 0
if wait_for "$tmp/chat.out" "$listening"; then
    pass "chat-server: listening"
else
    failed "chat-server: no 'listening on' line" "$tmp/chat.out" "$tmp/chat.err"
fi
check_run "chat-server: joins, messages and leaves reach the others" 0 "" \
    "$python" "$clients" chat "$(port_of chat 1)" "$tmp/chat.out"
status=$(stop chat)
if [ "$status" = 0 ]; then
    pass "chat-server: SIGTERM stops it, exit status 0"
else
    failed "chat-server: after SIGTERM: $status" "$tmp/chat.err"
fi


# http-server and getpage-batch ------------------------------------------------------

mkdir "$tmp/site"
for i in 1 2 3 4 5 6; do
    head -c $((i * 5000)) /dev/zero | tr '\0' 'p' > "$tmp/site/page$i.html"
done
start http "$b/http-server" -i 127.0.0.1 -p 0 "$tmp/site"
if wait_for "$tmp/http.out" "$listening"; then
    pass "http-server: listening"
else
    failed "http-server: no 'listening on' line" "$tmp/http.out" "$tmp/http.err"
fi
http_port=$(port_of http 1)
for i in 1 2 3 4 5 6; do echo "http://127.0.0.1:$http_port/page$i.html"; done > "$tmp/urls"
check "getpage-batch: six pages, two at a time, all fetched" \
    '^6 pages: 6 ok, 0 failed; 105000 bytes in ' "$b/getpage-batch" -c 2 -f "$tmp/urls"
check "getpage-batch: each page's status and size" \
    '^200 +30000 B .* http://127\.0\.0\.1:[0-9]+/page6\.html$' "$b/getpage-batch" -f "$tmp/urls"
check_run "getpage-batch: a missing page and a closed port fail, exit status 1" fails \
    '^3 pages: 1 ok, 2 failed' \
    "$b/getpage-batch" "http://127.0.0.1:$http_port/page1.html" \
    "http://127.0.0.1:$http_port/missing.html" "http://127.0.0.1:$port1/"
check "http-server: a handler answers /hello" '.' "$b/getpage-batch" "http://127.0.0.1:$http_port/hello"
# Progress goes to stderr only when it is a terminal: script(1) gives the
# batch one. While /slow takes its second, page1 is done.
slow_batch="'$b/getpage-batch' http://127.0.0.1:$http_port/slow http://127.0.0.1:$http_port/page1.html"
check "getpage-batch: progress on a terminal" '1/2 pages, 5000 bytes, [0-9.]+ pages/s' \
    script -q -e -c "$slow_batch" /dev/null
if errs=$(sh -c "$slow_batch" 2>&1 >/dev/null) && [ -z "$errs" ]; then
    pass "getpage-batch: no progress when stderr is not a terminal"
else
    echo "FAIL: getpage-batch: stderr not a terminal, yet it printed:"
    printf '%s\n' "$errs" | sed 's/^/    /'
    fail=1
fi
status=$(stop http)
if [ "$status" = 0 ]; then
    pass "http-server: SIGTERM stops it, exit status 0"
else
    failed "http-server: after SIGTERM: $status" "$tmp/http.err"
fi

# make demo's script: the site, the server and the batch together
check "demo: 30 pages served and fetched" '^30 pages: 30 ok, 0 failed' \
    sh "${top_srcdir:-.}/examples/demo.sh" "$b"

exit $fail

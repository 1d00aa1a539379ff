# Starts nginx on a free port of 127.0.0.1; sourced by tests/nginx.sh and
# bench/run-getpage.sh. The caller sets $tmp (a private directory), $nginx and
# $python, and defines write_config PORT, which writes $tmp/nginx.conf.
#
#   nginx_start [COMMAND...]   runs "COMMAND... nginx" (e.g. taskset -c 0);
#                              sets $port and $nginx_pid; returns 0, or 1
#                              with $tmp/nginx.err and $tmp/error.log saying why
#   nginx_stop                 stops it (for the caller's exit trap)

nginx_pid=

nginx_free_port() {   # a port the kernel had free a moment ago
    "$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# nginx_wait_listening PORT: 0 once nginx accepts on PORT, 2 when it failed to
# start (its error log says why), 1 when neither happened within 10 s.
nginx_wait_listening() {
    "$python" - "$1" "$tmp/nginx.err" "$tmp/error.log" <<'PYTHON'
import os, socket, sys, time
port, logs = int(sys.argv[1]), sys.argv[2:]
deadline = time.monotonic() + 10
while time.monotonic() < deadline:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        sys.exit(0)
    except OSError:
        pass
    for log in logs:
        if os.path.exists(log) and "[emerg]" in open(log).read():
            sys.exit(2)
    time.sleep(0.02)
sys.exit(1)
PYTHON
}

# Another process may take the port between nginx_free_port and nginx's bind:
# then another port is tried.
nginx_start() {
    for attempt in 1 2 3 4 5; do
        port=$(nginx_free_port)
        write_config "$port"
        rm -f "$tmp/nginx.err" "$tmp/error.log"
        "$@" "$nginx" -p "$tmp/" -c "$tmp/nginx.conf" -e "$tmp/error.log" \
            >"$tmp/nginx.out" 2>"$tmp/nginx.err" &
        nginx_pid=$!
        status=0
        nginx_wait_listening "$port" || status=$?
        case $status in
        0) return 0 ;;
        2) wait "$nginx_pid" || true; nginx_pid= ;;
        *) return 1 ;;
        esac
    done
    return 1
}

nginx_stop() {
    if [ -n "$nginx_pid" ]; then
        kill -TERM "$nginx_pid" 2>/dev/null
        wait "$nginx_pid" 2>/dev/null
    fi
}

#!/bin/sh
# The HTTP client against a real peer: starts Debian's nginx with its own
# configuration in a temporary directory, on a free port of 127.0.0.1, and
# runs tests/nginx_fetch against it (a 1 KiB page, a gzipped page, a
# redirect, a 404, 200 requests over keep-alive, a 50 MiB file streamed in
# bounded memory). Under `make check-valgrind` (TWINE_VALGRIND=1) the driver
# runs under valgrind's memcheck, without its memory check. Skips when nginx
# is not installed.
set -u
nginx=${NGINX:-/usr/sbin/nginx}
python=${PYTHON3:-python3}
driver="${top_builddir:-.}/tests/nginx_fetch"

if [ ! -x "$nginx" ]; then
    echo "SKIP: nginx not installed"
    exit 77
fi
if ! command -v "$python" >/dev/null; then
    echo "FAIL: $python is needed to find a free port (scripts/install-deps.sh installs it)"
    exit 1
fi

tmp=$(mktemp -d)
nginx_pid=
cleanup() {
    if [ -n "$nginx_pid" ]; then
        kill -TERM "$nginx_pid" 2>/dev/null
        wait "$nginx_pid" 2>/dev/null
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

# The files served -----------------------------------------------------------------

www="$tmp/www"
mkdir "$www"
i=0
while [ $i -lt 16 ]; do                  # 16 lines of 64 bytes
    printf '%-63s\n' "line $i of a page of 1 KiB" >>"$www/page-1k.html"
    i=$((i + 1))
done
seq 1 4000 | sed 's/.*/line & of a text that nginx compresses with gzip/' >"$www/text.txt"
head -c 52428800 /dev/urandom >"$www/big.bin"

# nginx, on a free port ------------------------------------------------------------------

free_port() {   # a port the kernel had free a moment ago
    "$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

write_config() {   # write_config PORT
    cat >"$tmp/nginx.conf" <<EOF
daemon off;
master_process off;
worker_processes 1;
pid $tmp/nginx.pid;
error_log $tmp/error.log warn;
events { worker_connections 256; }
http {
    types { text/html html; text/plain txt; application/octet-stream bin; }
    default_type application/octet-stream;
    client_body_temp_path $tmp/client_body;
    proxy_temp_path $tmp/proxy;
    fastcgi_temp_path $tmp/fastcgi;
    uwsgi_temp_path $tmp/uwsgi;
    scgi_temp_path $tmp/scgi;
    log_format connections '\$connection \$connection_requests \$request_uri';
    access_log $tmp/access.log connections;
    keepalive_requests 1000;
    log_not_found off;
    sendfile on;
    gzip on;
    gzip_types text/plain;
    server {
        listen 127.0.0.1:$1;
        root $www;
        location = /redirect { return 301 /page-1k.html; }
    }
}
EOF
}

# wait_listening PORT: 0 once nginx accepts on PORT, 2 when it failed to start
# (its error log says why), 1 when neither happened within 10 s.
wait_listening() {
    "$python" - "$1" "$tmp/nginx.err" "$tmp/error.log" <<'EOF'
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
EOF
}

# Another process may take the port between free_port and nginx's bind: then
# another port is tried.
started=no
for attempt in 1 2 3 4 5; do
    port=$(free_port)
    write_config "$port"
    rm -f "$tmp/nginx.err" "$tmp/error.log"
    "$nginx" -p "$tmp/" -c "$tmp/nginx.conf" -e "$tmp/error.log" >"$tmp/nginx.out" 2>"$tmp/nginx.err" &
    nginx_pid=$!
    wait_listening "$port"
    case $? in
    0) started=yes; break ;;
    2) wait "$nginx_pid"; nginx_pid= ;;
    *) break ;;
    esac
done
if [ $started = no ]; then
    echo "FAIL: nginx did not start:"
    sed 's/^/    /' "$tmp/nginx.err" "$tmp/error.log" 2>/dev/null
    exit 1
fi
echo "nginx $("$nginx" -v 2>&1 | sed 's/.*\///') on 127.0.0.1:$port"

# The checks -------------------------------------------------------------------------------

if [ "${TWINE_VALGRIND:-0}" = 1 ]; then
    set -- "${top_builddir:-.}/libtool" --mode=execute valgrind --quiet --error-exitcode=99 \
        --leak-check=full --errors-for-leak-kinds=definite,indirect,possible \
        "$driver" --no-rss --timeout 240
else
    set -- "$driver"
fi
"$@" "$port" "$www" "$tmp/access.log" "$tmp"
status=$?
if [ $status -ne 0 ] && [ -s "$tmp/error.log" ]; then
    echo "nginx's error log:"
    sed 's/^/    /' "$tmp/error.log"
fi
exit $status

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
. "${top_srcdir:-.}/tests/nginx-start.sh"
cleanup() {
    nginx_stop
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

if ! nginx_start; then
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

#!/bin/sh
# make demo: serves a generated site with twine's HTTP server on 127.0.0.1 and
# fetches every page of it with the page-fetch batch, five at a time.
set -eu
bin="${1:-./examples}"
site=$(mktemp -d)
out="$site.server-output"
server=
cleanup() {
    [ -n "$server" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null
    rm -rf "$site" "$out"
}
trap cleanup EXIT INT TERM

for i in $(seq 1 30); do
    # Pages from 1 KiB to about 300 KiB.
    { echo "<html><body><h1>Page $i</h1><pre>"
      head -c $((i * i * 350)) /dev/zero | tr '\0' 'x' | fold -w 72
      echo "</pre></body></html>"; } > "$site/page$i.html"
done

"$bin/http-server" -i 127.0.0.1 -p 0 "$site" > "$out" 2>&1 &
server=$!
port=
for _ in $(seq 1 100); do     # wait (at most 10 s) for the server to listen
    port=$(sed -n 's/^listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$out")
    [ -n "$port" ] && break
    kill -0 "$server" 2>/dev/null || break
    sleep 0.1
done
if [ -z "$port" ]; then
    echo "demo: the HTTP server did not start:" >&2
    cat "$out" >&2
    exit 1
fi
echo "twine's HTTP server listens on 127.0.0.1:$port; fetching 30 pages, 5 at a time"
echo
for i in $(seq 1 30); do echo "http://127.0.0.1:$port/page$i.html"; done |
    "$bin/getpage-batch" -c 5 -t 10 -f -

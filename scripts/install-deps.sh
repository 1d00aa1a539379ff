#!/bin/sh
# Installs what building, testing and benchmarking twine needs on Debian 12.
# Run as root (or with sudo).
set -eu
export DEBIAN_FRONTEND=noninteractive

# nginx is the HTTP client's real peer: tests/nginx.sh and bench/run-getpage.sh
# each run their own on a port of their own, so Debian's service is not
# started. A policy-rc.d answering 101 ("forbidden") stops the package's
# scripts from starting it, which also installs it where there is no init
# system or where port 80 is taken.
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    trap 'rm -f "$policy"' EXIT
fi

apt-get update
apt-get install -y --no-install-recommends \
    build-essential autoconf automake libtool pkg-config \
    libev-dev libhttp-parser-dev libcmocka-dev libc-ares-dev libssl-dev openssl zlib1g-dev \
    valgrind python3 ca-certificates \
    nginx libcurl4-openssl-dev python3-twisted time

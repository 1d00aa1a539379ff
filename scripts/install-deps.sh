#!/bin/sh
# Installs what building, testing and benchmarking twine needs on Debian 12.
# Run as root (or with sudo).
set -eu
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends \
    build-essential autoconf automake libtool pkg-config \
    libev-dev libhttp-parser-dev libcmocka-dev libc-ares-dev libssl-dev zlib1g-dev \
    valgrind python3 ca-certificates

#!/bin/sh
# Fails when the shared library exports a symbol outside the tw_/TW_ namespace.
set -u
lib="${top_builddir:-.}/.libs/libtwine.so"
if [ ! -f "$lib" ]; then
    echo "SKIP: no shared library at $lib (built with --disable-shared?)"
    exit 77
fi
syms=$(${NM:-nm} -D --defined-only "$lib" | awk '{print $3}')
total=$(printf '%s\n' "$syms" | grep -c .)
# AddressSanitizer adds an __odr_asan.NAME indicator beside each exported
# global NAME: instrumentation, not API, so it counts as NAME.
bad=$(printf '%s\n' "$syms" | sed 's/^__odr_asan\.//' | grep -v -E '^(tw_|TW_)' |
      grep -v -E '^(_init|_fini|_edata|_end|__bss_start)$')
if [ -n "$bad" ]; then
    echo "FAIL: symbols outside tw_/TW_ exported by $lib:"
    printf '  %s\n' $bad
    exit 1
fi
echo "PASS: all $total exported symbols of $lib start with tw_ or TW_"

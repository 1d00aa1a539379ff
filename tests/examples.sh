#!/bin/sh
# Runs the example programs and checks what they print.
set -u
b="${top_builddir:-.}/examples"
fail=0
check() {   # check NAME EXPECTED-REGEX COMMAND...
    name=$1 want=$2
    shift 2
    if out=$("$@" 2>&1) && printf '%s\n' "$out" | grep -q -E "$want"; then
        echo "PASS: $name"
    else
        echo "FAIL: $name (exit or output wrong):"
        printf '%s\n' "$out" | sed 's/^/    /'
        fail=1
    fi
}
check deferred-demo '^7 pages: 5 ok, 2 failed; at most 3 fetches at once$' "$b/deferred-demo"
check tour '^done \(success\)$' "$b/tour"
exit $fail

#!/bin/sh
# Totals the test cases of automake test logs: cmocka's per-suite counts, a
# script's PASS:/FAIL:/SKIP: lines, and one case for any other test (or a
# suite that died before it could print its counts). Prints "N passed, N failed" (", N skipped").
# Usage: tests/summarize.sh DIR...   (each DIR a build tree that ran make check)
set -u
passed=0 failed=0 skipped=0
for dir in "$@"; do
    for trs in $(find "$dir" -name '*.trs' 2>/dev/null | sort); do
        log="${trs%.trs}.log"
        result=$(sed -n 's/^:test-result: //p' "$trs" | head -n 1)
        p=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' "$log" 2>/dev/null | tail -n 1)
        f=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' "$log" 2>/dev/null | tail -n 1)
        s=$(sed -n 's/^\[  SKIPPED \] \([0-9]*\) test.*/\1/p' "$log" 2>/dev/null | tail -n 1)
        if [ -n "$p" ] || [ -n "$f" ]; then
            passed=$((passed + ${p:-0}))
            failed=$((failed + ${f:-0}))
            skipped=$((skipped + ${s:-0}))
            # A suite that printed its counts but then crashed still failed.
            if [ "$result" != PASS ] && [ "$result" != SKIP ] && [ -z "$f" ]; then
                failed=$((failed + 1))
            fi
        elif grep -q -E '^(PASS|FAIL|SKIP): ' "$log" 2>/dev/null; then
            # A script test: one case per PASS:/FAIL:/SKIP: line it printed.
            p=$(grep -c '^PASS: ' "$log")
            f=$(grep -c '^FAIL: ' "$log")
            passed=$((passed + p))
            failed=$((failed + f))
            skipped=$((skipped + $(grep -c '^SKIP: ' "$log")))
            if [ "$result" != PASS ] && [ "$result" != SKIP ] && [ "$f" -eq 0 ]; then
                failed=$((failed + 1))
            fi
        else
            case "$result" in
                PASS|XFAIL) passed=$((passed + 1)) ;;
                SKIP) skipped=$((skipped + 1)) ;;
                *) failed=$((failed + 1)) ;;
            esac
        fi
    done
done
echo "$passed passed, $failed failed, $skipped skipped"

#!/bin/sh
# Fuzzes twine's HTTP/1.1 parsing layer (lib/http_parse.c, lib/http_headers.c)
# with libFuzzer, AddressSanitizer and UndefinedBehaviorSanitizer.
#
#   tests/fuzz/run.sh [SECONDS] [LIBFUZZER-OPTION...]   fuzz (default 60 s), one job
#   tests/fuzz/run.sh FILE...                          run the target on inputs, e.g. a crash
#
# A developer tool, not part of `make check`. It compiles the few sources the
# parser needs straight into the target, in tests/fuzz/out/ (or $FUZZ_OUT),
# which also holds the growing corpus and any crash-* files. The seeds in
# tests/fuzz/corpus/http_parse/ are read, never written. FUZZ_CFLAGS adds
# compiler options. CC picks the compiler
# (clang by default); config.h comes from the build directory ($BUILDDIR,
# default the source tree) when it has been configured.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
out=${FUZZ_OUT:-$here/out}
builddir=${BUILDDIR:-$top}
cc=${CC:-clang}
bin=$out/http_parse_fuzz

missing() {
    echo "run.sh: $1" >&2
    echo "run.sh: on Debian 12, as root: apt-get install $2" >&2
    exit 2
}

command -v "$cc" >/dev/null 2>&1 || missing "no $cc" "clang libclang-rt-14-dev"
[ -f /usr/include/http_parser.h ] || missing "no http_parser.h" "libhttp-parser-dev"
mkdir -p "$out/corpus"

# libFuzzer's runtime ships apart from clang on Debian (libclang-rt-N-dev).
printf 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n);\n'\
'int LLVMFuzzerTestOneInput(const char *d, unsigned long n) { return 0; }\n' >"$out/probe.c"
if ! "$cc" -fsanitize=fuzzer,address,undefined "$out/probe.c" -o "$out/probe" 2>"$out/probe.log"; then
    cat "$out/probe.log" >&2
    major=$("$cc" -dumpversion 2>/dev/null | cut -d. -f1)
    missing "$cc cannot link -fsanitize=fuzzer,address,undefined" \
        "libclang-rt-${major:-14}-dev (libFuzzer's and the sanitizers' runtimes)"
fi
rm -f "$out/probe" "$out/probe.c" "$out/probe.log"

if [ -f "$builddir/config.h" ]; then
    config_dir=$builddir
else
    printf '#define _GNU_SOURCE 1\n' >"$out/config.h"
    config_dir=$out
fi

"$cc" -std=gnu11 -g -O1 -fno-omit-frame-pointer \
    -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
    -Wall -Wextra -Wno-unused-parameter ${FUZZ_CFLAGS:-} \
    -I"$config_dir" -I"$top/include" -I"$top/lib" \
    "$here/http_parse_fuzz.c" \
    "$top/lib/http_parse.c" "$top/lib/http_headers.c" \
    "$top/lib/alloc.c" "$top/lib/failure.c" "$top/lib/log.c" \
    -lhttp_parser -o "$bin"

if [ $# -gt 0 ] && [ -f "$1" ]; then
    exec "$bin" "$@"
fi

seconds=${1:-60}
[ $# -gt 0 ] && shift
exec "$bin" -max_len=4096 -max_total_time="$seconds" -timeout=10 \
    -dict="$here/http.dict" -artifact_prefix="$out/" -print_final_stats=1 \
    "$@" "$out/corpus" "$here/corpus/http_parse"

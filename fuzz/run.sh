#!/usr/bin/env bash
# Build the edge fuzzer with clang (AddressSanitizer, UBSan, libFuzzer) and run
# it. CTest runs it for 60 s; run it longer on demand:
#
#   fuzz/run.sh [--seconds N] [--build-dir DIR] [-- extra libFuzzer flags]
#
# New inputs that reach new code are kept in BUILD_DIR/corpus, seeded from
# fuzz/corpus; a finding is written as BUILD_DIR/crash-* and the script fails.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
seconds=60
build_dir="$here/../build-fuzz"
extra=()
while (( $# )); do
    case "$1" in
        --seconds) seconds=$2; shift 2 ;;
        --build-dir) build_dir=$2; shift 2 ;;
        --) shift; extra=("$@"); break ;;
        -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
        *) echo "run.sh: unknown argument: $1" >&2; exit 2 ;;
    esac
done

launcher=()
if command -v ccache >/dev/null; then
    launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
fi
cmake -S "$here" -B "$build_dir" -G Ninja -DCMAKE_CXX_COMPILER=clang++ \
    "${launcher[@]}" >/dev/null
cmake --build "$build_dir"

mkdir -p "$build_dir/corpus"
cd "$build_dir"
# ASan's allocation cap turns an image that would allocate gigabytes into a
# finding instead of an out-of-memory kill.
ASAN_OPTIONS=allocator_may_return_null=0:detect_leaks=1 \
    ./edge_fuzzer -max_total_time="$seconds" -max_len=65536 -rss_limit_mb=2048 \
    -malloc_limit_mb=512 -timeout=10 -print_final_stats=1 "${extra[@]}" \
    corpus "$here/corpus"

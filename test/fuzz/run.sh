#!/usr/bin/env bash
# test/fuzz/run.sh [SECONDS]: build the libFuzzer harness for the voucher code
# parser (src/codes.c) with ASan and UBSan, and fuzz it for SECONDS (default 30).
# Installs clang and its runtime from Debian when missing. Prints "N passed, M failed".
set -u
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
secs=${1:-30}
CLANG=$(command -v clang-14 || command -v clang || true)
if [ -z "$CLANG" ] || ! echo 'int LLVMFuzzerTestOneInput(const char *d, long n){return 0;}' \
        | "$CLANG" -x c -fsanitize=fuzzer - -o /dev/null 2>/dev/null; then
    if [ "$(id -u)" -eq 0 ]; then
        export DEBIAN_FRONTEND=noninteractive
        apt-get install -y -qq clang-14 libclang-rt-14-dev >/dev/null 2>&1 ||
            { apt-get update -qq && apt-get install -y -qq clang-14 libclang-rt-14-dev >/dev/null; }
        CLANG=$(command -v clang-14)
    fi
fi
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
if ! "$CLANG" -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -Isrc \
        test/fuzz/fuzz_codes.c src/codes.c -o "$out/fuzz_codes"; then
    echo "0 passed, 1 failed"; exit 1
fi
mkdir -p "$out/corpus"
printf 'MVGM2E-7T98XV-S4YG7N' > "$out/corpus/seed1"
printf 'mvgm2e 7t98xv s4yg7n' > "$out/corpus/seed2"
if "$out/fuzz_codes" -max_total_time="$secs" -max_len=64 -print_final_stats=1 "$out/corpus" \
        >"$out/log" 2>&1; then
    grep -E 'stat::number_of_executed_units|Done' "$out/log" | tail -2
    echo "1 passed, 0 failed"
else
    tail -40 "$out/log"
    echo "0 passed, 1 failed"; exit 1
fi

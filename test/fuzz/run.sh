#!/usr/bin/env bash
# test/fuzz/run.sh [SECONDS] [TARGET...]: build the libFuzzer harnesses with ASan and
# UBSan and fuzz each for SECONDS (default 30). Targets (default: all):
#   codes      the voucher code parser, src/codes.c (pure C)
#   settings   the program settings parser, src/settings.c, compiled unchanged against
#              test/fuzz/pgstub (a stand-in for the backend's Jsonb, Numeric and ereport)
#   rules      the earning-rule definition parser, src/rules_parse.c, against pgstub
# Adding a parser is one line in TARGETS below, a harness test/fuzz/fuzz_NAME.c and seeds
# in test/fuzz/seeds/NAME/ (and NAME.dict, if it helps). Installs clang and its runtime
# from Debian when missing. FUZZ_CORPUS_DIR keeps the grown corpora between runs.
# Prints "N passed, M failed" (one per target).
set -u
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
secs=${1:-30}
shift || true

# name | sources (besides the harness) | include path (first wins) | -max_len
TARGETS=(
    "codes|src/codes.c|-Isrc|64"
    "settings|src/settings.c test/fuzz/pgstub/pgstub.c test/fuzz/pgstub/lystub.c|-Itest/fuzz/pgstub -Isrc|4096"
    "rules|src/rules_parse.c src/settings.c test/fuzz/pgstub/pgstub.c test/fuzz/pgstub/lystub.c|-Itest/fuzz/pgstub -Isrc|4096"
)

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

pass=0 fail=0
for t in "${TARGETS[@]}"; do
    IFS='|' read -r name srcs incs maxlen <<<"$t"
    if [ $# -gt 0 ] && [[ " $* " != *" $name "* ]]; then continue; fi
    echo "--- fuzz_$name, $secs s"
    # shellcheck disable=SC2086  # srcs and incs are word lists
    if ! "$CLANG" -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
            -Wall -Wextra -Werror -Wno-unused-parameter -Wno-sign-compare -Wno-missing-field-initializers \
            $incs "test/fuzz/fuzz_$name.c" $srcs -o "$out/fuzz_$name" 2>"$out/$name.build"; then
        cat "$out/$name.build"
        fail=$((fail + 1)); continue
    fi
    corpus=${FUZZ_CORPUS_DIR:+$FUZZ_CORPUS_DIR/$name}
    corpus=${corpus:-$out/corpus_$name}
    mkdir -p "$corpus"
    dict=()
    [ -f "test/fuzz/$name.dict" ] && dict=(-dict="test/fuzz/$name.dict")
    if "$out/fuzz_$name" -max_total_time="$secs" -max_len="$maxlen" -print_final_stats=1 \
            -timeout=10 -rss_limit_mb=1024 "${dict[@]}" "$corpus" "test/fuzz/seeds/$name" \
            >"$out/$name.log" 2>&1; then
        grep -E 'stat::number_of_executed_units|Done' "$out/$name.log" | tail -2
        pass=$((pass + 1))
    else
        tail -40 "$out/$name.log"
        # keep the crashing input for the report
        ls -1 crash-* leak-* timeout-* oom-* 2>/dev/null | head
        fail=$((fail + 1))
    fi
done
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]

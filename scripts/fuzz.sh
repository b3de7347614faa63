#!/usr/bin/env bash
# Coverage-guided fuzzing (libFuzzer + AddressSanitizer) of one parser of user input:
#   scripts/fuzz.sh TARGET SECONDS [libFuzzer flags…]     TARGET: gguf safetensors json png tokenizer noise multipart request (or all)
# Builds fuzz/unclip-fuzz with -sanitize=fuzzer,address into .build-fuzz (C code with ASan and coverage too), seeds
# fuzz/corpus/<target>/ from the fixtures (unclip-fuzz seeds), runs for SECONDS, and prints executions, executions
# per second, coverage and corpus size. A crash leaves its input in fuzz/crashes/; commit it under
# fuzz/regressions/<target>/ with the fix (the test suite replays that folder).
set -euo pipefail
cd "$(dirname "$0")/.."
target="${1:?usage: scripts/fuzz.sh TARGET SECONDS [libFuzzer flags…]}"
seconds="${2:?usage: scripts/fuzz.sh TARGET SECONDS}"
shift 2
targets=(gguf safetensors json png tokenizer noise multipart request)
if [ "$target" = all ]; then sel=("${targets[@]}"); else sel=("$target"); fi
for t in "${sel[@]}"; do
    [[ " ${targets[*]} " == *" $t "* ]] || { echo "fuzz.sh: unknown target '$t' (${targets[*]} or all)" >&2; exit 2; }
done
bash scripts/install-deps.sh
swift build --product unclip-fuzz >/dev/null
swift build --product unclip-fuzz --build-path .build-fuzz \
    -Xswiftc -sanitize=fuzzer,address -Xswiftc -DFUZZING \
    -Xcc -fsanitize=fuzzer-no-link,address >/dev/null
seeds=fuzz/corpus/.seeds
rm -rf "$seeds"
.build/debug/unclip-fuzz seeds "$seeds" >/dev/null
mkdir -p fuzz/crashes
export ASAN_OPTIONS="detect_leaks=0:${ASAN_OPTIONS:-}"
for t in "${sel[@]}"; do
    mkdir -p "fuzz/corpus/$t" "fuzz/regressions/$t"
    log="fuzz/corpus/$t.log"
    set +e
    UNCLIP_FUZZ_TARGET="$t" .build-fuzz/debug/unclip-fuzz -max_total_time="$seconds" -max_len=65536 -rss_limit_mb=4096 \
        -timeout=25 -print_final_stats=1 -artifact_prefix="fuzz/crashes/$t-" "$@" \
        "fuzz/corpus/$t" "$seeds/$t" "fuzz/regressions/$t" >"$log" 2>&1
    rc=$?
    set -e
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
    ft=$(grep -o 'ft: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
    corpus=$(ls "fuzz/corpus/$t" | wc -l)
    echo "$t: ${runs:-?} executions in ${seconds} s (${rate:-?}/s), coverage ${cov:-?} edges, ${ft:-?} features, corpus ${corpus} inputs, exit ${rc}"
    if [ "$rc" -ne 0 ]; then
        echo "fuzz.sh: $t failed; the log is $log, the input in fuzz/crashes/" >&2
        grep -m 20 -E 'ERROR|SUMMARY|Fatal error|deadly signal|crash-|timeout-' "$log" >&2 || true
        exit 1
    fi
done

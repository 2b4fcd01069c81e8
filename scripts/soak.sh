#!/usr/bin/env bash
# Soak: the client against the mock with every fault kind on at once, for minutes, sampling
# the client's resident memory and open descriptors every 5 s. Prints the samples and the
# result file's counts; docs/RELIABILITY.md keeps the figures.
#
#   scripts/soak.sh [MINUTES] [RATE] [ENGINE]    defaults: 10 min, 300 req/s, uring
#
# Builds the release binary first (cargo build --release). The mock faults 26 % of requests
# (2 % for each of its 13 fault kinds); the client's stall timeout is 1 s.
set -euo pipefail
minutes="${1:-10}"
rate="${2:-300}"
engine="${3:-uring}"
cd "$(dirname "$0")/.."
cargo build --release -q
bin="${CARGO_TARGET_DIR:-target}/release/servebench"
work="$(mktemp -d)"
trap 'kill "$mock_pid" 2>/dev/null || true; rm -rf "$work"' EXIT

"$bin" mock --port 0 --ttft-ms 20 --itl-ms 2 --fault-rate-all 0.26 2>"$work/mock.err" &
mock_pid=$!
for _ in $(seq 100); do grep -q "listening on" "$work/mock.err" && break; sleep 0.1; done
url="$(grep -o 'http://[^ ]*' "$work/mock.err" | head -1)"
requests=$(awk -v r="$rate" -v m="$minutes" 'BEGIN { printf "%d", r * m * 60 }')
echo "soak: $requests requests at $rate req/s against $url ($engine engine), all faults at 26 %"

"$bin" --base-url "$url" --model soak --io-engine "$engine" --num-prompts "$requests" \
    --request-rate "$rate" --max-concurrency 256 --random-input-len 128 \
    --random-output-len 32 --ignore-eos --stall-timeout 1 --disable-tqdm \
    --save-result --result-dir "$work" --result-filename soak.json \
    >"$work/client.out" 2>"$work/client.err" &
pid=$!
printf '%8s %10s %6s\n' "t (s)" "RSS (KiB)" "fds"
start=$(date +%s)
while kill -0 "$pid" 2>/dev/null; do
    rss=$(awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status" 2>/dev/null || true)
    fds=$(ls "/proc/$pid/fd" 2>/dev/null | wc -l || true)
    [ -n "$rss" ] && printf '%8d %10s %6s\n' "$(( $(date +%s) - start ))" "$rss" "$fds"
    sleep 5
done
wait "$pid" || { cat "$work/client.err"; exit 1; }
python3 - "$work/soak.json" "$requests" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
sent = int(sys.argv[2])
c, f = r["completed"], r["failed"]
print(f"completed {c}, failed {f}, sum {c + f} of {sent} planned")
print("failures by category:", r["failures_by_category"])
print("keep-alive retries:", r["keepalive_retries"])
print("client resources:", r["client_resources"])
assert c + f == sent, "completed + failed != sent"
assert sum(r["failures_by_category"].values()) == f, "a failure counted twice or not at all"
assert r["client_resources"]["fds_after"] == r["client_resources"]["fds_before"], "descriptor leak"
print("soak: PASS")
PY

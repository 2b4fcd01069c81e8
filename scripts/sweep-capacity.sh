#!/usr/bin/env bash
# An SLO search against the mock's capacity model, to see `servebench sweep` find a known knee
# (docs/SWEEP.md, "Measured"). Builds the release binary, starts the mock on its own CPUs, runs
# the search as one process or as HOSTS processes sharing the output directory, prints the
# table, the answer and the start skew between hosts.
#
#   scripts/sweep-capacity.sh [HOSTS]        (default 1)
#
# Environment (defaults sized for a 16-core host; on 2 cores try MOCK_CPUS=1 CLIENT_CPUS=0
# BATCH=64 BATCH_ITL_MS=0.02 START=200):
#   MOCK_CPUS=8-15 CLIENT_CPUS=0-7  CPU lists for taskset (the client's are split between hosts)
#   BATCH=2048 TTFT_MS=10 ITL_MS=2 BATCH_ITL_MS=0.001 OUTPUT_LEN=16   the mock's capacity model
#   SLO="ttft:100" START=2000 FACTOR=8   the search: constraint, first rate, seconds per point
#   OUT=/tmp/sweep-capacity              where the results go (emptied first)
set -euo pipefail
cd "$(dirname "$0")/.."
hosts="${1:-1}"
mock_cpus="${MOCK_CPUS:-8-15}"
client_cpus="${CLIENT_CPUS:-0-7}"
out="${OUT:-/tmp/sweep-capacity}"
port=18300

cargo build --release --quiet
bin="${CARGO_TARGET_DIR:-target}/release/servebench"
ulimit -n 1048576 2>/dev/null || ulimit -n "$(ulimit -Hn)"

expand() { # "0-3,8" -> "0 1 2 3 8"
    local part a b
    for part in ${1//,/ }; do
        if [[ $part == *-* ]]; then a=${part%-*}; b=${part#*-}; seq "$a" "$b"; else echo "$part"; fi
    done | tr '\n' ' '
}
read -r -a mock_list <<<"$(expand "$mock_cpus")"
read -r -a client_list <<<"$(expand "$client_cpus")"
(( ${#client_list[@]} >= hosts )) || { echo "need at least $hosts client CPUs" >&2; exit 1; }

rm -rf "$out"; mkdir -p "$out"
taskset -c "$mock_cpus" "$bin" mock --port "$port" --ttft-ms "${TTFT_MS:-10}" --itl-ms "${ITL_MS:-2}" \
    --max-batch "${BATCH:-2048}" --batch-itl-ms "${BATCH_ITL_MS:-0.001}" \
    --num-shards "${#mock_list[@]}" --cpus "$(IFS=,; echo "${mock_list[*]}")" >"$out/mock.log" 2>&1 &
mock=$!
trap 'kill $mock 2>/dev/null || true' EXIT
sleep 2

per=$(( ${#client_list[@]} / hosts ))
pids=()
for (( i = 0; i < hosts; i++ )); do
    cpus=$(IFS=,; echo "${client_list[*]:$((i * per)):$per}")
    multi=()
    (( hosts > 1 )) && multi=(--num-hosts "$hosts" --host-index "$i")
    taskset -c "$cpus" "$bin" sweep --base-url "http://127.0.0.1:$port" --dataset-name random \
        --random-input-len 64 --random-output-len "${OUTPUT_LEN:-16}" --num-shards "$per" \
        --skip-server-alignment --disable-tqdm --burstiness 1000 \
        --slo-search request-rate --slo "${SLO:-ttft:100}" --search-start "${START:-2000}" \
        --sweep-num-prompts-factor "${FACTOR:-8}" --saturation-min-seconds 2 \
        "${multi[@]}" -o "$out/search" >"$out/host$i.log" 2>"$out/host$i.err" &
    pids+=($!)
done
started=$SECONDS
status=0
for p in "${pids[@]}"; do wait "$p" || status=1; done
echo "wall time: $(( SECONDS - started )) s; exit status $status"
sed -n '/^Sweep: /,$p' "$out/host0.log"
grep -h -E "Stopping early|^error" "$out"/host*.err || true
if (( hosts > 1 )); then
    python3 - "$out/search" "$hosts" <<'PY'
import json, os, sys
d, n = sys.argv[1], int(sys.argv[2])
k = 0
while os.path.isdir(f"{d}/point-{k:03d}"):
    t = [json.load(open(f"{d}/point-{k:03d}/host-{i}.json"))["servebench_host"]["t0_unix_ns"] for i in range(n)]
    print(f"point {k}: start skew between hosts {(max(t) - min(t)) / 1e6:.4f} ms")
    k += 1
PY
fi
exit "$status"

#!/usr/bin/env bash
# Produces the measured tables of docs/PERFORMANCE.md: `servebench calibrate` (mock as a
# child process with its truth log, client on the other CPUs) over the workloads of the
# fidelity targets. Usage: scripts/perf-table.sh [OUTPUT.md]   (default: docs/PERFORMANCE.md,
# rewritten between its perf-table markers). Takes about three minutes on 2 cores.
#
# Needs: the Rust toolchain; root or raised RLIMIT_MEMLOCK/RLIMIT_NOFILE (see README).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
bin=target/release/servebench
out=${1:-docs/PERFORMANCE.md}
extra=${CALIBRATE_ARGS:-}

# Holding N streams takes N descriptors in the client and N in the mock; where the hard limit
# is lower (and cannot be raised: no CAP_SYS_RESOURCE), hold as many as it allows.
held=20000
hard=$(ulimit -Hn)
if [[ "$hard" != unlimited ]] && (( hard < held + 300 )); then
  held=$(( (hard - 300) / 500 * 500 ))
fi

tables=$(mktemp)
trap 'rm -f "$tables"' EXIT
{
  echo "Measured $(date -u +%Y-%m-%d) on $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), Linux $(uname -r), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)."
  echo
  echo "**Ladder** — mock TTFT 50 ms, ITL 10 ms, 128 tokens; each stream sends 2 requests; the last row is the request-rate ceiling (zero-latency mock, 16 tokens, 512 streams, \`--request-rate inf\`):"
  echo
  # shellcheck disable=SC2086
  $bin calibrate --markdown --steps 1,100,1000 --ceiling-requests 30000 $extra
  echo
  echo "**10,000 streams** — ITL 50 ms, 128 tokens, one request per stream:"
  echo
  # shellcheck disable=SC2086
  $bin calibrate --markdown --steps 10000 --itl-ms 50 --waves 1 --ceiling-requests 0 $extra
  echo
  if (( held < 20000 )); then
    echo "**$held streams held** (the open-file hard limit here is $hard per process, so 20,000 cannot be held) — ITL 200 ms, 128 tokens, one request per stream (client RSS per stream):"
  else
    echo "**20,000 streams held** — ITL 200 ms, 128 tokens, one request per stream (client RSS per stream):"
  fi
  echo
  # shellcheck disable=SC2086
  $bin calibrate --markdown --steps "$held" --itl-ms 200 --waves 1 --ceiling-requests 0 $extra
  echo
  echo "**5,000 requests/s** — 1,050 streams of 16 tokens (TTFT 50 ms, ITL 10 ms), three requests each (send lag):"
  echo
  # shellcheck disable=SC2086
  $bin calibrate --markdown --steps 1050 --output-len 16 --waves 3 --ceiling-requests 0 $extra
} >"$tables"

if [[ -f "$out" ]] && grep -q '<!-- perf-table:begin -->' "$out"; then
  awk -v tables="$tables" '
    /<!-- perf-table:begin -->/ { print; while ((getline line < tables) > 0) print line; skip = 1; next }
    /<!-- perf-table:end -->/ { skip = 0 }
    !skip { print }
  ' "$out" >"$out.tmp" && mv "$out.tmp" "$out"
else
  cat "$tables" >"$out"
fi
echo "wrote $out"

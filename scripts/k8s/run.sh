#!/usr/bin/env bash
# One multi-host servebench run on Kubernetes: render the Indexed Job with the host count, image,
# target and one absolute start time, apply it, wait for every host, then run the merge Job and
# copy merged.json out of its log.
#
#   scripts/k8s/run.sh -n 4 -i registry.example/servebench:v1 -u http://vllm.llm.svc:8000 -- \
#     --model meta-llama/Llama-3.1-8B-Instruct --dataset-name random --random-input-len 1024 \
#     --random-output-len 128 --num-prompts 20000 --request-rate 200 --seed 7
#
# Everything after `--` is passed to every host unchanged (the same --seed on all of them is
# what makes their shares one plan). --render-only DIR writes the manifests and applies nothing.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

usage() {
  cat <<USAGE
usage: $0 -n HOSTS -i IMAGE -u BASE_URL [options] -- [servebench bench flags]
  -n HOSTS       number of hosts (pods, one per node where possible)
  -i IMAGE       servebench image (build: docker build -f scripts/k8s/Dockerfile .)
  -u BASE_URL    the server, as the pods reach it (e.g. http://vllm.default.svc:8000)
  -c CPUS        whole CPUs per host, requests = limits (default 8)
  -m MEMORY      memory per host, requests = limits (default 8Gi)
  -s SECONDS     start this long after submission; leave time to pull the image (default 90)
  -N NAMESPACE   namespace (default: default); the servebench-results PVC must exist there
  -r RUN_ID      job name and result subdirectory (default servebench-YYYYmmdd-HHMMSS)
  -p PROFILE     seccomp: unconfined (default) or localhost (profiles/servebench-io-uring.json)
  -t TIMEOUT     how long to wait for the run, kubectl duration (default 2h)
  -o FILE        where to write merged.json (default ./RUN_ID-merged.json)
  --render-only DIR   write the rendered manifests to DIR and stop
USAGE
}

hosts="" image="" base_url="" cpus=8 memory=8Gi start_in=90 namespace=default
run_id="servebench-$(date -u +%Y%m%d-%H%M%S)" profile=unconfined timeout=2h out="" render_dir=""
while [ $# -gt 0 ]; do
  case "$1" in
    -n) hosts="$2"; shift 2 ;;
    -i) image="$2"; shift 2 ;;
    -u) base_url="$2"; shift 2 ;;
    -c) cpus="$2"; shift 2 ;;
    -m) memory="$2"; shift 2 ;;
    -s) start_in="$2"; shift 2 ;;
    -N) namespace="$2"; shift 2 ;;
    -r) run_id="$2"; shift 2 ;;
    -p) profile="$2"; shift 2 ;;
    -t) timeout="$2"; shift 2 ;;
    -o) out="$2"; shift 2 ;;
    --render-only) render_dir="$2"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    --) shift; break ;;
    *) echo "unknown option: $1" >&2; usage >&2; exit 2 ;;
  esac
done

fail() { echo "run.sh: $*" >&2; exit 2; }
if [ -z "$hosts" ] || [ -z "$image" ] || [ -z "$base_url" ]; then usage >&2; exit 2; fi
[[ "$hosts" =~ ^[1-9][0-9]*$ ]] || fail "-n must be a positive integer, got '$hosts'"
[[ "$cpus" =~ ^[1-9][0-9]*$ ]] || fail "-c must be a whole number of CPUs (the CPU manager pins only those), got '$cpus'"
[[ "$start_in" =~ ^[0-9]+$ ]] || fail "-s must be seconds, got '$start_in'"
[[ "$run_id" =~ ^[a-z0-9]([-a-z0-9]{0,45}[a-z0-9])?$ ]] ||
  fail "-r must be a DNS label of at most 47 characters (it names the Jobs), got '$run_id'"
case "$profile" in
  unconfined) seccomp_type=Unconfined ;;
  localhost) seccomp_type=Localhost ;;
  *) fail "-p must be unconfined or localhost, got '$profile'" ;;
esac
out="${out:-./${run_id}-merged.json}"

# The one start time every host shares, fixed here at submission (not per pod).
start_at="$(date -u -d "+${start_in} sec" +%Y-%m-%dT%H:%M:%SZ)"

# The bench flags as a YAML flow sequence of double-quoted strings (JSON-style escapes).
yaml_quote() {
  local s="${1//\\/\\\\}"
  s="${s//\"/\\\"}"
  s="${s//$'\t'/\\t}"
  s="${s//$'\n'/\\n}"
  printf '"%s"' "$s"
}
bench_args="["
sep=""
for a in "$@"; do
  bench_args+="$sep$(yaml_quote "$a")"
  sep=", "
done
bench_args+="]"

# sed replacement text: escape the characters sed treats specially (\, & and the | delimiter).
sed_escape() { printf '%s' "$1" | sed -e 's/[\\&|]/\\&/g'; }

render() {
  # Localhost profiles name their file under the kubelet's seccomp directory.
  local localhost='/^__SECCOMP_LOCALHOST__$/d'
  if [ "$seccomp_type" = Localhost ]; then
    localhost='s|^__SECCOMP_LOCALHOST__$|          localhostProfile: profiles/servebench-io-uring.json|'
  fi
  sed -e "s|__RUN_ID__|$(sed_escape "$run_id")|g" \
      -e "s|__NAMESPACE__|$(sed_escape "$namespace")|g" \
      -e "s|__NUM_HOSTS__|$hosts|g" \
      -e "s|__START_AT__|$start_at|g" \
      -e "s|__IMAGE__|$(sed_escape "$image")|g" \
      -e "s|__BASE_URL__|$(sed_escape "$(yaml_quote "$base_url" | sed 's/^"//; s/"$//')")|g" \
      -e "s|__CPUS__|$cpus|g" \
      -e "s|__MEMORY__|$(sed_escape "$memory")|g" \
      -e "s|__SECCOMP_TYPE__|$seccomp_type|g" \
      -e "s|__BENCH_ARGS__|$(sed_escape "$bench_args")|g" \
      -e "$localhost" \
      "$1"
}

if [ -n "$render_dir" ]; then
  mkdir -p "$render_dir"
  for f in servebench-results-pvc.yaml servebench-indexed-job.yaml servebench-merge-job.yaml; do
    render "$here/$f" >"$render_dir/$f"
  done
  echo "rendered into $render_dir (start at $start_at)"
  exit 0
fi

command -v kubectl >/dev/null || fail "kubectl not found"
kubectl -n "$namespace" get pvc servebench-results >/dev/null 2>&1 ||
  fail "no PVC servebench-results in namespace $namespace: render and apply servebench-results-pvc.yaml first"

echo "run $run_id: $hosts hosts, start at $start_at, target $base_url"
render "$here/servebench-indexed-job.yaml" | kubectl apply -f -

# Wait for Complete or Failed, whichever comes first (kubectl wait takes one condition).
wait_job() {
  local job="$1" done_pid fail_pid rc=0
  kubectl -n "$namespace" wait --for=condition=complete "job/$job" --timeout="$timeout" >/dev/null &
  done_pid=$!
  kubectl -n "$namespace" wait --for=condition=failed "job/$job" --timeout="$timeout" >/dev/null &
  fail_pid=$!
  wait -n "$done_pid" "$fail_pid" || rc=$?
  kill "$done_pid" "$fail_pid" 2>/dev/null || true
  wait "$done_pid" "$fail_pid" 2>/dev/null || true
  [ "$(kubectl -n "$namespace" get "job/$job" \
        -o jsonpath='{.status.conditions[?(@.type=="Complete")].status}')" = "True" ] || {
    echo "job $job did not complete (wait rc $rc); its pods:" >&2
    kubectl -n "$namespace" get pods -l "job-name=$job" -o wide >&2 || true
    return 1
  }
}

if ! wait_job "$run_id"; then
  echo "logs: kubectl -n $namespace logs -l job-name=$run_id --prefix" >&2
  exit 1
fi
echo "all $hosts hosts done; merging"
render "$here/servebench-merge-job.yaml" | kubectl apply -f -
wait_job "$run_id-merge"
kubectl -n "$namespace" logs "job/$run_id-merge" |
  sed -n '/^----- BEGIN merged.json -----$/,/^----- END merged.json -----$/p' |
  sed '1d;$d' >"$out"
echo "merged result: $out (also /results/$run_id/merged.json on the servebench-results volume)"

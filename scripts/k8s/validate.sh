#!/usr/bin/env bash
# Checks the Kubernetes manifests and the Slurm script without a cluster:
#  1. renders the templates with run.sh --render-only (both seccomp variants);
#  2. validates every rendered manifest against the Kubernetes OpenAPI schemas bundled by PyPI's
#     kubernetes-validate, in --strict mode (unknown fields are errors), for K8S_VERSION
#     (default 1.30.0); installed into a venv under /tmp when missing;
#  3. checks what the schemas cannot express but the API server or this setup needs (enum
#     values, Indexed mode, Guaranteed QoS, the io_uring capabilities, the shared volume) and
#     that the seccomp profile is valid JSON that leaves io_uring allowed;
#  4. bash -n and, when installed, shellcheck over the shell scripts.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
k8s_version="${K8S_VERSION:-1.30.0}"
venv="${KV_VENV:-/tmp/servebench-kubernetes-validate}"

if [ ! -x "$venv/bin/kubernetes-validate" ]; then
  echo "installing kubernetes-validate into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q kubernetes-validate
fi
echo "kubernetes-validate $("$venv/bin/kubernetes-validate" --version), schemas for Kubernetes $k8s_version"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
for profile in unconfined localhost; do
  "$here/run.sh" -n 4 -i registry.example/servebench:v1 -u http://vllm.default.svc:8000 \
    -r check-"$profile" -p "$profile" --render-only "$work/$profile" -- \
    --model meta-llama/Llama-3.1-8B-Instruct --num-prompts 1000 --request-rate 50 --seed 7 >/dev/null
done

"$venv/bin/kubernetes-validate" --strict -k "$k8s_version" "$work"/*/*.yaml

"$venv/bin/python" - "$work" "$here/seccomp-io-uring.json" <<'PY'
import glob, json, sys, yaml

work, profile_path = sys.argv[1], sys.argv[2]
errors = []

def check(ok, what):
    if not ok:
        errors.append(what)

for path in sorted(glob.glob(f"{work}/*/*.yaml")):
    doc = yaml.safe_load(open(path))
    name = f"{path[len(work) + 1:]}"
    if doc["kind"] == "PersistentVolumeClaim":
        check(doc["spec"]["accessModes"] == ["ReadWriteMany"], f"{name}: PVC must be ReadWriteMany")
        continue
    spec = doc["spec"]
    pod = spec["template"]["spec"]
    check(pod["restartPolicy"] == "Never", f"{name}: restartPolicy must be Never")
    claims = [v["persistentVolumeClaim"]["claimName"] for v in pod["volumes"]]
    check(claims == ["servebench-results"], f"{name}: must mount the servebench-results PVC")
    if doc["metadata"]["name"].endswith("-merge"):
        continue
    check(spec.get("completionMode") == "Indexed", f"{name}: completionMode must be Indexed")
    check(spec["completions"] == spec["parallelism"], f"{name}: completions != parallelism")
    env = {e["name"]: e["value"] for e in pod["containers"][0]["env"]}
    check(env.get("SERVEBENCH_NUM_HOSTS") == str(spec["completions"]),
          f"{name}: SERVEBENCH_NUM_HOSTS must equal completions")
    check(env.get("START_AT", "").endswith("Z"), f"{name}: START_AT must be an absolute UTC time")
    sec = pod["securityContext"]["seccompProfile"]
    check(sec["type"] in ("Unconfined", "Localhost"), f"{name}: seccomp type {sec['type']!r}")
    check((sec["type"] == "Localhost") == ("localhostProfile" in sec),
          f"{name}: localhostProfile goes with type Localhost only")
    for c in pod["containers"]:
        res = c["resources"]
        check(res["requests"] == res["limits"], f"{name}: requests != limits (not Guaranteed QoS)")
        check(str(res["requests"]["cpu"]).isdigit(), f"{name}: CPU count must be whole for pinning")
        caps = c["securityContext"]["capabilities"]["add"]
        check("IPC_LOCK" in caps, f"{name}: IPC_LOCK capability missing")

profile = json.load(open(profile_path))
check(profile["defaultAction"] in ("SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO"), "seccomp: defaultAction")
denied = {n for rule in profile["syscalls"] if rule["action"] != "SCMP_ACT_ALLOW" for n in rule["names"]}
allowed = {n for rule in profile["syscalls"] if rule["action"] == "SCMP_ACT_ALLOW" for n in rule["names"]}
for call in ("io_uring_setup", "io_uring_enter", "io_uring_register"):
    ok = call not in denied if profile["defaultAction"] == "SCMP_ACT_ALLOW" else call in allowed
    check(ok, f"seccomp: {call} must be allowed")

for e in errors:
    print("ERROR", e)
if errors:
    sys.exit(1)
print("INFO semantic checks passed (Indexed, Guaranteed QoS, IPC_LOCK, seccomp, shared PVC)")
PY

scripts=("$here/run.sh" "$here/validate.sh" "$root/scripts/slurm/servebench.sbatch")
for s in "${scripts[@]}"; do bash -n "$s"; done
if command -v shellcheck >/dev/null; then
  shellcheck "${scripts[@]}"
  echo "INFO bash -n and shellcheck $(shellcheck --version | sed -n 's/^version: //p') passed"
else
  echo "INFO bash -n passed (shellcheck not installed: skipped)"
fi

//! Multi-host runs end to end (issue 7): three real processes as hosts 0, 1, 2 of one plan,
//! started together with --start-at against one real mock, merged with `servebench merge`,
//! against the same plan run by one process.

use std::process::{Child, Command, Output, Stdio};

mod common;

use common::{temp_dir, Mock, BIN};
use serde_json::Value;

const ENV_VARS: [&str; 9] = [
    "JOB_COMPLETION_INDEX",
    "SLURM_PROCID",
    "OMPI_COMM_WORLD_RANK",
    "PMI_RANK",
    "PMIX_RANK",
    "SERVEBENCH_NUM_HOSTS",
    "SLURM_NTASKS",
    "OMPI_COMM_WORLD_SIZE",
    "PMI_SIZE",
];

fn bench(mock: &Mock, dir: &std::path::Path, name: &str, extra: &[&str]) -> Command {
    let mut c = Command::new(BIN);
    for v in ENV_VARS {
        c.env_remove(v);
    }
    c.args([
        "--base-url",
        &mock.url,
        "--disable-tqdm",
        "--num-shards",
        "1",
    ])
    .args(["--random-input-len", "16", "--random-output-len", "6"])
    .args(["--num-prompts", "30", "--request-rate", "150"])
    .args(["--save-result", "--save-detailed", "--result-dir"])
    .arg(dir)
    .args(["--result-filename", name])
    .args(extra)
    .args(if extra.contains(&"--seed") {
        &[][..]
    } else {
        &["--seed", "7"][..]
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    c
}

fn finish(child: Child) -> Output {
    let out = child.wait_with_output().expect("wait for servebench");
    assert!(
        out.status.success(),
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn read(path: &std::path::Path) -> serde_json::Map<String, Value> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

fn merge(inputs: &[&std::path::Path], out: &std::path::Path) -> Output {
    Command::new(BIN)
        .arg("merge")
        .args(inputs)
        .arg("-o")
        .arg(out)
        .output()
        .expect("run servebench merge")
}

fn num(m: &serde_json::Map<String, Value>, k: &str) -> f64 {
    m.get(k)
        .and_then(Value::as_f64)
        .unwrap_or_else(|| panic!("no number {k}"))
}

#[test]
fn three_hosts_merge_to_the_single_host_run() {
    let mock = Mock::start(20.0, 2.0);
    let hosts_dir = temp_dir("multihost-hosts");
    let single_dir = temp_dir("multihost-single");
    let other_dir = temp_dir("multihost-other");

    // One absolute instant for all three, a few seconds ahead (plan and warmup come first).
    let start = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
        + 3.0)
        .to_string();
    let hosts: Vec<Child> = (0..3)
        .map(|i| {
            let name = format!("host{i}.json");
            let mut c = if i == 1 {
                // Host 1 learns its place from Slurm's variables, not from flags.
                let mut c = bench(&mock, &hosts_dir, &name, &["--start-at", &start]);
                c.env("SLURM_PROCID", "1").env("SLURM_NTASKS", "3");
                c
            } else {
                let idx = i.to_string();
                bench(
                    &mock,
                    &hosts_dir,
                    &name,
                    &[
                        "--num-hosts",
                        "3",
                        "--host-index",
                        &idx,
                        "--start-at",
                        &start,
                    ],
                )
            };
            c.spawn().expect("start a host")
        })
        .collect();
    let outs: Vec<Output> = hosts.into_iter().map(finish).collect();
    let stderr1 = String::from_utf8_lossy(&outs[1].stderr);
    assert!(
        stderr1.contains("host 1 of 3") && stderr1.contains("SLURM_PROCID"),
        "{stderr1}"
    );

    let single = finish(
        bench(&mock, &single_dir, "single.json", &["--num-hosts", "1"])
            .spawn()
            .unwrap(),
    );
    assert!(single.status.success());
    let single_file = single_dir.join("single.json");
    let single_res = read(&single_file);

    // Every host kept its share, the same plan, and t0s within a fraction of a second.
    let mut t0s = Vec::new();
    let mut indices = Vec::new();
    for i in 0..3 {
        let r = read(&hosts_dir.join(format!("host{i}.json")));
        let h = r["servebench_host"].as_object().unwrap();
        assert_eq!(h["host_index"], i);
        assert_eq!(h["num_hosts"], 3);
        assert_eq!(
            h["plan_fingerprint"],
            single_res["servebench_host"]["plan_fingerprint"]
        );
        assert_eq!(num(&r, "num_prompts"), 10.0);
        t0s.push(h["t0_unix_ns"].as_u64().unwrap());
        let idx: Vec<u64> = r["servebench_plan_index"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap())
            .collect();
        assert!(idx.iter().all(|g| g % 3 == i as u64), "{idx:?}");
        indices.extend(idx);
    }
    indices.sort();
    assert_eq!(indices, (0..30).collect::<Vec<u64>>());
    let spread = t0s.iter().max().unwrap() - t0s.iter().min().unwrap();
    assert!(spread < 200_000_000, "host t0s {spread} ns apart");

    let merged_file = hosts_dir.join("merged.json.out");
    let m = merge(&[&hosts_dir], &merged_file);
    let m_stdout = String::from_utf8_lossy(&m.stdout);
    assert!(m.status.success(), "{}", String::from_utf8_lossy(&m.stderr));
    assert!(m_stdout.contains("Serving Benchmark Result"), "{m_stdout}");
    let merged = read(&merged_file);
    for k in [
        "completed",
        "failed",
        "total_input_tokens",
        "total_output_tokens",
        "num_prompts",
    ] {
        assert_eq!(merged[k], single_res[k], "{k}");
    }
    assert_eq!(merged["completed"], 30);
    assert_eq!(merged["hosts"].as_array().unwrap().len(), 3);
    assert_eq!(merged["merged"]["percentiles_from"], "records");
    // The mock's latency model fixes TTFT to within a few ms of 20 ms on every path.
    for k in [
        "median_ttft_ms",
        "mean_ttft_ms",
        "p99_ttft_ms",
        "median_itl_ms",
    ] {
        let (a, b) = (num(&merged, k), num(&single_res, k));
        assert!((a - b).abs() < 8.0, "{k}: merged {a} vs single {b}");
    }
    // The aggregate ran at the planned rate: 30 requests at 150/s take about 0.2 s plus
    // the last one's latency, on the common window.
    let (dm, ds) = (num(&merged, "duration"), num(&single_res, "duration"));
    assert!(
        (dm - ds).abs() < 0.15,
        "merged duration {dm} vs single {ds}"
    );

    // Merging a single host's file gives that host's own figures.
    let one_file = single_dir.join("merged-one.json.out");
    let one = merge(&[&single_file], &one_file);
    assert!(
        one.status.success(),
        "{}",
        String::from_utf8_lossy(&one.stderr)
    );
    let one = read(&one_file);
    for k in [
        "completed",
        "total_input_tokens",
        "total_output_tokens",
        "max_concurrent_requests",
    ] {
        assert_eq!(one[k], single_res[k], "{k}");
    }
    for k in [
        "duration",
        "request_throughput",
        "mean_ttft_ms",
        "median_ttft_ms",
        "p99_ttft_ms",
        "mean_tpot_ms",
        "mean_itl_ms",
        "p99_itl_ms",
    ] {
        let (a, b) = (num(&one, k), num(&single_res, k));
        assert!(
            (a - b).abs() <= 1e-3 * b.abs().max(1.0),
            "{k}: merged {a} vs own {b}"
        );
    }

    // A host of another plan (another seed) is refused, naming the files.
    finish(
        bench(
            &mock,
            &other_dir,
            "seed8.json",
            &["--num-hosts", "3", "--host-index", "0", "--seed", "8"],
        )
        .spawn()
        .unwrap(),
    );
    let bad = merge(
        &[
            &other_dir.join("seed8.json"),
            &hosts_dir.join("host1.json"),
            &hosts_dir.join("host2.json"),
        ],
        &other_dir.join("bad.json.out"),
    );
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(!bad.status.success());
    assert!(
        err.contains("not from the same plan") && err.contains("seed8.json"),
        "{err}"
    );
    // A start that passed long before the host was ready is an error, not a silent run.
    let late = bench(
        &mock,
        &other_dir,
        "late.json",
        &[
            "--num-hosts",
            "3",
            "--host-index",
            "0",
            "--start-at",
            "1000",
        ],
    )
    .output()
    .unwrap();
    let err = String::from_utf8_lossy(&late.stderr);
    assert!(
        !late.status.success() && err.contains("--start-at passed"),
        "{err}"
    );
    assert!(!other_dir.join("late.json").exists());
    // A missing host is refused too.
    let gap = merge(
        &[&hosts_dir.join("host0.json"), &hosts_dir.join("host2.json")],
        &other_dir.join("gap.json.out"),
    );
    let err = String::from_utf8_lossy(&gap.stderr);
    assert!(!gap.status.success() && err.contains("missing"), "{err}");
}

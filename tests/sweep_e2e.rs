//! `servebench sweep` end to end against the real mock with its capacity model (`--max-batch`,
//! `--batch-itl-ms`): the SLO search finds the mock's knee within the search's precision, a
//! list sweep multiplies its values out and skips past saturation, a plain run stops early on
//! saturation, two processes sweep as two hosts, and bad sweeps are refused before any run.

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::Value;
use servebench::mock::capacity::Capacity;

mod common;

use common::{temp_dir, Mock, BIN};

// The mock's capacity model: 8 slots, 20 ms to the first token, then 2 ms + 0.5 ms per running
// sequence per token; 16-token replies.
const TTFT_MS: f64 = 20.0;
const ITL_MS: f64 = 2.0;
const BATCH: usize = 8;
const BATCH_ITL_MS: f64 = 0.5;
const OUTPUT_LEN: u32 = 16;

/// The tests that judge latency against the capacity model run one at a time: on a 2-core
/// machine, four sweeps and their mocks at once would measure each other.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

fn ms(v: f64) -> Duration {
    Duration::from_secs_f64(v / 1e3)
}

/// The most requests per second the mock serves: where the SLO search must land.
fn knee() -> f64 {
    Capacity::throughput(BATCH, ms(TTFT_MS), ms(ITL_MS), ms(BATCH_ITL_MS), OUTPUT_LEN)
}

fn capacity_mock() -> Mock {
    Mock::start_with(
        TTFT_MS,
        ITL_MS,
        &[
            "--max-batch",
            &BATCH.to_string(),
            "--batch-itl-ms",
            &BATCH_ITL_MS.to_string(),
        ],
    )
}

/// `servebench [SUBCOMMAND]` against `mock` with short random prompts of `output_len` tokens.
fn servebench(sub: Option<&str>, mock: &Mock, output_len: u32) -> Command {
    let mut c = Command::new(BIN);
    c.args(sub)
        .args(["--base-url", &mock.url, "--disable-tqdm"])
        .args(["--dataset-name", "random", "--random-input-len", "16"])
        .args(["--random-output-len", &output_len.to_string()])
        .arg("--skip-server-alignment");
    c
}

/// A sweep against `mock` writing into `dir`, with a short workload.
fn sweep(mock: &Mock, dir: &Path, extra: &[&str]) -> Output {
    servebench(Some("sweep"), mock, OUTPUT_LEN)
        .args(["--saturation-min-seconds", "1"])
        .args(["-o", dir.to_str().unwrap()])
        .args(extra)
        .output()
        .expect("run servebench sweep")
}

fn ok(out: &Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "exit {:?}\nstdout:\n{stdout}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

/// The search's answer, which must have been found: highest pass and lowest failure.
fn bracket(summary: &Value) -> (f64, f64) {
    let answer = &summary["slo"]["answer"];
    assert_eq!(answer["status"], "found", "{answer}");
    (f(&answer["max_passing"]), f(&answer["min_failing"]))
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

#[test]
fn the_slo_search_finds_the_knee_of_the_capacity_model() {
    let _serial = serial();
    let mock = capacity_mock();
    let dir = temp_dir("sweep-knee");
    let precision = 0.05;
    // Near-constant arrivals (burstiness 1000): below capacity nothing queues; above it the
    // queue, and TTFT with it, grows through the run. 3 s per point.
    let stdout = ok(&sweep(
        &mock,
        &dir,
        &[
            "--burstiness",
            "1000",
            "--slo-search",
            "request-rate",
            "--slo",
            "ttft:80",
            "--search-start",
            "16",
            "--search-precision",
            &precision.to_string(),
            "--sweep-num-prompts-factor",
            "3",
        ],
    ));
    let summary = read_json(&dir.join("summary.json"));
    let (pass, fail) = bracket(&summary);
    let k = knee();
    // The bracket is as narrow as asked, and the capacity lies in it, give or take what a
    // 3 s run can tell apart (1.04× capacity queues 3 s × 4 % × k requests: ~120 ms of wait).
    assert!(fail <= pass * (1.0 + precision) + 1e-9, "{pass}..{fail}");
    assert!(
        pass <= k * 1.04 && fail >= k * 0.96,
        "knee {k:.2} vs bracket {pass}..{fail}"
    );
    assert!(
        stdout.contains("highest request rate meeting the SLO"),
        "{stdout}"
    );
    // The page of this very sweep, rendered in headless Chromium.
    let html = std::fs::read_to_string(dir.join("summary.html")).unwrap();
    common::browser::check_sweep_page(&dir, &html, summary.as_object().unwrap());
    if let Ok(png) = std::env::var("SERVEBENCH_SWEEP_E2E_SCREENSHOT") {
        common::browser::full_page_screenshot(&dir, &html, Path::new(&png));
    }

    // Every point: a result file as `serve` writes it, at the rate the summary says.
    let points = summary["points"].as_array().unwrap();
    assert!(
        points.len() >= 4 && points.len() <= 16,
        "{} points",
        points.len()
    );
    for p in points {
        let file = dir.join(p["result_file"].as_str().unwrap());
        let result = read_json(&file);
        assert_eq!(f(&result["request_rate"]), f(&p["x"]), "{}", file.display());
        assert_eq!(result["completed"], p["completed"]);
        let meets = p["meets_slo"].as_bool().unwrap();
        assert_eq!(
            meets,
            f(&p["slo_values"]["p99_ttft_ms"]) <= 80.0 && p["saturated"] == false
        );
        // Well past the knee the run was stopped early as saturated.
        if f(&p["x"]) > 1.5 * k {
            assert_eq!(p["saturated"], true, "{p}");
            assert_eq!(result["stopped_by"], "saturation");
        }
        // Below it, achieved throughput follows the offered rate.
        if meets {
            assert!(f(&p["request_throughput"]) > 0.85 * f(&p["x"]), "{p}");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_concurrency_search_lands_between_the_batch_size_and_twice_it() {
    let _serial = serial();
    // All requests at once, C in flight. Up to the mock's 8 slots nothing queues and TTFT is
    // 20 ms. From 9 on requests wait for a slot: how long depends on how the slots' ends are
    // spread (one request per wave waits a whole ~110 ms reply while the slots stay in step;
    // a few ms once they drift apart), but at 16 every request waits about a reply. So the
    // answer is 8 to 15, with the next value failing.
    let mock = capacity_mock();
    let dir = temp_dir("sweep-concurrency");
    let stdout = ok(&sweep(
        &mock,
        &dir,
        &[
            "--slo-search",
            "max-concurrency",
            "--slo",
            "p99_ttft:60",
            "--sweep-num-prompts-factor",
            "12",
        ],
    ));
    let summary = read_json(&dir.join("summary.json"));
    let (pass, fail) = bracket(&summary);
    let batch = BATCH as f64;
    assert!(
        (batch..2.0 * batch).contains(&pass) && fail == pass + 1.0,
        "{pass}..{fail}: {stdout}"
    );
    assert_eq!(summary["variable"], "max_concurrency");
    for p in summary["points"].as_array().unwrap() {
        let result = read_json(&dir.join(p["result_file"].as_str().unwrap()));
        assert_eq!(f(&result["max_concurrency"]), f(&p["x"]));
        assert_eq!(f(&result["completed"]), 12.0 * f(&p["x"]));
        if f(&p["x"]) <= batch {
            assert_eq!(p["meets_slo"], true, "{p}");
        }
        if f(&p["x"]) >= 2.0 * batch {
            assert_eq!(p["meets_slo"], false, "{p}");
        }
    }
    assert!(
        stdout.contains("highest max concurrency meeting the SLO"),
        "{stdout}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_list_sweep_runs_every_combination_and_skips_past_saturation() {
    let _serial = serial();
    let mock = capacity_mock();
    let dir = temp_dir("sweep-list");
    let params = dir.join("params.json");
    std::fs::write(
        &params,
        r#"{"short": {"random_output_len": 8}, "long": {"random-output-len": 16}}"#,
    )
    .unwrap();
    let stdout = ok(&sweep(
        &mock,
        &dir,
        &[
            "--sweep-request-rate",
            "20,400,800",
            "--sweep-params",
            params.to_str().unwrap(),
            "--sweep-num-prompts-factor",
            "2",
            "--slo",
            "p90_ttft:100",
            "mean_tpot:50",
        ],
    ));
    let summary = read_json(&dir.join("summary.json"));
    let points = summary["points"].as_array().unwrap();
    // Two sets × three rates, less 800 in each set: 400 saturates the mock (≈ 73 req/s).
    let labels: Vec<&str> = points
        .iter()
        .map(|p| p["label"].as_str().unwrap())
        .collect();
    assert_eq!(
        labels,
        [
            "short, random_output_len=8, request_rate=20",
            "short, random_output_len=8, request_rate=400",
            "long, random_output_len=16, request_rate=20",
            "long, random_output_len=16, request_rate=400"
        ]
    );
    assert!(
        stdout.contains("Skipping short, random_output_len=8, request_rate=800"),
        "{stdout}"
    );
    for p in points {
        let result = read_json(&dir.join(p["result_file"].as_str().unwrap()));
        let short = p["label"].as_str().unwrap().starts_with("short");
        let out_len = if short { 8.0 } else { 16.0 };
        // A named set is its curve's name.
        assert_eq!(p["group"], if short { "short" } else { "long" });
        assert_eq!(
            f(&result["total_output_tokens"]) / f(&result["completed"]),
            out_len
        );
        let saturated = f(&p["x"]) == 400.0;
        assert_eq!(p["saturated"], saturated, "{p}");
        assert_eq!(p["meets_slo"], !saturated, "{p}");
        // The goodput the SLO implies is in every point, as --goodput would give it.
        assert!(!result["request_goodput"].is_null());
        assert!(p["latency_ms"]["ttft"]["p90"].is_number());
    }
    assert_eq!(summary["mode"], "list");
    assert!(
        summary["slo"]["answer"].is_null(),
        "a list sweep searches nothing"
    );
    // The console table: a header and one line per point, each with its verdict.
    let table: Vec<&str> = stdout
        .lines()
        .skip_while(|l| !l.starts_with("Sweep: 4 point(s)"))
        .skip(2)
        .take(4)
        .collect();
    assert_eq!(
        table.iter().filter(|l| l.contains("pass")).count(),
        2,
        "{stdout}"
    );
    assert_eq!(
        table
            .iter()
            .filter(|l| l.contains("FAIL  saturated"))
            .count(),
        2,
        "{stdout}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_plain_run_stops_early_when_the_server_cannot_keep_up() {
    let _serial = serial();
    let mock = capacity_mock();
    let dir = temp_dir("sweep-saturation");
    // 15 s planned at 3× capacity.
    let started = Instant::now();
    let out = servebench(None, &mock, OUTPUT_LEN)
        .args(["--request-rate", "220", "--num-prompts", "3300"])
        .args(["--stop-on-saturation", "--saturation-min-seconds", "1"])
        .args([
            "--save-result",
            "--result-dir",
            dir.to_str().unwrap(),
            "--result-filename",
            "r.json",
        ])
        .output()
        .unwrap();
    let stdout = ok(&out);
    assert!(
        started.elapsed() < Duration::from_secs(12),
        "it ran {:?}",
        started.elapsed()
    );
    assert!(
        stdout.contains("PARTIAL RESULTS: the saturation check"),
        "{stdout}"
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Stopping early: the server cannot keep up")
    );
    let r = read_json(&dir.join("r.json"));
    assert_eq!(
        (&r["partial"], &r["stopped_by"]),
        (&Value::Bool(true), &Value::from("saturation"))
    );
    assert!(
        f(&r["saturation"]["backlog_growth_per_s"]) > 0.1 * 220.0,
        "{}",
        r["saturation"]
    );
    assert!(f(&r["completed"]) < 3300.0);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn two_hosts_sweep_together_through_a_shared_directory() {
    let mock = Mock::start(5.0, 1.0);
    let dir = temp_dir("sweep-hosts");
    let host = |i: usize| {
        servebench(Some("sweep"), &mock, 8)
            .args([
                "--sweep-request-rate",
                "40,80",
                "--sweep-num-prompts-factor",
                "1.5",
            ])
            .args(["--num-hosts", "2", "--host-index", &i.to_string()])
            .args(["--host-gap", "1"])
            .args(["--slo", "ttft:500"])
            .args(["-o", dir.to_str().unwrap()])
            .spawn()
            .unwrap()
    };
    // Host 1 comes 1.5 s late: the barrier holds host 0 until it is ready.
    let mut a = host(0);
    std::thread::sleep(Duration::from_millis(1500));
    let mut b = host(1);
    assert!(a.wait().unwrap().success() && b.wait().unwrap().success());
    let summary = read_json(&dir.join("summary.json"));
    assert_eq!(summary["hosts"], 2);
    let points = summary["points"].as_array().unwrap();
    assert_eq!(points.len(), 2);
    for (p, rate) in points.iter().zip([40.0, 80.0]) {
        // The merged point holds both hosts' requests: the whole plan.
        let merged = read_json(&dir.join(p["result_file"].as_str().unwrap()));
        assert_eq!(f(&merged["completed"]), (rate * 1.5f64).ceil(), "{p}");
        assert_eq!(merged["hosts"].as_array().unwrap().len(), 2);
        assert_eq!(p["meets_slo"], true);
        for i in 0..2 {
            let index = p["index"].as_u64().unwrap();
            let host_file = dir.join(format!("point-{index:03}/host-{i}.json"));
            assert!(host_file.is_file(), "{}", host_file.display());
        }
    }
    // Each point started at one instant on both hosts, the second after the first ended.
    let t0 = |point: usize, host: usize| {
        f(
            &read_json(&dir.join(format!("point-{point:03}/host-{host}.json")))["servebench_host"]
                ["t0_unix_ns"],
        )
    };
    for point in 0..2 {
        let (a, b) = (t0(point, 0), t0(point, 1));
        assert!((a - b).abs() < 50e6, "point {point}: host t0s {a} and {b}");
    }
    assert!(t0(1, 0) > t0(0, 0) + 1.5e9);

    // The same directory again: the other host's files are an earlier sweep's.
    let out = servebench(Some("sweep"), &mock, 8)
        .args([
            "--sweep-request-rate",
            "40",
            "--sweep-num-prompts-factor",
            "1",
        ])
        .args([
            "--num-hosts",
            "2",
            "--host-index",
            "0",
            "--host-wait-timeout",
            "1",
        ])
        .args(["-o", dir.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("an earlier sweep's files; give every host a new -o"),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn resume_keeps_the_points_and_goes_on() {
    let _serial = serial();
    let mock = capacity_mock();
    let dir = temp_dir("sweep-resume");
    let search = |budget: &str, extra: &[&str]| {
        let mut args = vec![
            "--burstiness",
            "1000",
            "--slo-search",
            "request-rate",
            "--slo",
            "ttft:80",
            "--search-start",
            "16",
            "--search-precision",
            "0.2",
            "--sweep-num-prompts-factor",
            "2",
            "--search-max-points",
            budget,
        ];
        args.extend_from_slice(extra);
        sweep(&mock, &dir, &args)
    };
    // Three points, then the budget stops it.
    ok(&search("3", &[]));
    let first = read_json(&dir.join("summary.json"));
    assert_eq!(first["slo"]["answer"]["status"], "budget");
    assert_eq!(first["points"].as_array().unwrap().len(), 3);
    let kept = std::fs::read(dir.join("point-002.json")).unwrap();

    // Another seed is another sweep.
    let out = search("16", &["--resume", "--seed", "7"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("was made by a different sweep"));

    let stdout = ok(&search("16", &["--resume"]));
    assert!(
        stdout.contains("Resuming: 3 point(s) measured already"),
        "{stdout}"
    );
    assert!(
        !stdout.contains("Sweep point 0:"),
        "point 0 ran again: {stdout}"
    );
    let summary = read_json(&dir.join("summary.json"));
    let points = summary["points"].as_array().unwrap();
    assert!(points.len() > 3);
    assert_eq!(&points[..3], &first["points"].as_array().unwrap()[..]);
    assert_eq!(std::fs::read(dir.join("point-002.json")).unwrap(), kept);
    let (pass, fail) = bracket(&summary);
    assert!(
        pass <= knee() * 1.04 && fail >= knee() * 0.96,
        "{pass}..{fail}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn ctrl_c_ends_the_sweep_and_keeps_what_it_measured() {
    use std::io::{BufRead, BufReader};
    let mock = Mock::start(5.0, 1.0);
    let dir = temp_dir("sweep-sigint");
    // Three points of 10 s each; SIGINT 1.5 s into the first.
    let mut child = servebench(Some("sweep"), &mock, 8)
        .args([
            "--sweep-request-rate",
            "20,40,80",
            "--sweep-num-prompts-factor",
            "10",
        ])
        .args(["-o", dir.to_str().unwrap()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut stdout = String::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        stdout.push_str(&line);
        stdout.push('\n');
        if line.starts_with("Maximum request concurrency") {
            break;
        }
    }
    std::thread::sleep(Duration::from_millis(1500));
    // SAFETY: kill only signals our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    for line in lines {
        stdout.push_str(&line.unwrap());
        stdout.push('\n');
    }
    assert_eq!(child.wait().unwrap().code(), Some(130), "{stdout}");
    let summary = read_json(&dir.join("summary.json"));
    let points = summary["points"].as_array().unwrap();
    assert_eq!(points.len(), 1, "{stdout}");
    assert_eq!(points[0]["partial"], true);
    let result = read_json(&dir.join(points[0]["result_file"].as_str().unwrap()));
    assert_eq!(result["stopped_by"], "SIGINT");
    assert!(f(&result["completed"]) > 0.0 && f(&result["completed"]) < 200.0);
    assert!(stdout.contains("Sweep: 1 point(s)"), "{stdout}");
    assert!(!stdout.contains("Sweep point 1:"), "{stdout}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn hosts_stop_together_when_the_server_is_saturated() {
    let _serial = serial();
    let mock = capacity_mock();
    let dir = temp_dir("sweep-hosts-saturated");
    // 4× the mock's capacity for a planned 6 s.
    let host = |i: usize| {
        servebench(Some("sweep"), &mock, OUTPUT_LEN)
            .args([
                "--sweep-request-rate",
                "300",
                "--sweep-num-prompts-factor",
                "6",
            ])
            .args(["--saturation-min-seconds", "1", "--host-gap", "1"])
            .args(["--num-hosts", "2", "--host-index", &i.to_string()])
            .args(["-o", dir.to_str().unwrap()])
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };
    let (mut a, mut b) = (host(0), host(1));
    assert!(a.wait().unwrap().success() && b.wait().unwrap().success());
    let summary = read_json(&dir.join("summary.json"));
    assert_eq!(summary["points"][0]["saturated"], true);
    let mut reasons = Vec::new();
    for i in 0..2 {
        let r = read_json(&dir.join(format!("point-000/host-{i}.json")));
        assert_eq!(r["stopped_by"], "saturation", "host {i}");
        // Stopped well before its planned 6 s.
        let at = f(&r["saturation"]["stopped_at_s"]);
        assert!(at < 4.0, "host {i} stopped only at {at} s");
        reasons.push(r["saturation"]["reason"].as_str().unwrap().to_string());
    }
    assert!(dir.join("point-000/saturated").is_file());
    // Each stopped on its own check or on the other's marker.
    assert!(
        reasons
            .iter()
            .all(|r| r.contains("queue") || r.contains("another host")),
        "{reasons:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_sweeps_are_refused_before_any_run() {
    let cases: [(&[&str], &str); 7] = [
        (&[], "nothing to sweep"),
        (
            &["--slo-search", "request-rate"],
            "--slo-search needs constraints",
        ),
        (&["--sweep-request-rate", "1,,2"], "empty item"),
        (
            &["--sweep-request-rate", "5", "--slo", "latency:5"],
            "'latency' is not a metric",
        ),
        (
            &[
                "--slo-search",
                "request-rate",
                "--slo",
                "ttft:5",
                "--sweep-request-rate",
                "1",
            ],
            "drop --sweep-request-rate",
        ),
        (
            &[
                "--sweep-max-concurrency",
                "4",
                "--num-hosts",
                "2",
                "--host-index",
                "0",
            ],
            "needs -o/--output-dir",
        ),
        (
            &["--sweep-request-rate", "5", "--num-runs", "0"],
            "--num-runs",
        ),
    ];
    for (args, message) in cases {
        let out = Command::new(BIN)
            .arg("sweep")
            .args(["--base-url", "http://127.0.0.1:9"])
            .args(args)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} ran");
        assert!(stderr.contains(message), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    // vLLM's spellings: --bench-params, --sla-variable max_concurrency.
    let dir = temp_dir("sweep-dry");
    let params = dir.join("p.json");
    std::fs::write(&params, r#"[{"random_input_len": 64}]"#).unwrap();
    let out = Command::new(BIN)
        .args([
            "sweep",
            "--dry-run",
            "--sla-variable",
            "max_concurrency",
            "--slo",
            "ttft:9",
        ])
        .args(["--bench-params", params.to_str().unwrap()])
        .output()
        .unwrap();
    let stdout = ok(&out);
    assert!(
        stdout.contains("an SLO search over each combination"),
        "{stdout}"
    );
    assert!(stdout.contains("--random-input-len 64"), "{stdout}");
    let _ = std::fs::remove_dir_all(&dir);
    // A dry run prints the points and their command lines.
    let out = Command::new(BIN)
        .args([
            "sweep",
            "--dry-run",
            "--sweep-max-concurrency",
            "1:4*2",
            "--request-rate",
            "9",
            "--seed",
            "3",
            "--header",
            "Authorization=Bearer sekrit123",
        ])
        .output()
        .unwrap();
    let stdout = ok(&out);
    assert!(stdout.contains("point 2: max_concurrency=4"), "{stdout}");
    assert!(stdout.contains("--request-rate 9 --seed 3"), "{stdout}");
    assert!(
        !stdout.contains("sekrit123"),
        "a credential printed: {stdout}"
    );
    // --seed-per-point: other prompts at every point.
    let out = Command::new(BIN)
        .args([
            "sweep",
            "--dry-run",
            "--sweep-request-rate",
            "1,2",
            "--seed",
            "40",
        ])
        .arg("--seed-per-point")
        .output()
        .unwrap();
    let stdout = ok(&out);
    let seeds: Vec<&str> = stdout
        .lines()
        .filter(|l| l.contains("servebench serve"))
        .map(|l| {
            l.rsplit("--seed ")
                .next()
                .unwrap()
                .split(' ')
                .next()
                .unwrap()
        })
        .collect();
    assert_eq!(seeds, ["40", "41"], "{stdout}");
}

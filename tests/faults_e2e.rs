//! Fault injection end to end (issue 6): the real binary against the real mock with one fault
//! kind on, in both engines. Every request ends completed or failed, each failure is counted
//! once under its cause, and the run's report is complete.

use std::net::TcpListener;
use std::process::Command;
use std::time::{Duration, Instant};

mod common;

use common::{temp_dir, Mock, BIN};

/// Requests per run: rates below are chosen so that N * rate is whole (exact counts).
const N: u64 = 10;

struct Outcome {
    completed: u64,
    failed: u64,
    result: serde_json::Value,
    stdout: String,
}

impl Outcome {
    fn category(&self, kind: &str) -> u64 {
        self.result["failures_by_category"][kind]
            .as_u64()
            .unwrap_or_else(|| panic!("no failures_by_category.{kind}: {}", self.result))
    }

    /// The distinct error messages saved, with their counts.
    fn first_errors(&self) -> Vec<(String, u64)> {
        self.result["first_errors"]
            .as_array()
            .expect("first_errors")
            .iter()
            .map(|e| {
                (
                    e["error"].as_str().unwrap().to_string(),
                    e["count"].as_u64().unwrap(),
                )
            })
            .collect()
    }

    /// Exactly `failed` failures, all under `kind`, each once, with `message` in their text.
    fn assert_failed(&self, failed: u64, kind: &str, message: &str) {
        assert_eq!(self.completed + self.failed, N, "{}", self.stdout);
        assert_eq!(self.failed, failed, "{}", self.stdout);
        assert_eq!(
            self.category(kind),
            failed,
            "{}",
            self.result["first_errors"]
        );
        let total: u64 = self.result["failures_by_category"]
            .as_object()
            .unwrap()
            .values()
            .map(|v| v.as_u64().unwrap())
            .sum();
        assert_eq!(total, failed, "{}", self.result["failures_by_category"]);
        let errors = self.result["errors"].as_array().expect("detailed errors");
        assert_eq!(errors.len() as u64, N);
        let nonempty = errors.iter().filter(|e| e.as_str() != Some("")).count();
        assert_eq!(nonempty as u64, failed);
        if failed > 0 {
            let listed: u64 = self.first_errors().iter().map(|(_, n)| n).sum();
            assert_eq!(listed, failed);
            assert!(
                self.first_errors().iter().all(|(m, _)| m.contains(message)),
                "expected {message:?} in {:?}",
                self.first_errors()
            );
            assert!(self.stdout.contains(" Failures "), "{}", self.stdout);
            assert!(
                self.stdout.contains(&format!("  {kind}:")),
                "{}",
                self.stdout
            );
        }
    }
}

fn bench(url: &str, engine: &str, extra: &[&str]) -> Outcome {
    bench_n(url, engine, N, extra)
}

fn bench_n(url: &str, engine: &str, n: u64, extra: &[&str]) -> Outcome {
    let dir = temp_dir(&format!(
        "faults-{engine}-{}",
        url.replace([':', '/', '.'], "")
    ));
    let out = Command::new(BIN)
        .args(["--base-url", url, "--disable-tqdm", "--num-shards", "1"])
        .args(["--io-engine", engine])
        .args(["--random-input-len", "16", "--random-output-len", "8"])
        .args(["--num-prompts", &n.to_string(), "--max-concurrency", "2"])
        .args([
            "--save-result",
            "--save-detailed",
            "--result-filename",
            "r.json",
        ])
        .arg("--result-dir")
        .arg(&dir)
        .args(extra)
        .output()
        .expect("run servebench");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "stdout:\n{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(dir.join("r.json")).expect("result file");
    let result: serde_json::Value = serde_json::from_str(&text).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    Outcome {
        completed: result["completed"].as_u64().unwrap(),
        failed: result["failed"].as_u64().unwrap(),
        result,
        stdout,
    }
}

const ENGINES: [&str; 2] = ["uring", "glommio"];

/// One mock with `flags`, each engine run against it, `check` on each outcome.
fn each_engine(flags: &[&str], bench_args: &[&str], check: impl Fn(&Outcome)) {
    let mock = Mock::start_with(0.0, 0.0, flags);
    for engine in ENGINES {
        let out = bench(&mock.url, engine, bench_args);
        check(&out);
    }
}

#[test]
fn http_errors_carry_the_servers_message() {
    each_engine(
        &["--fault-http-error", "0.5", "--fault-http-status", "503"],
        &[],
        |o| {
            o.assert_failed(
                5,
                "http_status",
                "HTTP 503 Service Unavailable: mock fault: injected HTTP 503",
            )
        },
    );
    each_engine(&["--fault-429", "0.5"], &[], |o| {
        o.assert_failed(5, "http_status", "HTTP 429 Too Many Requests: mock fault")
    });
}

#[test]
fn resets_before_during_and_after_the_stream() {
    // Before any byte: a reused connection is retried once (the keep-alive race), then the
    // request fails on its fresh connection too.
    each_engine(&["--fault-reset-before-head", "1"], &[], |o| {
        o.assert_failed(N, "reset", "");
        let retries = o.result["keepalive_retries"].as_u64().unwrap();
        assert!((1..=N).contains(&retries), "{retries}");
        assert!(o.stdout.contains("Keep-alive retries (not failures):"));
    });
    each_engine(&["--fault-reset-mid-stream", "0.5"], &[], |o| {
        o.assert_failed(5, "reset", "")
    });
    each_engine(&["--fault-reset-after-last", "0.5"], &[], |o| {
        o.assert_failed(5, "reset", "")
    });
}

#[test]
fn broken_events_are_protocol_errors_and_error_events_server_errors() {
    each_engine(&["--fault-malformed-json", "0.5"], &[], |o| {
        o.assert_failed(5, "protocol", "bad stream event")
    });
    each_engine(&["--fault-invalid-utf8", "0.5"], &[], |o| {
        o.assert_failed(5, "protocol", "UTF-8")
    });
    each_engine(&["--fault-error-event", "0.5"], &[], |o| {
        o.assert_failed(5, "server_error", "mock fault: injected error event")
    });
    each_engine(
        &["--fault-error-event", "0.5"],
        &["--disable-stream"],
        |o| o.assert_failed(5, "server_error", "mock fault: injected error event"),
    );
}

#[test]
fn broken_framing_is_a_protocol_error() {
    each_engine(&["--fault-bad-chunk", "0.5"], &[], |o| {
        o.assert_failed(5, "protocol", "chunk")
    });
    each_engine(
        &["--fault-wrong-length", "0.5"],
        &["--disable-stream"],
        |o| o.assert_failed(5, "protocol", ""),
    );
    each_engine(&["--fault-wrong-length", "0.5"], &[], |o| {
        o.assert_failed(5, "protocol", "")
    });
    each_engine(&["--fault-huge-line", "0.2"], &[], |o| {
        o.assert_failed(2, "protocol", "exceeds")
    });
}

#[test]
fn keepalive_closes_are_retried_not_failed() {
    each_engine(&["--fault-keepalive-close", "0.5"], &[], |o| {
        o.assert_failed(0, "reset", "");
        assert!(o.result["keepalive_retries"].as_u64().unwrap() <= 5);
    });
}

#[test]
fn stalls_end_as_timeouts_in_bounded_time() {
    let began = Instant::now();
    each_engine(&["--fault-stall", "0.2"], &["--stall-timeout", "1"], |o| {
        o.assert_failed(2, "timeout", "--stall-timeout")
    });
    each_engine(
        &["--fault-stall", "0.2"],
        &["--stall-timeout", "0", "--request-timeout", "1"],
        |o| o.assert_failed(2, "timeout", "--request-timeout"),
    );
    // Four runs, each with two 1 s timeouts on two slots at once (plus start-up).
    assert!(
        began.elapsed() < Duration::from_secs(20),
        "{:?}",
        began.elapsed()
    );
}

#[test]
fn refused_connections_are_connect_failures() {
    // A port nobody listens on: bound, then let go.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    for engine in ENGINES {
        // With --model, nothing is asked of the server before the run.
        let o = bench(&url, engine, &["--model", "servebench-mock"]);
        o.assert_failed(N, "connect", "cannot connect to");
    }
}

#[test]
fn mixed_faults_never_stop_the_run() {
    let mock = Mock::start_with(0.0, 0.0, &["--fault-rate-all", "0.9", "--fault-seed", "7"]);
    for engine in ENGINES {
        let o = bench_n(&mock.url, engine, 26, &["--stall-timeout", "1"]);
        // Every request ends one way or the other, and each failure has a category.
        assert_eq!(o.completed + o.failed, 26, "{}", o.stdout);
        let total: u64 = o.result["failures_by_category"]
            .as_object()
            .unwrap()
            .values()
            .map(|v| v.as_u64().unwrap())
            .sum();
        assert_eq!(total, o.failed);
        assert!(o.failed > 0);
    }
}

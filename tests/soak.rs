//! Soak (issue 6): the client runs for a while against the mock with every fault kind on at
//! once, then the books must balance (completed + failed = sent, each failure once under a
//! cause), no descriptor may leak, and resident memory must stay flat while it runs.
//! `scripts/soak.sh` is the same run for minutes on a release build; its figures are in
//! docs/RELIABILITY.md.

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

mod common;

use common::{temp_dir, Mock, BIN};

const REQUESTS: u64 = 2400;

/// (RSS KiB, open descriptors) of a running process, from /proc.
fn sample(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let (rss, _) = servebench::procstat::parse_status(&status);
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count() as u64;
    Some((rss, fds))
}

#[test]
fn every_fault_at_once_for_thousands_of_requests_balances_and_leaks_nothing() {
    // 13 fault kinds at 2 % each: about a quarter of all requests fail, each kind ~48 times.
    let mock = Mock::start_with(2.0, 0.5, &["--fault-rate-all", "0.26"]);
    let dir = temp_dir("soak");
    let child = Command::new(BIN)
        .args(["--base-url", &mock.url, "--model", "m", "--num-shards", "1"])
        .args([
            "--num-prompts",
            &REQUESTS.to_string(),
            "--request-rate",
            "120",
        ])
        .args(["--max-concurrency", "32", "--random-input-len", "32"])
        .args([
            "--random-output-len",
            "16",
            "--ignore-eos",
            "--stall-timeout",
            "1",
        ])
        .args(["--disable-tqdm", "--save-result", "--save-detailed"])
        .args(["--result-filename", "soak.json", "--result-dir"])
        .arg(&dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the client");

    // Sample the client from outside while it runs.
    let samples: Arc<Mutex<Vec<(u64, u64)>>> = Arc::default();
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (samples, done, pid) = (samples.clone(), done.clone(), child.id());
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                if let Some(s) = sample(pid) {
                    samples.lock().unwrap().push(s);
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        })
    };
    let out = child.wait_with_output().expect("client ran");
    done.store(true, Ordering::Relaxed);
    sampler.join().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");

    let result: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("soak.json")).unwrap()).unwrap();
    let completed = result["completed"].as_u64().unwrap();
    let failed = result["failed"].as_u64().unwrap();
    assert_eq!(
        completed + failed,
        REQUESTS,
        "every planned request ended once"
    );
    let by_category = result["failures_by_category"].as_object().unwrap();
    let counted: u64 = by_category.values().map(|v| v.as_u64().unwrap()).sum();
    assert_eq!(
        counted, failed,
        "each failure under exactly one cause: {by_category:?}"
    );
    // A quarter of the requests were faulted; some faults (a keep-alive close after a full
    // reply) do not fail a request, so fewer fail, but every cause shows up.
    assert!(failed > REQUESTS / 8, "failed {failed}");
    for kind in [
        "timeout",
        "http_status",
        "reset",
        "protocol",
        "server_error",
    ] {
        assert!(
            by_category[kind].as_u64().unwrap() > 0,
            "no {kind} failure in {by_category:?}"
        );
    }
    assert_eq!(by_category["aborted"], 0);

    // No descriptor leaked: the shards' sockets and rings are all closed after the run.
    let res = &result["client_resources"];
    assert_eq!(res["fds_after"], res["fds_before"], "{res}");

    // Flat memory while running: the records are allocated before the clock starts, so the
    // last quarter of the run holds no more than the first quarter plus the replies' text
    // (16 tokens a request) and slack for allocator noise.
    let samples = samples.lock().unwrap();
    assert!(samples.len() >= 40, "too few samples: {}", samples.len());
    let quarter = samples.len() / 4;
    let early = samples[quarter..2 * quarter]
        .iter()
        .map(|s| s.0)
        .max()
        .unwrap();
    let late = samples[3 * quarter..].iter().map(|s| s.0).max().unwrap();
    let growth_kb = late.saturating_sub(early);
    assert!(
        growth_kb < 16 * 1024,
        "resident memory grew by {growth_kb} KiB during the run (early {early}, late {late})"
    );
    // While running, descriptors stay within the concurrency (plus the process's own).
    let max_fds = samples.iter().map(|s| s.1).max().unwrap();
    assert!(max_fds < 32 + 64, "{max_fds} descriptors open at once");
    eprintln!(
        "soak: {completed} completed, {failed} failed {by_category:?}; RSS {early} -> {late} KiB; \
         fds before/after {}/{}, max {max_fds}",
        res["fds_before"], res["fds_after"]
    );
}

//! Stopping a run with SIGINT / SIGTERM, end to end: the real binary against the real mock
//! (slow replies, a steady rate), signalled mid-run, on both engines. The report and the
//! result file must still come, marked partial, with nothing sent after the first signal.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

mod common;

use common::{temp_dir, Mock, BIN};

/// CLOCK_MONOTONIC in seconds: the clock of the result file's `start_times`.
fn mono_s() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime fills the timespec it is given.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 / 1e9
}

struct Stopped {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    result: Value,
    /// When the first signal was sent (CLOCK_MONOTONIC seconds).
    first_signal_s: f64,
}

/// Run 200 requests at 20/s against a mock answering in ~0.8 s each, send `signals` (each
/// after its delay from the one before; the first ~1 s into the run), and collect what the
/// run left behind.
fn run_and_signal(engine: &str, name: &str, extra: &[&str], signals: &[(i32, u64)]) -> Stopped {
    let load = [
        "--random-input-len",
        "16",
        "--random-output-len",
        "32",
        "--num-prompts",
        "200",
        "--request-rate",
        "20",
    ];
    run_with(engine, name, &load, extra, signals, 1200)
}

/// [`run_and_signal`] with its own load flags, signalling `after_ms` into the run.
fn run_with(
    engine: &str,
    name: &str,
    load: &[&str],
    extra: &[&str],
    signals: &[(i32, u64)],
    after_ms: u64,
) -> Stopped {
    let mock = Mock::start_with(200.0, 20.0, &["--count-prompt-tokens"]);
    let dir = temp_dir(name);
    let mut child: Child = Command::new(BIN)
        .args([
            "--base-url",
            &mock.url,
            "--disable-tqdm",
            "--num-shards",
            "2",
        ])
        .args(["--io-engine", engine])
        .args(load)
        .args([
            "--save-result",
            "--save-detailed",
            "--result-filename",
            "r.json",
        ])
        .arg("--result-dir")
        .arg(&dir)
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run servebench");
    let mut err = child.stderr.take().unwrap();
    let stderr = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut stdout = String::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    for line in lines.by_ref() {
        let line = line.unwrap();
        stdout.push_str(&line);
        stdout.push('\n');
        assert!(
            Instant::now() < deadline,
            "the run did not start:\n{stdout}"
        );
        if line.starts_with("Maximum request concurrency") {
            break;
        }
    }
    // The run is on (its arrivals span 10 s): let it send for a while, then signal.
    std::thread::sleep(Duration::from_millis(after_ms));
    let mut first_signal_s = 0.0;
    for (i, &(sig, delay_ms)) in signals.iter().enumerate() {
        std::thread::sleep(Duration::from_millis(delay_ms));
        if i == 0 {
            first_signal_s = mono_s();
        }
        // SAFETY: kill only signals our own child.
        unsafe { libc::kill(child.id() as i32, sig) };
    }
    for line in lines {
        stdout.push_str(&line.unwrap());
        stdout.push('\n');
    }
    let code = child.wait().unwrap().code();
    let stderr = stderr.join().unwrap();
    let path = dir.join("r.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "no result file {} ({e}); exit {code:?}\nstdout:\n{stdout}\nstderr:\n{stderr}",
            path.display()
        )
    });
    let _ = std::fs::remove_dir_all(&dir);
    Stopped {
        code,
        stdout,
        stderr,
        result: serde_json::from_str(&text).unwrap(),
        first_signal_s,
    }
}

fn num(v: &Value, key: &str) -> f64 {
    v[key]
        .as_f64()
        .unwrap_or_else(|| panic!("no number {key} in the result"))
}

/// The shared checks: exit status, the partial marks, and nothing started after the signal.
fn check_stopped(s: &Stopped, exit: i32, signal: &str) {
    let ctx = format!("stdout:\n{}\nstderr:\n{}", s.stdout, s.stderr);
    assert_eq!(s.code, Some(exit), "{ctx}");
    assert_eq!(s.result["partial"], Value::Bool(true), "{ctx}");
    assert_eq!(s.result["stopped_by"], signal, "{ctx}");
    assert!(s.stdout.contains("PARTIAL RESULTS"), "{ctx}");
    assert!(
        s.stderr
            .contains("Stopping: no new requests; waiting up to"),
        "{ctx}"
    );
    // Some were sent, far fewer than planned: the rest were never sent and are left out.
    let sent = num(&s.result, "num_prompts");
    assert!(sent > 0.0 && sent < 150.0, "{sent} sent\n{ctx}");
    assert!(s.stdout.contains("planned requests were not sent"), "{ctx}");
    let starts = s.result["start_times"].as_array().unwrap();
    assert_eq!(starts.len() as f64, sent);
    let last_start = starts
        .iter()
        .map(|v| v.as_f64().unwrap())
        .fold(0.0, f64::max);
    // 20 ms: far less than the 50 ms between arrivals, far more than noticing takes.
    assert!(
        last_start < s.first_signal_s + 0.02,
        "a request started {:.3} s after the signal\n{ctx}",
        last_start - s.first_signal_s
    );
}

fn graceful(engine: &str) {
    let s = run_and_signal(
        engine,
        &format!("sig-grace-{engine}"),
        &[],
        &[(libc::SIGINT, 0)],
    );
    check_stopped(&s, 130, "SIGINT");
    // The requests in flight were let finish: none failed, every sent one completed.
    let ctx = format!("stdout:\n{}\nstderr:\n{}", s.stdout, s.stderr);
    assert_eq!(num(&s.result, "failed"), 0.0, "{ctx}");
    assert!(num(&s.result, "completed") > 0.0, "{ctx}");
    assert_eq!(
        num(&s.result, "completed"),
        num(&s.result, "num_prompts"),
        "{ctx}"
    );
}

fn twice(engine: &str) {
    let s = run_and_signal(
        engine,
        &format!("sig-twice-{engine}"),
        &[],
        &[(libc::SIGINT, 0), (libc::SIGINT, 250)],
    );
    check_stopped(&s, 130, "SIGINT");
    aborted_in_flight(&s, "second signal");
}

fn sigterm_then_grace(engine: &str) {
    let s = run_and_signal(
        engine,
        &format!("sig-term-{engine}"),
        &["--shutdown-grace", "0.3"],
        &[(libc::SIGTERM, 0)],
    );
    check_stopped(&s, 143, "SIGTERM");
    assert!(s.stderr.contains("waiting up to 0.3 s"), "{}", s.stderr);
    aborted_in_flight(&s, "grace period");
}

/// Requests that were in flight (~0.8 s each at 20/s: about 16) were aborted, named so.
fn aborted_in_flight(s: &Stopped, why: &str) {
    let ctx = format!("stdout:\n{}\nstderr:\n{}", s.stdout, s.stderr);
    let failed = num(&s.result, "failed");
    assert!(failed > 0.0, "{ctx}");
    assert!(num(&s.result, "completed") > 0.0, "{ctx}");
    let errors: Vec<&str> = s.result["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap())
        .filter(|e| !e.is_empty())
        .collect();
    assert_eq!(errors.len() as f64, failed, "{ctx}");
    assert!(
        errors
            .iter()
            .all(|e| e.starts_with("aborted:") && e.contains(why)),
        "{errors:?}"
    );
    assert!(s.stderr.contains("Aborting the"), "{ctx}");
}

#[test]
fn first_sigint_stops_sending_and_lets_in_flight_finish_uring() {
    graceful("uring");
}

#[test]
fn first_sigint_stops_sending_and_lets_in_flight_finish_glommio() {
    graceful("glommio");
}

#[test]
fn second_sigint_aborts_in_flight_uring() {
    twice("uring");
}

#[test]
fn second_sigint_aborts_in_flight_glommio() {
    twice("glommio");
}

#[test]
fn sigterm_exits_143_and_the_grace_period_aborts_uring() {
    sigterm_then_grace("uring");
}

#[test]
fn sigterm_exits_143_and_the_grace_period_aborts_glommio() {
    sigterm_then_grace("glommio");
}

/// Conversations stop too: the first turns in flight at the signal finish, and no later turn
/// is sent after them.
fn conversations(engine: &str) {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/workloads/sharegpt-multiturn.json"
    );
    let load = [
        "--backend",
        "openai-chat",
        "--dataset-name",
        "sharegpt",
        "--dataset-path",
        path,
        "--multi-turn",
        "--disable-shuffle",
        "--num-prompts",
        "4",
        "--sharegpt-output-len",
        "16",
    ];
    // Every first turn starts at once and takes ~0.5 s: signal while they are in flight.
    let s = run_with(
        engine,
        &format!("sig-turns-{engine}"),
        &load,
        &[],
        &[(libc::SIGINT, 0)],
        250,
    );
    let ctx = format!("stdout:\n{}\nstderr:\n{}", s.stdout, s.stderr);
    assert_eq!(s.code, Some(130), "{ctx}");
    assert_eq!(s.result["partial"], Value::Bool(true), "{ctx}");
    // 4 conversations of 3, 2, 1 and 1 turns: the 4 first turns ran, the 3 later ones did not.
    assert_eq!(num(&s.result, "num_prompts"), 4.0, "{ctx}");
    assert_eq!(num(&s.result, "completed"), 4.0, "{ctx}");
    assert!(
        s.stdout
            .contains("SIGINT stopped the run: 3 planned requests were not sent"),
        "{ctx}"
    );
}

#[test]
fn later_turns_are_not_sent_after_a_signal_uring() {
    conversations("uring");
}

#[test]
fn later_turns_are_not_sent_after_a_signal_glommio() {
    conversations("glommio");
}

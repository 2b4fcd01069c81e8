//! The direct engine (`--io-engine uring`): the real binary against the real mock, and against
//! tiny misbehaving servers written here.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

mod common;

use common::{value, Mock, BIN};

fn bench(url: &str, args: &[&str]) -> Output {
    let mut child = Command::new(BIN)
        .args(["--base-url", url, "--io-engine", "uring", "--disable-tqdm"])
        .args(["--random-input-len", "32", "--seed", "3"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the benchmark");
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the benchmark hung");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// "N connections opened" from the client's closing stderr line.
fn connections_opened(stderr: &str) -> u64 {
    let line = stderr
        .lines()
        .find(|l| l.contains("connections opened"))
        .unwrap_or_else(|| panic!("no connection count in:\n{stderr}"));
    let before = line.split(" connections opened").next().unwrap();
    before.rsplit(' ').next().unwrap().parse().unwrap()
}

#[test]
fn timings_match_the_mock_with_an_open_pool() {
    let mock = Mock::start(40.0, 4.0);
    // Poisson arrivals, no concurrency limit: timers drive the starts and the pool grows.
    let out = bench(
        &mock.url,
        &[
            "--num-prompts",
            "200",
            "--random-output-len",
            "16",
            "--request-rate",
            "300",
            "--num-shards",
            "2",
        ],
    );
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert_eq!(value(&stdout, "Successful requests:"), 200.0);
    assert_eq!(value(&stdout, "Failed requests:"), 0.0);
    assert_eq!(value(&stdout, "Total generated tokens:"), 200.0 * 16.0);
    assert_eq!(value(&stdout, "Total input tokens:"), 200.0 * 32.0);
    // The mock writes token k at 40 + 4k ms after it reads the request.
    let ttft = value(&stdout, "Mean TTFT (ms):");
    assert!((40.0..60.0).contains(&ttft), "mean TTFT {ttft}");
    let itl = value(&stdout, "Mean ITL (ms):");
    assert!((3.9..4.6).contains(&itl), "mean ITL {itl}");
    let tpot = value(&stdout, "Mean TPOT (ms):");
    assert!((3.9..4.6).contains(&tpot), "mean TPOT {tpot}");
    // ~0.67 s of arrivals and 100 ms per request: the open pool must have started them on time
    // (a client that queued them would take far longer).
    let duration = value(&stdout, "Benchmark duration (s):");
    assert!(duration < 1.5, "duration {duration}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn max_concurrency_is_exact_and_connections_are_reused() {
    let mock = Mock::start(40.0, 4.0);
    // 4 slots, 12 requests of 40 + 15 * 4 = 100 ms: three waves on four connections.
    let out = bench(
        &mock.url,
        &[
            "--num-prompts",
            "12",
            "--random-output-len",
            "16",
            "--max-concurrency",
            "4",
            "--num-shards",
            "1",
        ],
    );
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert_eq!(value(&stdout, "Successful requests:"), 12.0);
    assert_eq!(value(&stdout, "Peak concurrent requests:"), 4.0);
    let duration = value(&stdout, "Benchmark duration (s):");
    assert!(
        duration >= 0.29,
        "12 requests in 3 waves of 100 ms took {duration} s"
    );
    assert!(duration < 1.0, "duration {duration}");
    assert_eq!(connections_opened(&stderr), 4, "{stderr}");
    // Queued requests wait for a slot, and that wait shows as client queueing.
    let ttft = value(&stdout, "Mean TTFT (ms):");
    assert!((40.0..60.0).contains(&ttft), "mean TTFT {ttft}");
}

#[test]
fn warmup_uses_the_pool_before_the_clock() {
    let mock = Mock::start(5.0, 1.0);
    let out = bench(
        &mock.url,
        &[
            "--num-prompts",
            "8",
            "--random-output-len",
            "4",
            "--max-concurrency",
            "2",
            "--num-warmups",
            "5",
            "--num-shards",
            "1",
        ],
    );
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert_eq!(value(&stdout, "Successful requests:"), 8.0);
    assert_eq!(connections_opened(&stderr), 2, "{stderr}");
}

/// How a tiny test server treats each request.
#[derive(Clone, Copy)]
enum Misbehave {
    /// Head and two events of a chunked stream, then close.
    CloseMidStream,
    /// Head and one event, then a TCP reset.
    ResetMidStream,
    /// Not HTTP at all.
    Garbage,
    /// A complete keep-alive response, then close the connection anyway.
    CloseAfterResponse,
}

const EVENT: &str = "data: {\"id\":\"c\",\"object\":\"text_completion\",\"choices\":[{\"index\":0,\"text\":\"hi\",\"finish_reason\":null}]}\n\n";

fn chunk(data: &str) -> String {
    format!("{:x}\r\n{data}\r\n", data.len())
}

/// A server on loopback that answers every request by `mode`; stops when dropped.
struct Tiny {
    url: String,
    stop: Arc<AtomicBool>,
    accepted: Arc<AtomicUsize>,
}

impl Tiny {
    fn start(mode: Misbehave) -> Tiny {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        listener.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let accepted = Arc::new(AtomicUsize::new(0));
        let (stop2, accepted2) = (stop.clone(), accepted.clone());
        std::thread::spawn(move || {
            while !stop2.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((s, _)) => {
                        accepted2.fetch_add(1, Ordering::Relaxed);
                        std::thread::spawn(move || serve(s, mode));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(2)),
                }
            }
        });
        Tiny {
            url,
            stop,
            accepted,
        }
    }
}

impl Drop for Tiny {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Read one request (head and Content-Length body); false at EOF or on error.
fn read_request(s: &mut TcpStream) -> bool {
    let mut buf = Vec::new();
    let mut tmp = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            if buf.len() >= end + 4 + len {
                return true;
            }
        }
        match s.read(&mut tmp) {
            Ok(0) | Err(_) => return false,
            Ok(n) => buf.extend_from_slice(&tmp[..n]),
        }
    }
}

fn serve(mut s: TcpStream, mode: Misbehave) {
    let _ = s.set_read_timeout(Some(Duration::from_secs(30)));
    let head =
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n";
    if !read_request(&mut s) {
        return;
    }
    match mode {
        Misbehave::CloseMidStream => {
            let _ = s.write_all(format!("{head}{}{}", chunk(EVENT), chunk(EVENT)).as_bytes());
            std::thread::sleep(Duration::from_millis(20));
        }
        Misbehave::ResetMidStream => {
            let _ = s.write_all(format!("{head}{}", chunk(EVENT)).as_bytes());
            std::thread::sleep(Duration::from_millis(20));
            // Linger 0: close sends a RST instead of a FIN.
            let _ = socket2::SockRef::from(&s).set_linger(Some(Duration::ZERO));
        }
        Misbehave::Garbage => {
            let _ = s.write_all(b"this is not http\r\n\r\n");
            std::thread::sleep(Duration::from_millis(20));
        }
        Misbehave::CloseAfterResponse => {
            let usage = "data: {\"id\":\"c\",\"object\":\"text_completion\",\"choices\":[],\"usage\":{\"prompt_tokens\":32,\"completion_tokens\":2}}\n\n";
            let body = format!(
                "{}{}{}{}0\r\n\r\n",
                chunk(EVENT),
                chunk(EVENT),
                chunk(usage),
                chunk("data: [DONE]\n\n")
            );
            let _ = s.write_all(format!("{head}{body}").as_bytes());
            // Keep-alive was promised; close anyway, a moment later, as idle timeouts do.
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

fn failing_run(mode: Misbehave, n: usize) -> (String, String) {
    let server = Tiny::start(mode);
    let n = n.to_string();
    let out = bench(
        &server.url,
        &[
            "--model",
            "m",
            "--num-prompts",
            &n,
            "--random-output-len",
            "8",
            "--max-concurrency",
            "3",
            "--num-shards",
            "1",
        ],
    );
    let (stdout, stderr) = text(&out);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        server.accepted.load(Ordering::Relaxed) >= 3,
        "the client did not come back after failures"
    );
    (stdout, stderr)
}

#[test]
fn a_server_closing_mid_stream_fails_those_requests_and_the_run_ends() {
    let (stdout, stderr) = failing_run(Misbehave::CloseMidStream, 6);
    assert_eq!(value(&stdout, "Successful requests:"), 0.0, "{stderr}");
    assert_eq!(value(&stdout, "Failed requests:"), 6.0);
    assert!(
        stdout.contains("connection closed after") && stdout.contains("bytes of response"),
        "{stdout}"
    );
}

#[test]
fn a_reset_mid_stream_is_a_connection_error() {
    let (stdout, _) = failing_run(Misbehave::ResetMidStream, 6);
    assert_eq!(value(&stdout, "Failed requests:"), 6.0);
    assert!(stdout.contains("connection error after"), "{stdout}");
    assert!(stdout.contains("reset"), "{stdout}");
}

#[test]
fn garbage_is_a_malformed_response() {
    let (stdout, _) = failing_run(Misbehave::Garbage, 4);
    assert_eq!(value(&stdout, "Failed requests:"), 4.0);
    assert!(stdout.contains("malformed response"), "{stdout}");
}

#[test]
fn keep_alive_connections_the_server_drops_are_replaced() {
    let server = Tiny::start(Misbehave::CloseAfterResponse);
    let out = bench(
        &server.url,
        &[
            "--model",
            "m",
            "--num-prompts",
            "20",
            "--random-output-len",
            "2",
            "--max-concurrency",
            "2",
            "--num-shards",
            "1",
        ],
    );
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "stdout:\n{stdout}\nstderr:\n{stderr}");
    // Every request meets a connection the server has closed (or is closing): each is sent
    // again on a fresh one, or finds the old one gone; none fails.
    assert_eq!(value(&stdout, "Successful requests:"), 20.0, "{stdout}");
    assert_eq!(value(&stdout, "Total generated tokens:"), 40.0);
    assert!(server.accepted.load(Ordering::Relaxed) >= 20);
}

#[test]
fn a_refused_connection_fails_each_request_clearly() {
    // Nothing listens on the discard port of loopback.
    let out = bench(
        "http://127.0.0.1:9",
        &[
            "--model",
            "m",
            "--num-prompts",
            "3",
            "--random-output-len",
            "4",
        ],
    );
    let (stdout, stderr) = text(&out);
    assert_eq!(value(&stdout, "Failed requests:"), 3.0, "{stderr}");
    assert!(stdout.contains("cannot connect to 127.0.0.1:9"), "{stdout}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

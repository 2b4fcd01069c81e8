//! The mock server over real sockets, with a deliberately naive blocking client.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use serde_json::Value;
use servebench::mock::{spawn, MockArgs, MockHandle};

fn mock(ttft_ms: f64, itl_ms: f64) -> MockHandle {
    spawn(&MockArgs {
        port: 0,
        ttft_ms,
        itl_ms,
        ..MockArgs::default()
    })
    .expect("mock starts")
}

fn connect(addr: SocketAddr) -> BufReader<TcpStream> {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.set_nodelay(true).unwrap();
    BufReader::new(s)
}

fn send(conn: &mut BufReader<TcpStream>, raw: &[u8]) {
    conn.get_mut().write_all(raw).unwrap();
}

fn post(path: &str, body: &str, extra: &str) -> Vec<u8> {
    format!(
        "POST {path} HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n{extra}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn get(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n").into_bytes()
}

struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// For chunked bodies: each SSE event (`data: ` stripped) with the time it was complete.
    events: Vec<(Instant, String)>,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

fn read_line(conn: &mut BufReader<TcpStream>) -> String {
    let mut line = String::new();
    conn.read_line(&mut line).unwrap();
    assert!(line.ends_with("\r\n"), "line not CRLF-terminated: {line:?}");
    line.truncate(line.len() - 2);
    line
}

/// Reads one response: Content-Length, chunked (split into SSE events as it arrives), or
/// (neither) up to end of stream.
fn read_response(conn: &mut BufReader<TcpStream>) -> Response {
    let status_line = read_line(conn);
    let status = status_line
        .strip_prefix("HTTP/1.1 ")
        .and_then(|s| s.get(..3))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let mut headers = Vec::new();
    loop {
        let line = read_line(conn);
        if line.is_empty() {
            break;
        }
        let (n, v) = line.split_once(':').unwrap();
        headers.push((n.to_string(), v.trim().to_string()));
    }
    let mut r = Response {
        status,
        headers,
        body: Vec::new(),
        events: Vec::new(),
    };
    if let Some(len) = r.header("content-length") {
        r.body = vec![0; len.parse().unwrap()];
        conn.read_exact(&mut r.body).unwrap();
    } else if r.header("transfer-encoding") == Some("chunked") {
        loop {
            let size = usize::from_str_radix(&read_line(conn), 16).unwrap();
            let mut chunk = vec![0; size + 2];
            conn.read_exact(&mut chunk).unwrap();
            let at = Instant::now();
            assert!(chunk.ends_with(b"\r\n"));
            if size == 0 {
                break;
            }
            r.body.extend_from_slice(&chunk[..size]);
            while let Some(end) = find(&r.body, b"\n\n") {
                let event: Vec<u8> = r.body.drain(..end + 2).collect();
                let text = String::from_utf8(event).unwrap();
                let data = text.strip_prefix("data: ").expect("data event").trim_end();
                r.events.push((at, data.to_string()));
            }
        }
        assert!(r.body.is_empty(), "bytes after the last event");
    } else {
        conn.read_to_end(&mut r.body).unwrap();
    }
    r
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn roundtrip(addr: SocketAddr, raw: &[u8]) -> Response {
    let mut conn = connect(addr);
    send(&mut conn, raw);
    read_response(&mut conn)
}

/// True once the server has closed the connection (EOF, or a reset), skipping what it sent
/// before; false if it is still open after a second.
fn closed_by_server(conn: &mut BufReader<TcpStream>) -> bool {
    conn.get_ref()
        .set_read_timeout(Some(Duration::from_secs(1)))
        .unwrap();
    let mut buf = [0u8; 4096];
    loop {
        match conn.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) => {
                return !matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                )
            }
        }
    }
}

fn assert_error(r: &Response, status: u16, kind: &str) {
    assert_eq!(r.status, status);
    assert_eq!(r.header("content-type"), Some("application/json"));
    let v = r.json();
    assert_eq!(v["error"]["code"], status);
    assert_eq!(v["error"]["type"], kind);
    assert!(!v["error"]["message"].as_str().unwrap().is_empty());
}

fn default_tokenizer() -> tokenizers::Tokenizer {
    tokenizers::Tokenizer::from_bytes(include_bytes!("../assets/default-tokenizer.json")).unwrap()
}

#[test]
fn health_and_models() {
    let m = mock(0.0, 0.0);
    let r = roundtrip(m.addr(), &get("/health"));
    assert_eq!((r.status, r.header("content-length")), (200, Some("0")));

    let r = roundtrip(m.addr(), &get("/v1/models"));
    assert_eq!(r.status, 200);
    let v = r.json();
    assert_eq!(v["object"], "list");
    let model = &v["data"][0];
    assert_eq!(model["id"], "servebench-mock");
    assert_eq!(model["root"], "servebench-mock");
    assert_eq!(model["object"], "model");
    assert_eq!(model["owned_by"], "servebench");
    assert!(model["parent"].is_null());
    assert!(model["created"].as_u64().unwrap() > 1_600_000_000);
    assert!(model["max_model_len"].as_u64().unwrap() > 0);
}

#[test]
fn errors_are_json_and_framed() {
    let m = mock(0.0, 0.0);
    let mut conn = connect(m.addr());

    send(&mut conn, &get("/nope"));
    assert_error(&read_response(&mut conn), 404, "NotFoundError");

    send(&mut conn, &get("/v1/completions"));
    let r = read_response(&mut conn);
    assert_error(&r, 405, "MethodNotAllowedError");
    assert_eq!(r.header("allow"), Some("POST"));

    send(
        &mut conn,
        &post("/v1/completions", r#"{"prompt": "x", "#, ""),
    );
    assert_error(&read_response(&mut conn), 400, "BadRequestError");

    send(
        &mut conn,
        &post(
            "/v1/completions",
            r#"{"prompt":"x","max_tokens":"ten"}"#,
            "",
        ),
    );
    let r = read_response(&mut conn);
    assert_error(&r, 400, "BadRequestError");
    assert!(r.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("max_tokens"));

    // The connection survived every body-level error above.
    send(&mut conn, &get("/health"));
    assert_eq!(read_response(&mut conn).status, 200);

    // A malformed head gets a 400 and the connection is closed.
    send(&mut conn, b"GET /health HTTP/1.1\r\nBad Header\r\n\r\n");
    let r = read_response(&mut conn);
    assert_error(&r, 400, "BadRequestError");
    assert_eq!(r.header("connection"), Some("close"));
    assert!(closed_by_server(&mut conn));

    let r = roundtrip(
        m.addr(),
        b"POST /v1/completions HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    );
    assert_error(&r, 411, "BadRequestError");
}

/// Sends a streaming request and checks everything but timing; returns the response and the
/// instant the request was written.
fn stream(addr: SocketAddr, prompt: &str, max_tokens: u32) -> (Response, Instant) {
    let body = format!(
        r#"{{"model":"x","prompt":{prompt},"max_tokens":{max_tokens},"stream":true,"stream_options":{{"include_usage":true}},"ignore_eos":true}}"#
    );
    let mut conn = connect(addr);
    let sent = Instant::now();
    send(&mut conn, &post("/v1/completions", &body, ""));
    let r = read_response(&mut conn);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("text/event-stream"));
    let n = max_tokens as usize;
    assert_eq!(r.events.len(), n + 2, "tokens, usage, [DONE]");
    let mut text = String::new();
    let mut id = None;
    for (k, (_, data)) in r.events[..n].iter().enumerate() {
        let v: Value = serde_json::from_str(data).unwrap();
        assert_eq!(v["object"], "text_completion");
        assert_eq!(v["model"], "servebench-mock");
        assert!(v["usage"].is_null());
        let id = id.get_or_insert_with(|| v["id"].as_str().unwrap().to_string());
        assert_eq!(v["id"].as_str(), Some(id.as_str()));
        assert!(id.starts_with("cmpl-"));
        let choice = &v["choices"][0];
        let want_finish = if k + 1 == n { "length" } else { "" };
        assert_eq!(choice["finish_reason"].as_str().unwrap_or(""), want_finish);
        text.push_str(choice["text"].as_str().unwrap());
    }
    // Retokenizing the text gives the token count back (the client's fallback relies on it).
    assert_eq!(default_tokenizer().encode(text, false).unwrap().len(), n);
    let usage: Value = serde_json::from_str(&r.events[n].1).unwrap();
    assert_eq!(usage["choices"].as_array().unwrap().len(), 0);
    assert_eq!(usage["usage"]["completion_tokens"], max_tokens);
    assert_eq!(r.events[n + 1].1, "[DONE]");
    (r, sent)
}

fn usage(r: &Response, key: &str) -> u64 {
    let v: Value = serde_json::from_str(&r.events[r.events.len() - 2].1).unwrap();
    v["usage"][key].as_u64().unwrap()
}

#[test]
fn streaming_tokens_and_usage() {
    let m = mock(0.0, 0.0);
    let (r, _) = stream(m.addr(), "[1,2,3,4,5]", 7);
    assert_eq!(usage(&r, "prompt_tokens"), 5);
    assert_eq!(usage(&r, "total_tokens"), 12);

    let (r, _) = stream(m.addr(), "[[9,9,9],[1]]", 1);
    assert_eq!(usage(&r, "prompt_tokens"), 3);

    // Text prompts are counted only when asked: by default usage leaves prompt_tokens out.
    let (r, _) = stream(m.addr(), "\"Hello there\"", 2);
    let last: Value = serde_json::from_str(&r.events[r.events.len() - 2].1).unwrap();
    assert!(last["usage"].get("prompt_tokens").is_none(), "{last}");
    assert_eq!(usage(&r, "completion_tokens"), 2);
    let m = spawn(&MockArgs {
        port: 0,
        count_prompt_tokens: true,
        ..MockArgs::default()
    })
    .expect("mock starts");

    let tok = default_tokenizer();
    let short = "Hello world, this is a \"quoted\" prompt.\nSecond line.";
    // Long enough to be counted on the blocking pool rather than inline.
    let long = "The quick brown fox jumps over the lazy dog. ".repeat(60);
    for text in [short.to_string(), long] {
        let want = tok.encode(text.as_str(), false).unwrap().len() as u64;
        let prompt = serde_json::to_string(&text).unwrap();
        let (r, _) = stream(m.addr(), &prompt, 3);
        assert_eq!(
            usage(&r, "prompt_tokens"),
            want,
            "prompt of {} bytes",
            text.len()
        );
        assert_eq!(usage(&r, "total_tokens"), want + 3);
    }
}

#[test]
fn streaming_follows_the_latency_model() {
    let m = mock(50.0, 10.0);
    let (r, sent) = stream(m.addr(), "[1]", 20);
    let first = r.events[0].0 - sent;
    let last = r.events[19].0 - sent;
    assert!(
        first >= Duration::from_millis(50),
        "first token after {first:?}"
    );
    assert!(
        first < Duration::from_millis(250),
        "first token after {first:?}"
    );
    assert!(
        last >= Duration::from_millis(240),
        "last token after {last:?}"
    );
    assert!(
        last < Duration::from_millis(440),
        "last token after {last:?}"
    );
    // Tokens are spread out, not batched: the middle one is due at 150 ms.
    let mid = r.events[10].0 - sent;
    assert!(mid >= Duration::from_millis(150), "token 10 after {mid:?}");
}

#[test]
fn non_streaming_body() {
    let m = mock(20.0, 5.0);
    let sent = Instant::now();
    let r = roundtrip(
        m.addr(),
        &post("/v1/completions", r#"{"prompt":[1,2],"max_tokens":9}"#, ""),
    );
    let elapsed = sent.elapsed();
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(
        r.header("content-length")
            .unwrap()
            .parse::<usize>()
            .unwrap(),
        r.body.len()
    );
    let v = r.json();
    assert_eq!(v["object"], "text_completion");
    assert_eq!(v["model"], "servebench-mock");
    assert!(v["id"].as_str().unwrap().starts_with("cmpl-"));
    let choice = &v["choices"][0];
    assert_eq!(choice["finish_reason"], "length");
    assert_eq!(choice["index"], 0);
    let text = choice["text"].as_str().unwrap();
    assert_eq!(default_tokenizer().encode(text, false).unwrap().len(), 9);
    assert_eq!(v["usage"]["prompt_tokens"], 2);
    assert_eq!(v["usage"]["completion_tokens"], 9);
    assert_eq!(v["usage"]["total_tokens"], 11);
    // Sent at ttft + 8 * itl = 60 ms.
    assert!(elapsed >= Duration::from_millis(60), "{elapsed:?}");
    assert!(elapsed < Duration::from_millis(260), "{elapsed:?}");
}

#[test]
fn keep_alive_and_connection_close() {
    let m = mock(0.0, 0.0);
    let mut conn = connect(m.addr());
    send(&mut conn, &get("/health"));
    assert_eq!(read_response(&mut conn).status, 200);
    send(
        &mut conn,
        &post(
            "/v1/completions",
            r#"{"prompt":"hi","max_tokens":4,"stream":true}"#,
            "",
        ),
    );
    let r = read_response(&mut conn);
    assert_eq!(r.events.len(), 5, "4 tokens and [DONE], no usage");
    send(
        &mut conn,
        &post("/v1/completions", r#"{"prompt":"hi","max_tokens":2}"#, ""),
    );
    assert_eq!(
        read_response(&mut conn).json()["usage"]["completion_tokens"],
        2
    );

    // Two requests in one write: the second one's bytes must not be lost.
    let mut two = get("/health");
    two.extend(get("/v1/models"));
    send(&mut conn, &two);
    assert_eq!(read_response(&mut conn).status, 200);
    assert_eq!(read_response(&mut conn).json()["object"], "list");

    send(
        &mut conn,
        &post(
            "/v1/completions",
            r#"{"prompt":[1]}"#,
            "Connection: close\r\n",
        ),
    );
    let r = read_response(&mut conn);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("connection"), Some("close"));
    assert!(closed_by_server(&mut conn));
}

#[test]
fn oversized_requests_are_refused() {
    let m = mock(0.0, 0.0);
    // The head keeps coming while the server refuses it; the reply must still arrive.
    let mut conn = connect(m.addr());
    let long = format!(
        "GET /health HTTP/1.1\r\nX-Long: {}\r\n\r\n",
        "a".repeat(100_000)
    );
    let _ = conn.get_mut().write_all(long.as_bytes());
    let r = read_response(&mut conn);
    assert_error(&r, 431, "BadRequestError");
    assert!(closed_by_server(&mut conn));

    let r = roundtrip(
        m.addr(),
        b"POST /v1/completions HTTP/1.1\r\nContent-Length: 100000000000\r\n\r\n",
    );
    assert_error(&r, 413, "BadRequestError");
}

#[test]
fn large_body_and_http10() {
    let m = mock(0.0, 0.0);
    let ids: Vec<String> = (0..200_000).map(|i| (i % 50_000).to_string()).collect();
    let body = format!(r#"{{"prompt":[{}],"max_tokens":1}}"#, ids.join(","));
    let mut conn = connect(m.addr());
    send(&mut conn, &post("/v1/completions", &body, ""));
    assert_eq!(
        read_response(&mut conn).json()["usage"]["prompt_tokens"],
        200_000
    );
    // The same connection still works after the buffer grew and shrank.
    send(&mut conn, &get("/health"));
    assert_eq!(read_response(&mut conn).status, 200);

    // HTTP/1.0 has no chunked encoding: the stream ends when the connection closes.
    let body = r#"{"prompt":[1],"max_tokens":3,"stream":true}"#;
    let raw = format!(
        "POST /v1/completions HTTP/1.0\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let r = roundtrip(m.addr(), raw.as_bytes());
    assert_eq!(r.status, 200);
    assert_eq!(r.header("transfer-encoding"), None);
    let text = String::from_utf8(r.body).unwrap();
    assert_eq!(text.matches("data: {").count(), 3);
    assert!(text.ends_with("data: [DONE]\n\n"));
}

#[test]
fn expect_continue_gets_100() {
    let m = mock(0.0, 0.0);
    let mut conn = connect(m.addr());
    let body = r#"{"prompt":[1,2,3],"max_tokens":1}"#;
    let head = format!(
        "POST /v1/completions HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    send(&mut conn, head.as_bytes());
    assert_eq!(read_line(&mut conn), "HTTP/1.1 100 Continue");
    assert_eq!(read_line(&mut conn), "");
    send(&mut conn, body.as_bytes());
    assert_eq!(read_response(&mut conn).json()["usage"]["prompt_tokens"], 3);
}

#[test]
fn two_shards_share_one_port() {
    let allowed: Vec<usize> = core_affinity::get_core_ids()
        .unwrap()
        .iter()
        .map(|c| c.id)
        .collect();
    // Two executors even on a one-CPU machine: the port sharing is what is under test.
    let cpus = vec![allowed[0], *allowed.get(1).unwrap_or(&allowed[0])];
    let m = spawn(&MockArgs {
        port: 0,
        cpus: Some(cpus),
        ..MockArgs::default()
    })
    .unwrap();
    let body = r#"{"prompt":[1],"max_tokens":2}"#;
    let conns: Vec<_> = (0..50)
        .map(|_| {
            let mut c = connect(m.addr());
            send(&mut c, &post("/v1/completions", body, ""));
            c
        })
        .collect();
    let mut shards_seen = [0usize; 2];
    for mut c in conns {
        let r = read_response(&mut c);
        assert_eq!(r.status, 200);
        let id = r.json()["id"].as_str().unwrap().to_string();
        let n: u64 = id.strip_prefix("cmpl-").unwrap().parse().unwrap();
        // Shard i of 2 hands out ids congruent to i.
        shards_seen[(n % 2) as usize] += 1;
    }
    assert!(
        shards_seen[0] > 0 && shards_seen[1] > 0,
        "one shard served everything: {shards_seen:?}"
    );
}

#[test]
fn client_disconnect_mid_stream_is_harmless() {
    let m = mock(0.0, 20.0);
    for _ in 0..5 {
        let mut conn = connect(m.addr());
        send(
            &mut conn,
            &post(
                "/v1/completions",
                r#"{"prompt":[1],"max_tokens":50,"stream":true}"#,
                "",
            ),
        );
        let mut first = [0u8; 64];
        conn.read_exact(&mut first).unwrap();
        drop(conn);
    }
    std::thread::sleep(Duration::from_millis(100));
    let (r, _) = stream(m.addr(), "[1,2]", 3);
    assert_eq!(usage(&r, "prompt_tokens"), 2);
}

#[test]
fn stop_is_prompt_even_mid_stream() {
    let m = mock(0.0, 1000.0);
    let addr = m.addr();
    let mut conn = connect(addr);
    send(
        &mut conn,
        &post(
            "/v1/completions",
            r#"{"prompt":[1],"max_tokens":100,"stream":true}"#,
            "",
        ),
    );
    let mut first = [0u8; 64];
    conn.read_exact(&mut first).unwrap();
    let t = Instant::now();
    m.stop();
    assert!(
        t.elapsed() < Duration::from_secs(1),
        "stop took {:?}",
        t.elapsed()
    );
    assert!(closed_by_server(&mut conn));
    assert!(
        TcpStream::connect(addr).is_err(),
        "still accepting after stop"
    );
}

#[test]
fn bad_arguments_are_refused() {
    let refused = |args: MockArgs, needle: &str| {
        let e = match spawn(&MockArgs { port: 0, ..args }) {
            Ok(_) => panic!("accepted, expected an error naming {needle}"),
            Err(e) => format!("{e:#}"),
        };
        assert!(e.contains(needle), "{e}");
    };
    refused(
        MockArgs {
            ttft_ms: -1.0,
            ..MockArgs::default()
        },
        "--ttft-ms",
    );
    refused(
        MockArgs {
            itl_ms: f64::NAN,
            ..MockArgs::default()
        },
        "--itl-ms",
    );
    refused(
        MockArgs {
            num_shards: 0,
            ..MockArgs::default()
        },
        "--num-shards",
    );
    let garbage = std::env::temp_dir().join(format!("mock-tokenizer-{}.json", std::process::id()));
    std::fs::write(&garbage, b"{not a tokenizer").unwrap();
    refused(
        MockArgs {
            tokenizer: Some(garbage.clone()),
            ..MockArgs::default()
        },
        garbage.to_str().unwrap(),
    );
    std::fs::remove_file(&garbage).unwrap();
    refused(
        MockArgs {
            tokenizer: Some(garbage.clone()),
            ..MockArgs::default()
        },
        "cannot read --tokenizer",
    );
    refused(
        MockArgs {
            truth_log: Some("/nonexistent-servebench-dir/truth.jsonl".into()),
            ..MockArgs::default()
        },
        "--truth-log /nonexistent-servebench-dir/truth.jsonl",
    );
}

// ---- --truth-log: the server's own CLOCK_MONOTONIC times ----

const BIN: &str = env!("CARGO_BIN_EXE_servebench");
const TRUTH_KEYS: [&str; 6] = [
    "request_id",
    "stream",
    "read_ns",
    "head_ns",
    "event_ns",
    "end_ns",
];
const MS: u64 = 1_000_000;

/// CLOCK_MONOTONIC in ns, read here independently of the crate's own clock module.
fn mono_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    assert_eq!(
        unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) },
        0
    );
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

fn temp_path(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("servebench-{name}-{}.jsonl", std::process::id()))
}

/// A `servebench mock` child process.
struct MockProcess {
    child: std::process::Child,
    addr: SocketAddr,
    /// The rest of its stderr, collected until it exits.
    stderr: std::thread::JoinHandle<Vec<String>>,
}

impl MockProcess {
    fn start(args: &[&str]) -> MockProcess {
        let mut child = std::process::Command::new(BIN)
            .arg("mock")
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("start servebench mock");
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let line = lines.next().expect("mock exited early").unwrap();
        // The exact format a caller parses.
        let rest = line
            .strip_prefix("servebench mock listening on http://")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
        let (addr, shards) = rest.split_once(' ').unwrap();
        assert_eq!(shards, "(1 shard)");
        let addr = addr.parse().unwrap();
        let stderr = std::thread::spawn(move || lines.map_while(Result::ok).collect());
        MockProcess {
            child,
            addr,
            stderr,
        }
    }

    /// Sends `signal`, waits (at most 10 s) for the exit; returns the exit code, the rest of
    /// stderr and all of stdout.
    fn stop_with(mut self, signal: libc::c_int) -> (Option<i32>, Vec<String>, String) {
        assert_eq!(unsafe { libc::kill(self.child.id() as i32, signal) }, 0);
        let deadline = Instant::now() + Duration::from_secs(10);
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("mock still running 10 s after signal {signal}");
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        let mut stdout = String::new();
        self.child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut stdout)
            .unwrap();
        (status.code(), self.stderr.join().unwrap(), stdout)
    }
}

/// One truth-log line, checked for its keys and their order.
struct Truth {
    request_id: Option<String>,
    stream: bool,
    read_ns: u64,
    head_ns: u64,
    event_ns: Vec<u64>,
    end_ns: u64,
}

fn truth_lines(path: &std::path::Path) -> Vec<Truth> {
    let text = std::fs::read_to_string(path).unwrap();
    std::fs::remove_file(path).unwrap();
    assert!(text.is_empty() || text.ends_with('\n'));
    text.lines()
        .map(|line| {
            let v: Value = serde_json::from_str(line).unwrap();
            let keys: Vec<&str> = v.as_object().unwrap().keys().map(|k| k.as_str()).collect();
            assert_eq!(keys.len(), TRUTH_KEYS.len(), "{line}");
            let at: Vec<usize> = TRUTH_KEYS
                .iter()
                .map(|k| line.find(&format!("\"{k}\":")).expect(k))
                .collect();
            assert!(at.windows(2).all(|w| w[0] < w[1]), "key order in {line}");
            let ns = |k: &str| v[k].as_u64().unwrap_or_else(|| panic!("{k} in {line}"));
            Truth {
                request_id: match &v["request_id"] {
                    Value::Null => None,
                    id => Some(id.as_str().unwrap().to_string()),
                },
                stream: v["stream"].as_bool().unwrap(),
                read_ns: ns("read_ns"),
                head_ns: ns("head_ns"),
                event_ns: v["event_ns"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|n| n.as_u64().unwrap())
                    .collect(),
                end_ns: ns("end_ns"),
            }
        })
        .collect()
}

/// A request sent and answered, with the client's own CLOCK_MONOTONIC window around it
/// (and around the server's work on it).
struct Sent {
    request_id: Option<&'static str>,
    max_tokens: u64,
    before_ns: u64,
    after_ns: u64,
}

fn completion(
    conn: &mut BufReader<TcpStream>,
    id_header: Option<(&str, &'static str)>,
    max_tokens: u64,
    stream: bool,
) -> Sent {
    let body = format!(
        r#"{{"prompt":[1,2],"max_tokens":{max_tokens},"stream":{stream},"stream_options":{{"include_usage":true}}}}"#
    );
    let extra = id_header.map_or(String::new(), |(name, value)| {
        format!("{name}: {value}\r\n")
    });
    let before_ns = mono_ns();
    send(conn, &post("/v1/completions", &body, &extra));
    let r = read_response(conn);
    assert_eq!(r.status, 200);
    if stream {
        assert_eq!(
            r.events.len() as u64,
            max_tokens + 2,
            "tokens, usage, [DONE]"
        );
    }
    // The server stamps the end just after its last write returns, which may be after this
    // client has the bytes. It reads the next request on the connection only after that.
    send(conn, &get("/health"));
    assert_eq!(read_response(conn).status, 200);
    let after_ns = mono_ns();
    Sent {
        request_id: id_header.map(|(_, v)| v),
        max_tokens,
        before_ns,
        after_ns,
    }
}

#[test]
fn truth_log_records_every_stream_and_sigterm_flushes_it() {
    let path = temp_path("truth-sigterm");
    let m = MockProcess::start(&[
        "--port",
        "0",
        "--ttft-ms",
        "20",
        "--itl-ms",
        "5",
        "--truth-log",
        path.to_str().unwrap(),
    ]);
    let mut a = connect(m.addr);
    let mut b = connect(m.addr);
    let sent = vec![
        completion(&mut a, Some(("X-Request-Id", "alpha-1")), 4, true),
        completion(&mut b, Some(("x-request-id", "gamma 3")), 7, true),
        // Kept alive: the second request on `a`, with a value that JSON must escape.
        completion(&mut a, Some(("X-REQUEST-ID", "b\"eta\\2")), 6, true),
        completion(&mut a, None, 3, true),
    ];
    let (code, stderr, stdout) = m.stop_with(libc::SIGTERM);
    assert_eq!(code, Some(0), "stderr: {stderr:?}");
    assert_eq!(stdout, "", "nothing on stdout");
    assert!(
        stderr
            .iter()
            .any(|l| l.contains("SIGTERM, stopped, 4 requests logged to")),
        "{stderr:?}"
    );

    let truths = truth_lines(&path);
    assert_eq!(truths.len(), sent.len());
    for s in &sent {
        let want = s.request_id.map(String::from);
        let t = truths
            .iter()
            .find(|t| t.request_id == want)
            .unwrap_or_else(|| panic!("no line for {want:?}"));
        assert!(t.stream);
        assert_eq!(t.event_ns.len() as u64, s.max_tokens, "{want:?}");
        // The server's clock is this process's CLOCK_MONOTONIC.
        assert!(s.before_ns <= t.read_ns, "{want:?} read before it was sent");
        assert!(
            t.end_ns <= s.after_ns,
            "{want:?} ended after it was received"
        );
        let mut times = vec![t.read_ns, t.head_ns];
        times.extend(&t.event_ns);
        times.push(t.end_ns);
        assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
        // Token k is written at read + ttft + k * itl, not earlier and not much later.
        for (k, &ns) in t.event_ns.iter().enumerate() {
            let due = 20 * MS + 5 * MS * k as u64;
            let after_read = ns - t.read_ns;
            assert!(after_read >= due, "token {k} at {after_read} ns");
            assert!(after_read < due + 200 * MS, "token {k} at {after_read} ns");
        }
        assert!(t.head_ns - t.read_ns < 200 * MS);
    }
}

#[test]
fn sigint_stops_the_mock_and_flushes_the_truth_log() {
    let path = temp_path("truth-sigint");
    let m = MockProcess::start(&[
        "--port",
        "0",
        "--ttft-ms",
        "10",
        "--itl-ms",
        "2",
        "--truth-log",
        path.to_str().unwrap(),
    ]);
    let mut conn = connect(m.addr);
    let s = completion(&mut conn, Some(("X-Request-Id", "whole")), 6, false);
    // Errors are not logged.
    send(
        &mut conn,
        &post("/v1/completions", "{", "X-Request-Id: bad\r\n"),
    );
    assert_eq!(read_response(&mut conn).status, 400);
    let (code, stderr, _) = m.stop_with(libc::SIGINT);
    assert_eq!(code, Some(0), "stderr: {stderr:?}");
    assert!(
        stderr
            .iter()
            .any(|l| l.contains("SIGINT, stopped, 1 request logged to")),
        "{stderr:?}"
    );

    let truths = truth_lines(&path);
    assert_eq!(truths.len(), 1);
    let t = &truths[0];
    assert_eq!(t.request_id.as_deref(), Some("whole"));
    assert!(!t.stream && t.event_ns.is_empty());
    assert_eq!(t.head_ns, t.end_ns);
    assert!(s.before_ns <= t.read_ns && t.read_ns <= t.end_ns && t.end_ns <= s.after_ns);
    // The body is due at ttft + 5 * itl = 20 ms.
    assert!(t.end_ns - t.read_ns >= 20 * MS);
}

#[test]
fn stopping_in_process_flushes_the_truth_log() {
    let path = temp_path("truth-inproc");
    let m = spawn(&MockArgs {
        port: 0,
        ttft_ms: 1.0,
        truth_log: Some(path.clone()),
        ..MockArgs::default()
    })
    .expect("mock starts");
    let mut conn = connect(m.addr());
    let s = completion(&mut conn, None, 2, false);
    // Not a completion: not logged.
    send(&mut conn, &get("/health"));
    assert_eq!(read_response(&mut conn).status, 200);
    let s2 = completion(&mut conn, Some(("X-Request-Id", "s")), 3, true);
    assert_eq!(m.shutdown().unwrap(), Some(2));

    let truths = truth_lines(&path);
    assert_eq!(truths.len(), 2);
    let (t, t2) = (&truths[0], &truths[1]);
    assert_eq!(t.request_id, None);
    assert!(!t.stream && t.event_ns.is_empty() && t.head_ns == t.end_ns);
    assert!(s.before_ns <= t.read_ns && t.end_ns <= s.after_ns);
    assert_eq!(t2.request_id.as_deref(), Some("s"));
    assert!(t2.stream && t2.event_ns.len() == 3);
    assert!(s2.before_ns <= t2.read_ns && t2.end_ns <= s2.after_ns);
}

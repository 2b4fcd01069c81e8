//! API keys never leave the process except on the wire: the real binary, given keys through
//! `--header` and OPENAI_API_KEY, prints and writes none of them, against the mock (every
//! result file), against a server that echoes the key back in its errors, and when a
//! `--header` is mistyped.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

mod common;

use common::{temp_dir, Mock, BIN};

const HEADER_KEY: &str = "SECRET123";
const ENV_KEY: &str = "SECRET456";
const OTHER_KEY: &str = "SECRET789";

fn bench(url: &str, dir: &Path, extra: &[&str]) -> Output {
    Command::new(BIN)
        .env("OPENAI_API_KEY", ENV_KEY)
        .args(["--base-url", url, "--disable-tqdm", "--num-shards", "1"])
        .args(["--num-prompts", "6", "--random-input-len", "16"])
        .args(["--random-output-len", "4"])
        .args(["--header", &format!("Authorization=Bearer {HEADER_KEY}")])
        .args(["--header", &format!("x-api-key={OTHER_KEY}")])
        .args(["--header", "x-trace=visible-value"])
        .args(["--save-result", "--save-detailed", "--result-dir"])
        .arg(dir)
        .arg("--html-report")
        .arg(dir.join("report.html"))
        .arg("--output-file")
        .arg(dir.join("out.jsonl"))
        .arg("--output-details")
        .args(extra)
        .output()
        .expect("run servebench")
}

/// No key in stdout, stderr or any file under `dir`; returns the files it read.
fn assert_no_secret(out: &Output, dir: &Path) -> Vec<String> {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    for (what, text) in [("stdout", &stdout), ("stderr", &stderr)] {
        assert!(!text.contains("SECRET"), "{what} has a key:\n{text}");
    }
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let text = String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned();
        assert!(!text.contains("SECRET"), "{} has a key", path.display());
        files.push(path.file_name().unwrap().to_string_lossy().into_owned());
    }
    files
}

#[test]
fn keys_appear_in_no_output_of_a_run_against_the_mock() {
    let mock = Mock::start(1.0, 1.0);
    let dir = temp_dir("secrets-mock");
    let out = bench(&mock.url, &dir, &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let files = assert_no_secret(&out, &dir);
    // Every kind of output was written (and checked).
    for want in [".json", "report.html", "out.jsonl"] {
        assert!(files.iter().any(|f| f.ends_with(want)), "{want}: {files:?}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A server that answers every request 401 with the request head in its error message, as a
/// careless proxy might; it keeps the heads it was sent.
fn echo_server() -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let heads = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&heads);
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let mut buf = Vec::new();
            let mut byte = [0u8; 4096];
            while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                match conn.read(&mut byte) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => buf.extend_from_slice(&byte[..n]),
                }
            }
            let head = String::from_utf8_lossy(&buf).into_owned();
            let head = head.split("\r\n\r\n").next().unwrap_or("").to_string();
            let echoed = head.replace(['\r', '\n', '"', '\\'], " ");
            let body = format!("{{\"error\":{{\"message\":\"invalid key in: {echoed}\"}}}}");
            let reply = format!(
                "HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = conn.write_all(reply.as_bytes());
            seen.lock().unwrap().push(head);
        }
    });
    (url, heads)
}

#[test]
fn keys_a_server_echoes_in_its_errors_are_not_printed_or_saved() {
    let (url, heads) = echo_server();
    let dir = temp_dir("secrets-echo");
    let out = bench(
        &url,
        &dir,
        &["--model", "m", "--ready-check-timeout-sec", "0"],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("invalid key in") && stdout.contains("<redacted>"),
        "the echoed errors are reported, redacted:\n{stdout}"
    );
    assert_no_secret(&out, &dir);
    // The server did get the keys: redaction is for output only. Benchmark requests carry
    // the --header credentials, control requests (/tokenize here) OPENAI_API_KEY.
    let heads = heads.lock().unwrap();
    let requests: Vec<&String> = heads
        .iter()
        .filter(|h| h.starts_with("POST /v1/completions"))
        .collect();
    assert!(!requests.is_empty(), "no benchmark request: {heads:?}");
    for head in requests {
        assert!(
            head.contains(&format!("Authorization: Bearer {HEADER_KEY}")),
            "{head}"
        );
        assert!(head.contains(&format!("x-api-key: {OTHER_KEY}")), "{head}");
    }
    assert!(
        heads
            .iter()
            .any(|h| h.contains(&format!("Bearer {ENV_KEY}"))),
        "{heads:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_mistyped_key_header_is_refused_without_showing_the_key() {
    for arg in [
        format!("Authorization: Bearer {HEADER_KEY}"),
        HEADER_KEY.to_string(),
    ] {
        let out = Command::new(BIN)
            .env("OPENAI_API_KEY", ENV_KEY)
            .args(["--model", "m", "--port", "9", "--header", &arg])
            .output()
            .unwrap();
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("expected KEY=VALUE"), "{stderr}");
        assert!(!stderr.contains("SECRET"), "{stderr}");
        assert!(!String::from_utf8_lossy(&out.stdout).contains("SECRET"));
    }
}

#[test]
fn an_unreachable_server_error_shows_no_key() {
    let out = Command::new(BIN)
        .env("OPENAI_API_KEY", ENV_KEY)
        .args(["--base-url", "http://127.0.0.1:9", "--num-prompts", "2"])
        .args(["--header", &format!("Authorization=Bearer {HEADER_KEY}")])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("error"), "{stderr}");
    assert!(!stderr.contains("SECRET"), "{stderr}");
}

//! Bad input fails before the run, end to end: the real binary exits non-zero with one clear
//! line on stderr and writes no result file. Where a server is needed it is the real mock, or
//! (for the status codes the mock never sends) a minimal HTTP responder on loopback.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Output};

mod common;

use common::{temp_dir, Mock, BIN};

/// Run with a result file under `dir` plus `args`.
fn run(dir: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(["--disable-tqdm", "--num-shards", "1", "--num-prompts", "4"])
        .args(["--random-input-len", "8", "--random-output-len", "4"])
        .args([
            "--save-result",
            "--result-filename",
            "r.json",
            "--result-dir",
        ])
        .arg(dir)
        .args(args)
        .output()
        .expect("run servebench")
}

/// Non-zero exit, `expected` in stderr's error line, no result file anywhere under `dir`.
fn refused(dir: &Path, out: &Output, expected: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    let ctx = format!(
        "stdout:\n{}\nstderr:\n{stderr}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(!out.status.success(), "{ctx}");
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "{ctx}");
    assert!(errors[0].contains(expected), "wanted '{expected}'\n{ctx}");
    assert!(
        !dir.join("r.json").exists(),
        "a result file was written\n{ctx}"
    );
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("Starting main benchmark run"),
        "the run started\n{ctx}"
    );
}

/// A server that answers every request with `status` and `body`, on a thread of its own.
fn responder(status: &'static str, body: &'static str) -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { return };
            let mut buf = [0u8; 65536];
            let _ = s.read(&mut buf);
            let reply = format!(
                "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = s.write_all(reply.as_bytes());
        }
    });
    url
}

#[test]
fn an_unwritable_result_dir_fails_before_anything_is_sent() {
    let mock = Mock::start(1.0, 1.0);
    let dir = temp_dir("bad-resdir");
    // A directory cannot be made under a file, even by root.
    std::fs::write(dir.join("file"), "x").unwrap();
    let bad = dir.join("file").join("sub");
    let out = Command::new(BIN)
        .args([
            "--base-url",
            &mock.url,
            "--disable-tqdm",
            "--num-prompts",
            "2",
        ])
        .args(["--save-result", "--result-dir"])
        .arg(&bad)
        .output()
        .unwrap();
    refused(&dir, &out, "--result-dir: cannot create the directory");
}

#[test]
fn a_missing_result_dir_is_created() {
    let mock = Mock::start(1.0, 1.0);
    let dir = temp_dir("new-resdir");
    let new = dir.join("a").join("b");
    let out = run(&new, &["--base-url", &mock.url]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(new.join("r.json").exists());
}

#[test]
fn an_output_file_under_a_file_is_refused() {
    let mock = Mock::start(1.0, 1.0);
    let dir = temp_dir("bad-outfile");
    std::fs::write(dir.join("file"), "x").unwrap();
    let bad = dir.join("file").join("out.jsonl");
    let out = run(
        &dir,
        &[
            "--base-url",
            &mock.url,
            "--output-file",
            bad.to_str().unwrap(),
        ],
    );
    refused(&dir, &out, "--output-file");
}

#[test]
fn connection_refused_says_is_the_server_running() {
    let dir = temp_dir("bad-refused");
    // A port nobody listens on: bind one, note it, close it.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let out = run(
        &dir,
        &[
            "--base-url",
            &url,
            "--model",
            "m",
            "--ready-check-timeout-sec",
            "1",
        ],
    );
    refused(
        &dir,
        &out,
        &format!("connection refused at 127.0.0.1:{port} — is the server running?"),
    );
}

#[test]
fn a_wrong_endpoint_fails_at_once_naming_the_url() {
    let mock = Mock::start(1.0, 1.0);
    let dir = temp_dir("bad-endpoint");
    let started = std::time::Instant::now();
    let out = run(
        &dir,
        &[
            "--base-url",
            &mock.url,
            "--endpoint",
            "/nope/v1/completions",
            "--ready-check-timeout-sec",
            "60",
        ],
    );
    refused(
        &dir,
        &out,
        &format!("{}/nope/v1/completions answered 404 Not Found", mock.url),
    );
    // At once, not after the 60 s of retries.
    assert!(started.elapsed().as_secs() < 30);
}

#[test]
fn a_model_the_server_does_not_serve_is_named() {
    let url = responder(
        "404 Not Found",
        r#"{"error": {"message": "The model `nosuch` does not exist.", "type": "NotFoundError", "code": 404}}"#,
    );
    let dir = temp_dir("bad-model");
    let out = run(
        &dir,
        &[
            "--base-url",
            &url,
            "--model",
            "nosuch",
            "--ready-check-timeout-sec",
            "60",
        ],
    );
    refused(&dir, &out, "does not serve the model 'nosuch'");
}

#[test]
fn unauthorized_says_check_the_key() {
    for status in ["401 Unauthorized", "403 Forbidden"] {
        let url = responder(status, r#"{"error": "bad key"}"#);
        let dir = temp_dir(&format!("bad-auth-{}", &status[..3]));
        let out = run(
            &dir,
            &[
                "--base-url",
                &url,
                "--model",
                "m",
                "--ready-check-timeout-sec",
                "60",
            ],
        );
        refused(&dir, &out, "check --header / OPENAI_API_KEY");
    }
}

#[test]
fn a_missing_tokenizer_path_is_one_line() {
    let mock = Mock::start(1.0, 1.0);
    let dir = temp_dir("bad-tokenizer");
    let missing = dir.join("no-such-dir").join("tokenizer.json");
    let out = run(
        &dir,
        &[
            "--base-url",
            &mock.url,
            "--tokenizer",
            missing.to_str().unwrap(),
        ],
    );
    refused(&dir, &out, "no-such-dir");
}

#[test]
fn flag_combinations_vllm_and_sglang_refuse() {
    let mock = Mock::start(1.0, 1.0);
    let dir = temp_dir("bad-flags");
    let cases: &[(&[&str], &str)] = &[
        (&["--max-concurrency", "0"], "--max-concurrency"),
        (&["--num-prompts", "0"], "--num-prompts"),
        (&["--random-range-ratio", "1.0"], "--random-range-ratio"),
        (
            &["--ramp-up-strategy", "linear", "--ramp-up-start-rps", "1"],
            "--ramp-up-end-rps",
        ),
        (
            &[
                "--ramp-up-strategy",
                "linear",
                "--ramp-up-start-rps",
                "5",
                "--ramp-up-end-rps",
                "1",
            ],
            "must not exceed",
        ),
        (
            &[
                "--ramp-up-strategy",
                "exponential",
                "--ramp-up-start-rps",
                "0",
                "--ramp-up-end-rps",
                "4",
            ],
            "--ramp-up-start-rps",
        ),
        (
            &[
                "--request-rate",
                "5",
                "--ramp-up-strategy",
                "linear",
                "--ramp-up-start-rps",
                "1",
                "--ramp-up-end-rps",
                "2",
            ],
            "--ramp-up-strategy",
        ),
        (
            &["--backend", "tgi", "--temperature", "0.5"],
            "openai-compatible",
        ),
        (
            &["--backend", "openai-chat", "--endpoint", "/v1/generate"],
            "chat/completions",
        ),
        (&["--dataset-path", "x.json"], "--dataset-path"),
        (&["--extra-body", "[1]"], "--extra-body"),
        (&["--header", "novalue"], "--header"),
        (&["--goodput", "bogus:1"], "bogus"),
        (&["--percentile-metrics", "ttft,bogus"], "bogus"),
        (&["--tokenize-prompt"], "--tokenize-prompt"),
        (
            &["--num-warmups", "1", "--warmup-requests", "1"],
            "--warmup-requests",
        ),
        (&["--duration", "0"], "--duration"),
    ];
    for (flags, expected) in cases {
        let mut args = vec!["--base-url", mock.url.as_str()];
        args.extend_from_slice(flags);
        eprintln!("case {flags:?}");
        let out = run(&dir, &args);
        refused(&dir, &out, expected);
    }
    // Clap's own refusals: non-zero, a usage error naming the value.
    for flags in [
        &["--request-rate", "0"][..],
        &["--shutdown-grace", "-1"][..],
    ] {
        let out = run(&dir, flags);
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(flags[1]), "{stderr}");
    }
}

#[test]
fn accepted_combinations_run() {
    let mock = Mock::start(1.0, 1.0);
    let dir = temp_dir("good-flags");
    for flags in [
        &[
            "--ramp-up-strategy",
            "linear",
            "--ramp-up-start-rps",
            "1",
            "--ramp-up-end-rps",
            "50",
        ][..],
        &[
            "--backend",
            "openai-chat",
            "--endpoint",
            "/v1/chat/completions",
            "--temperature",
            "0",
        ][..],
        &[
            "--backend",
            "sglang-oai",
            "--warmup-requests",
            "1",
            "--random-range-ratio",
            "0.5",
        ][..],
        &[
            "--header",
            "X-A=1",
            "--extra-body",
            "{\"seed\": 1}",
            "--shutdown-grace",
            "0",
        ][..],
    ] {
        let mut args = vec!["--base-url", mock.url.as_str()];
        args.extend_from_slice(flags);
        let out = run(&dir, &args);
        assert!(
            out.status.success(),
            "{flags:?}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(dir.join("r.json").exists());
        std::fs::remove_file(dir.join("r.json")).unwrap();
    }
}

#[test]
fn a_full_disk_after_the_run_keeps_the_report_and_names_the_file() {
    // /dev/full accepts the open and fails every write with ENOSPC, as a full disk does.
    assert!(Path::new("/dev/full").exists(), "this test needs /dev/full");
    let mock = Mock::start(1.0, 1.0);
    let dir = temp_dir("full-disk");
    let out = run(
        &dir,
        &["--base-url", &mock.url, "--output-file", "/dev/full"],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    // The report came first, and the other result file was still written.
    assert!(stdout.contains("Serving Benchmark Result"), "{stdout}");
    assert!(dir.join("r.json").exists(), "{stderr}");
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    assert!(
        errors[0].contains("cannot write the output file /dev/full")
            && errors[0].contains("No space left"),
        "{stderr}"
    );
}

//! Every `--backend` value through the real binary against the real mock, which speaks each
//! wire format: all requests succeed, token counts are the mock's, TTFT and ITL match its
//! latency model.

mod common;

use std::process::Command;

use common::{value, Mock, BIN};

const BACKENDS: [&str; 17] = [
    "vllm",
    "openai",
    "lmdeploy",
    "scalellm",
    "sglang-oai",
    "llama.cpp",
    "truss",
    "openai-chat",
    "vllm-chat",
    "sglang-oai-chat",
    "lmdeploy-chat",
    "openai-responses",
    "sglang",
    "sglang-native",
    "tgi",
    "tensorrt-llm",
    "trt",
];

/// The tests of this file measure latencies: one at a time, so that their clients and mocks do
/// not share the CPUs with each other.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner())
}

fn run(mock: &Mock, backend: &str, extra: &[&str]) -> String {
    let out = Command::new(BIN)
        .args(["--backend", backend, "--base-url", &mock.url])
        .args(["--num-prompts", "24", "--random-input-len", "32"])
        .args(["--random-output-len", "8", "--max-concurrency", "8"])
        // vLLM's block for every backend (sglang* ones would print SGLang's by default).
        .args([
            "--num-shards",
            "1",
            "--disable-tqdm",
            "--report-style",
            "vllm",
        ])
        .args(extra)
        .output()
        .expect("run the benchmark");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "--backend {backend}:\n{stdout}\n{stderr}"
    );
    stdout
}

#[test]
fn every_backend_runs_against_the_mock() {
    let _serial = serial();
    let mock = Mock::start(20.0, 4.0);
    for backend in BACKENDS {
        let stdout = run(&mock, backend, &[]);
        let ok = |label: &str| value(&stdout, label);
        assert_eq!(ok("Successful requests:"), 24.0, "{backend}:\n{stdout}");
        assert_eq!(ok("Failed requests:"), 0.0, "{backend}");
        // Formats with a server count (usage, meta_info, details) give exactly 8 per request;
        // Triton's has none, so its text is retokenized (the mock's words are single tokens
        // of the embedded tokenizer or close to it).
        let generated = ok("Total generated tokens:");
        if backend.starts_with("tensorrt") || backend == "trt" {
            assert!(
                (24.0 * 8.0..=24.0 * 16.0).contains(&generated),
                "{backend}: {generated}"
            );
        } else {
            assert_eq!(generated, 24.0 * 8.0, "{backend}:\n{stdout}");
        }
        let ttft = ok("Mean TTFT (ms):");
        assert!((20.0..35.0).contains(&ttft), "{backend}: mean TTFT {ttft}");
        let itl = ok("Mean ITL (ms):");
        assert!((3.0..6.0).contains(&itl), "{backend}: mean ITL {itl}");
    }
}

#[test]
fn deepspeed_mii_replies_are_one_body() {
    let _serial = serial();
    // Not streamed: the whole reply comes at TTFT + 7·ITL = 48 ms; vLLM's legacy client
    // records TTFT as 0 and the latency at the reply's end.
    let mock = Mock::start(20.0, 4.0);
    let stdout = run(
        &mock,
        "deepspeed-mii",
        &["--percentile-metrics", "ttft,tpot,itl,e2el"],
    );
    assert_eq!(value(&stdout, "Successful requests:"), 24.0, "{stdout}");
    assert_eq!(value(&stdout, "Mean TTFT (ms):"), 0.0);
    let e2el = value(&stdout, "Mean E2EL (ms):");
    assert!((48.0..60.0).contains(&e2el), "mean E2EL {e2el}");
    let generated = value(&stdout, "Total generated tokens:");
    assert!(
        (24.0 * 8.0..=24.0 * 16.0).contains(&generated),
        "{generated}"
    );
}

#[test]
fn disable_stream_reads_one_body_and_ttft_is_the_latency() {
    let _serial = serial();
    let mock = Mock::start(20.0, 4.0);
    for backend in ["openai", "openai-chat", "openai-responses", "sglang"] {
        let flags = [
            "--disable-stream",
            "--percentile-metrics",
            "ttft,tpot,itl,e2el",
        ];
        let stdout = run(&mock, backend, &flags);
        assert_eq!(
            value(&stdout, "Successful requests:"),
            24.0,
            "{backend}:\n{stdout}"
        );
        assert_eq!(
            value(&stdout, "Total generated tokens:"),
            24.0 * 8.0,
            "{backend}"
        );
        // The whole reply comes at 20 + 7·4 = 48 ms.
        let ttft = value(&stdout, "Mean TTFT (ms):");
        let e2el = value(&stdout, "Mean E2EL (ms):");
        assert!((48.0..60.0).contains(&ttft), "{backend}: TTFT {ttft}");
        assert!(
            (ttft - e2el).abs() < 0.01,
            "{backend}: TTFT {ttft} vs E2EL {e2el}"
        );
    }
    let out = Command::new(BIN)
        .args([
            "--backend",
            "tgi",
            "--disable-stream",
            "--base-url",
            &mock.url,
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--disable-stream"));
}

#[test]
fn sglang_chunks_of_several_tokens_split_their_gap() {
    let _serial = serial();
    // The mock sends a chunk every 4 tokens; SGLang's client rule spreads each chunk's gap over
    // its tokens, so ITL is still the per-token time and the token count is exact.
    let mock = Mock::start_with(20.0, 4.0, &["--sglang-tokens-per-chunk", "4"]);
    let stdout = run(&mock, "sglang", &[]);
    assert_eq!(value(&stdout, "Total generated tokens:"), 24.0 * 8.0);
    let itl = value(&stdout, "Mean ITL (ms):");
    assert!((3.0..6.0).contains(&itl), "mean ITL {itl}");
    // The first chunk carries tokens 1-4, so TTFT is token 4's time (20 + 3·4 ms) and TPOT
    // spreads the rest over 7 tokens: (8 − 4)·4 / 7 ≈ 2.3 ms, as SGLang reports it (less when
    // the first chunk is read late on a loaded machine).
    let ttft = value(&stdout, "Mean TTFT (ms):");
    assert!((32.0..42.0).contains(&ttft), "mean TTFT {ttft}");
    let tpot = value(&stdout, "Mean TPOT (ms):");
    assert!((1.5..2.9).contains(&tpot), "mean TPOT {tpot}");
}

#[test]
fn chat_reasoning_tokens_count_as_output() {
    let _serial = serial();
    let mock = Mock::start_with(20.0, 4.0, &["--reasoning-tokens", "3"]);
    let stdout = run(&mock, "openai-chat", &[]);
    assert_eq!(value(&stdout, "Total generated tokens:"), 24.0 * 8.0);
    let ttft = value(&stdout, "Mean TTFT (ms):");
    assert!(
        (20.0..30.0).contains(&ttft),
        "reasoning tokens must start the clock: {ttft}"
    );
}

#[test]
fn unknown_and_unimplemented_backends_are_refused_before_sending() {
    let _serial = serial();
    for (backend, needle) in [
        ("gserver", "does not implement"),
        ("nonsense", "choose one of"),
    ] {
        let out = Command::new(BIN)
            .args(["--backend", backend, "--base-url", "http://127.0.0.1:9"])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success());
        assert!(stderr.contains(needle), "{backend}: {stderr}");
    }
}

#[test]
fn lora_profile_and_flush_cache_against_the_mock() {
    let _serial = serial();
    let mock = Mock::start(20.0, 4.0);
    for backend in ["vllm", "sglang"] {
        let stdout = run(
            &mock,
            backend,
            &[
                "--lora-modules",
                "a",
                "b",
                "--lora-assignment",
                "round-robin",
                "--profile",
                "--flush-cache",
            ],
        );
        assert_eq!(
            value(&stdout, "Successful requests:"),
            24.0,
            "{backend}:\n{stdout}"
        );
        assert!(stdout.contains("Profiler started"), "{stdout}");
        assert!(
            stdout.contains("Flushed the server's prefix cache"),
            "{stdout}"
        );
    }
    let out = Command::new(BIN)
        .args([
            "--backend",
            "tgi",
            "--lora-modules",
            "a",
            "--base-url",
            &mock.url,
        ])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("--lora-modules"));
}

#[test]
fn ready_check_waits_for_a_served_request_or_says_why_not() {
    let _serial = serial();
    let mock = Mock::start(20.0, 4.0);
    let stdout = run(&mock, "openai", &["--ready-check-timeout-sec", "10"]);
    assert!(stdout.contains("Initial test run completed."), "{stdout}");
    assert_eq!(value(&stdout, "Successful requests:"), 24.0);

    let out = Command::new(BIN)
        .args(["--base-url", "http://127.0.0.1:9", "--model", "m"])
        .args(["--num-prompts", "4", "--random-input-len", "16"])
        .args(["--ready-check-timeout-sec", "1"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("--ready-check-timeout-sec"), "{stderr}");
    assert!(stderr.contains("127.0.0.1:9"), "{stderr}");
}

#[test]
fn sglang_can_send_token_ids() {
    let _serial = serial();
    let mock = Mock::start(20.0, 4.0);
    let text = run(&mock, "sglang", &[]);
    let ids = run(&mock, "sglang", &["--tokenize-prompt"]);
    assert_eq!(value(&ids, "Successful requests:"), 24.0, "{ids}");
    // The mock counts an input_ids prompt itself: the plan's count and the server's agree.
    assert_eq!(
        value(&ids, "Total input tokens:"),
        value(&text, "Total input tokens:")
    );
    let out = Command::new(BIN)
        .args([
            "--backend",
            "openai",
            "--tokenize-prompt",
            "--base-url",
            &mock.url,
        ])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("--tokenize-prompt"));
}

#[test]
fn speculative_decoding_figures_come_from_the_servers_metrics() {
    let _serial = serial();
    // Each 8-token reply: 4 drafts of 4 tokens, one token accepted per draft.
    let mock = Mock::start_with(20.0, 4.0, &["--spec-decode-tokens", "4"]);
    let dir = std::env::temp_dir().join(format!("servebench-spec-{}", std::process::id()));
    let dir_s = dir.to_string_lossy().into_owned();
    let stdout = run(
        &mock,
        "vllm",
        &[
            "--save-result",
            "--result-dir",
            &dir_s,
            "--result-filename",
            "r.json",
        ],
    );
    assert!(
        stdout.contains("---------------Speculative Decoding---------------"),
        "{stdout}"
    );
    assert_eq!(value(&stdout, "Acceptance rate (%):"), 25.0);
    assert_eq!(value(&stdout, "Acceptance length:"), 2.0);
    assert_eq!(value(&stdout, "Drafts:"), 24.0 * 4.0);
    assert_eq!(value(&stdout, "Draft tokens:"), 24.0 * 16.0);
    assert_eq!(value(&stdout, "Accepted tokens:"), 24.0 * 4.0);
    assert_eq!(value(&stdout, "  Position 0:"), 100.0);
    let saved: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("r.json")).unwrap()).unwrap();
    assert_eq!(saved["spec_decode_num_drafts"], 96);
    assert_eq!(saved["spec_decode_acceptance_length"], 2.0);
    let keys: Vec<&str> = saved
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let at = |k: &str| keys.iter().position(|x| *x == k).unwrap();
    assert!(at("rtfx") < at("spec_decode_acceptance_rate"));
    assert!(at("spec_decode_per_position_acceptance_rates") < at("mean_ttft_ms"));
    let _ = std::fs::remove_dir_all(&dir);

    // A server without the counters gets no section.
    let plain = Mock::start(20.0, 4.0);
    assert!(!run(&plain, "vllm", &[]).contains("Speculative Decoding"));
}

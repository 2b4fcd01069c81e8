//! The real binary against the real mock server, both as separate processes on loopback.

use std::process::Command;

mod common;

use common::{value, Mock, BIN};

#[test]
fn benchmark_against_the_mock_matches_its_latency_model() {
    matches_latency_model("uring");
}

/// The glommio shard engine (`--io-engine glommio`) must keep giving the same figures.
#[test]
fn glommio_engine_matches_the_latency_model_too() {
    matches_latency_model("glommio");
}

fn matches_latency_model(io_engine: &str) {
    let mock = Mock::start(40.0, 4.0);
    let dir =
        std::env::temp_dir().join(format!("servebench-e2e-{io_engine}-{}", std::process::id()));
    let out = Command::new(BIN)
        .args(["--io-engine", io_engine])
        .args(["--base-url", &mock.url])
        .args(["--num-prompts", "300", "--random-input-len", "64"])
        .args(["--random-output-len", "16", "--max-concurrency", "64"])
        .args(["--num-shards", "2", "--disable-tqdm", "--seed", "7"])
        .args([
            "--percentile-metrics",
            "ttft,tpot,itl,e2el,client_queue_time",
        ])
        .args([
            "--metric-percentiles",
            "50,99",
            "--save-result",
            "--save-detailed",
        ])
        .args(["--metadata", "run=e2e", "--result-dir"])
        .arg(&dir)
        .args(["--result-filename", "r.json"])
        .output()
        .expect("run the benchmark");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "stdout:\n{stdout}\nstderr:\n{stderr}");

    assert_eq!(value(&stdout, "Successful requests:"), 300.0);
    assert_eq!(value(&stdout, "Failed requests:"), 0.0);
    assert_eq!(value(&stdout, "Maximum request concurrency:"), 64.0);
    assert_eq!(value(&stdout, "Total generated tokens:"), 300.0 * 16.0);
    assert_eq!(value(&stdout, "Total input tokens:"), 300.0 * 64.0);
    // The mock writes token k at 40 + 4k ms after reading the request. A client that stamps
    // events late (e.g. after the whole response) would be off by tens of milliseconds.
    let ttft = value(&stdout, "Mean TTFT (ms):");
    assert!((40.0..48.0).contains(&ttft), "mean TTFT {ttft}");
    let itl = value(&stdout, "Mean ITL (ms):");
    assert!((3.9..4.6).contains(&itl), "mean ITL {itl}");
    let tpot = value(&stdout, "Mean TPOT (ms):");
    assert!((3.9..4.6).contains(&tpot), "mean TPOT {tpot}");
    let e2el = value(&stdout, "Mean E2EL (ms):");
    assert!((100.0..112.0).contains(&e2el), "mean E2EL {e2el}");
    assert!(value(&stdout, "Peak concurrent requests:") <= 64.0);

    let text = std::fs::read_to_string(dir.join("r.json")).expect("result file");
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(|k| k.as_str()).collect();
    let expected_prefix = [
        "date",
        "endpoint_type",
        "backend",
        "label",
        "model_id",
        "tokenizer_id",
        "num_prompts",
        "run",
        "request_rate",
        "burstiness",
        "max_concurrency",
        "duration",
        "completed",
        "failed",
        "total_input_tokens",
        "total_output_tokens",
        "request_throughput",
        "request_goodput",
        "output_throughput",
        "total_token_throughput",
        "input_lens",
        "output_lens",
        "ttfts",
        "itls",
        "latencies",
        "start_times",
        "queue_times",
        "generated_texts",
        "errors",
        "max_output_tokens_per_s",
        "max_concurrent_requests",
        "rtfx",
        "mean_ttft_ms",
        "median_ttft_ms",
        "std_ttft_ms",
        "p50_ttft_ms",
        "p99_ttft_ms",
        "mean_tpot_ms",
    ];
    assert_eq!(&keys[..expected_prefix.len()], &expected_prefix);
    assert!(keys.contains(&"p99_client_queue_time_ms"));
    assert!(keys.contains(&"mean_e2el_ms"));
    assert_eq!(v["request_rate"], "inf");
    assert_eq!(v["completed"], 300);
    assert_eq!(
        v["model_id"], "servebench-mock",
        "model discovered from /v1/models"
    );
    assert_eq!(v["itls"].as_array().unwrap().len(), 300);
    assert_eq!(v["itls"][0].as_array().unwrap().len(), 15);
    assert!(v["generated_texts"][0].as_str().unwrap().len() > 16);
    // The file's mean agrees with the console's.
    let mean_ttft_file = v["mean_ttft_ms"].as_f64().unwrap();
    assert!((mean_ttft_file - ttft).abs() < 0.01);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn unreachable_server_is_one_clear_error() {
    let out = Command::new(BIN)
        .args(["--base-url", "http://127.0.0.1:9", "--num-prompts", "1"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("cannot connect"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn bad_flags_are_rejected_before_anything_is_sent() {
    for (args, needle) in [
        (&["--random-range-ratio", "1.5"][..], "range-ratio"),
        (&["--dataset-path", "x.json"][..], "dataset-path"),
        (&["--max-concurrency", "0"][..], "max-concurrency"),
        (&["--metric-percentiles", "abc"][..], "metric-percentiles"),
        (&["--header", "novalue"][..], "KEY=VALUE"),
    ] {
        let out = Command::new(BIN)
            .args(["--model", "m", "--port", "9"])
            .args(args)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?} was accepted");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
    }
}

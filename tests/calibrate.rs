//! A small `servebench calibrate`: the real binary runs the real mock as a child process with
//! its truth log and compares, event by event. The bounds are generous (CI machines are small
//! and shared) but tight enough to catch timestamps taken in the wrong place: stamping events
//! when a whole response has been parsed would make every ITL error about −ITL.

use std::process::Command;

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_servebench");
const TTFT_MS: f64 = 20.0;
const ITL_MS: f64 = 5.0;
const TOKENS: u64 = 8;

fn ms(v: &Value, key: &str) -> f64 {
    v[key].as_f64().unwrap_or_else(|| panic!("no {key} in {v}")) / 1e6
}

#[test]
fn calibrate_compares_the_client_with_the_truth_log() {
    let dir =
        std::env::temp_dir().join(format!("servebench-calibrate-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let json = dir.join("calibration.json");
    let out = Command::new(BIN)
        .args(["calibrate", "--steps", "1,8", "--waves", "3"])
        .args([
            "--ttft-ms",
            &TTFT_MS.to_string(),
            "--itl-ms",
            &ITL_MS.to_string(),
        ])
        .args(["--output-len", &TOKENS.to_string(), "--input-len", "16"])
        .args(["--ceiling-requests", "400", "--ceiling-concurrency", "8"])
        .arg("--output-json")
        .arg(&json)
        .output()
        .expect("run calibrate");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "calibrate failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("Client calibration"), "{stdout}");
    assert!(stdout.contains("Request-rate ceiling"), "{stdout}");

    let report: Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let steps = report["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 2);
    for (step, streams) in steps.iter().zip([1u64, 8]) {
        assert_eq!(step["streams"], streams);
        assert_eq!(step["failed"], 0, "{step}");
        assert_eq!(step["event_count_mismatches"], 0, "{step}");
        assert_eq!(step["events"].as_u64(), Some(streams * 3 * TOKENS));
        let ttft = &step["ttft_err"];
        let client_share = &step["client_ttft_err"];
        let ingest = &step["server_ingest"];
        let itl = &step["itl_err"];
        let late = &step["delivery"];
        assert_eq!(ttft["count"].as_u64(), Some(streams * 3));
        assert_eq!(itl["count"].as_u64(), Some(streams * 3 * (TOKENS - 1)));
        // The client cannot see a token before the server wrote it, nor send later than it
        // was read; a little slack for pairing Instant with CLOCK_MONOTONIC.
        assert!(ms(ttft, "mean_ns") > -0.05, "{step}");
        assert!(ms(late, "p50_ns") > -0.05, "{step}");
        // ...and on loopback it sees it soon after.
        assert!(ms(ttft, "mean_ns") < 5.0, "TTFT error too large: {step}");
        // The split adds up: the client's share plus the server's backlog is the whole error.
        assert_eq!(client_share["count"], ttft["count"]);
        let sum = ms(client_share, "mean_ns") + ms(ingest, "mean_ns");
        assert!((sum - ms(ttft, "mean_ns")).abs() < 1e-6, "{step}");
        assert!(ms(ingest, "mean_ns") > -0.05, "{step}");
        assert!(ms(late, "p50_ns") < 2.0, "events seen late: {step}");
        assert!(
            ms(itl, "mean_ns").abs() < 0.5,
            "ITL error too large: {step}"
        );
        // The tail is the loaded CI machine's; a misplaced timestamp moves the median.
        assert!(
            ms(itl, "p50_ns").abs() < ITL_MS / 10.0,
            "ITL error too large: {step}"
        );
        assert!(step["client_cpu_s"].as_f64().unwrap() > 0.0);
        assert!(step["mock_cpu_s"].as_f64().unwrap() >= 0.0);
    }
    let ceiling = &report["ceiling"];
    assert_eq!(ceiling["failed"], 0, "{ceiling}");
    assert_eq!(ceiling["requests"], 400);
    assert!(ceiling["requests_per_s"].as_f64().unwrap() > 0.0);
    let _ = std::fs::remove_dir_all(&dir);
}

//! The results end to end: the real binary against the real mock writes SGLang's block and
//! JSONL beside vLLM's block, the client-health section, and warns when it is driven past what
//! it can send on time.

use std::process::{Command, Output};

mod common;

use common::{value, Mock, BIN};

fn run(mock: &Mock, args: &[&str]) -> Output {
    Command::new(BIN)
        .args([
            "--base-url",
            &mock.url,
            "--disable-tqdm",
            "--num-shards",
            "1",
        ])
        .args(["--random-input-len", "16"])
        .args(args)
        .output()
        .expect("run servebench")
}

fn ok(out: &Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "stdout:\n{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[test]
fn both_blocks_health_and_an_appended_jsonl_line() {
    let mock = Mock::start(20.0, 2.0);
    let dir = std::env::temp_dir().join(format!("servebench-res-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("out.jsonl");
    let file_s = file.to_str().unwrap();
    let args = [
        "--backend",
        "sglang-oai",
        "--random-output-len",
        "8",
        "--num-prompts",
        "40",
        "--request-rate",
        "200",
        "--goodput",
        "ttft:1000",
        "e2el:1",
        "--report-style",
        "both",
        "--output-file",
        file_s,
        "--output-details",
        "--tag",
        "t1",
    ];
    let stdout = ok(&run(&mock, &args));
    // vLLM's block with the goodput line, SGLang's block, then the health section.
    let vllm_at = stdout.find("Failed requests:").expect("vLLM block");
    let sglang_at = stdout.find("\nBackend:").expect("SGLang block");
    let health_at = stdout.find("= Client Health =").expect("health section");
    assert!(vllm_at < sglang_at && sglang_at < health_at, "{stdout}");
    // e2el:1 ms cannot be met (TTFT alone is 20 ms): no request is good.
    assert_eq!(value(&stdout, "Request goodput (req/s):"), 0.0);
    assert_eq!(value(&stdout, "TTFT SLO attainment (%):"), 100.0);
    assert_eq!(value(&stdout, "E2EL SLO attainment (%):"), 0.0);
    assert_eq!(value(&stdout, "Successful requests:"), 40.0);
    let mean_ttft = value(&stdout, "Mean TTFT (ms):");
    assert!((20.0..60.0).contains(&mean_ttft), "{mean_ttft}");
    // A debug build on a busy CI box may lag a little at p99; the median must stay small.
    assert!(value(&stdout, "Send lag P50 (ms):") < 5.0, "{stdout}");
    let from_plan = value(&stdout, "Mean TTFT from planned send (ms):");
    assert!(from_plan >= mean_ttft, "{stdout}");
    assert!(stdout.contains("Mean ITL per token (SGLang) (ms):"));

    // A second run appends a second line.
    ok(&run(&mock, &args));
    let text = std::fs::read_to_string(&file).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    let v: serde_json::Value = serde_json::from_str(lines[1]).unwrap();
    assert_eq!(v["tag"], "t1");
    assert_eq!(v["backend"], "sglang-oai");
    assert_eq!(v["completed"], 40);
    assert_eq!(v["request_goodput"], 0.0);
    assert_eq!(v["slo_attainment_by_metric"]["ttft"], 1.0);
    assert_eq!(v["ttfts"].as_array().unwrap().len(), 40);
    assert!(v["total_output_tokens_retokenized"].as_u64().unwrap() > 0);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_goodput_flags_fail_before_anything_is_sent_with_vllms_message() {
    for (flag, says) in [
        ("itl:5", "Invalid metric name found, itl: 5.0."),
        ("ttft:-1", "Invalid value found, ttft: -1.0."),
        ("ttft=5", "\"KEY:VALUE\""),
    ] {
        let out = Command::new(BIN)
            .args(["--base-url", "http://127.0.0.1:9", "--model", "m"])
            .args(["--goodput", flag])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success());
        assert!(stderr.contains(says), "{flag}: {stderr}");
    }
}

#[test]
fn a_client_driven_past_its_capacity_says_so() {
    let mock = Mock::start(1.0, 1.0);
    // One shard asked to open 3000 streams at 100k req/s: it cannot keep that schedule.
    let out = run(
        &mock,
        &[
            "--num-prompts",
            "3000",
            "--request-rate",
            "100000",
            "--random-output-len",
            "2",
        ],
    );
    let stdout = ok(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(value(&stdout, "Send lag P99 (ms):") > 1.0, "{stdout}");
    assert!(
        stdout.contains("WARNING: the client fell behind its plan"),
        "{stdout}"
    );
    assert!(stderr.contains("fell behind"), "{stderr}");
}

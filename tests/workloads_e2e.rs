//! Datasets and load shapes end to end: the real binary against the real mock, each run
//! checked for what the workload promises (trace times kept, counts, images sent, errors
//! before anything is sent).

use std::path::Path;
use std::process::{Command, Output};

mod common;

use common::temp_dir;

use common::{value, Mock, BIN};

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/workloads");

fn run(mock: &Mock, args: &[&str]) -> Output {
    Command::new(BIN)
        // `--model org/m` names a hub id: never look it up online from a test.
        .env("HF_HUB_OFFLINE", "1")
        .args([
            "--base-url",
            &mock.url,
            "--disable-tqdm",
            "--num-shards",
            "1",
        ])
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

fn result(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("r.json")).unwrap()).unwrap()
}

#[test]
fn timed_trace_requests_are_sent_at_their_trace_times() {
    let mock = Mock::start(5.0, 1.0);
    let dir = temp_dir("trace");
    let path = format!("{DATA}/timed_trace.jsonl");
    let out = run(
        &mock,
        &[
            "--dataset-name",
            "timed_trace",
            "--dataset-path",
            &path,
            "--timed-trace-sec-multiplier",
            "0.1",
            "--num-prompts",
            "100",
            "--save-result",
            "--save-detailed",
            "--result-filename",
            "r.json",
            "--result-dir",
            dir.to_str().unwrap(),
        ],
    );
    let stdout = ok(&out);
    assert!(
        stdout.contains("replaying the dataset's trace timestamps"),
        "{stdout}"
    );
    let r = result(&dir);
    assert_eq!(r["completed"], 6);
    // Trace times 100, 100.5, 102, 103, 103.25, 104 s, scaled by 0.1, from the first.
    let want = [0.0, 0.05, 0.2, 0.3, 0.325, 0.4];
    let starts: Vec<f64> = r["start_times"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    for (s, w) in starts.iter().zip(want) {
        let late = s - starts[0] - w;
        // Generous for a loaded CI machine; scripts/trace-replay.sh measures the real figure.
        assert!(
            (-0.0005..0.03).contains(&late),
            "sent {late} s off its trace time: {starts:?}"
        );
    }
    // Prompt lengths are the trace's input lengths.
    assert_eq!(r["input_lens"], serde_json::json!([40, 40, 20, 36, 12, 16]));
}

#[test]
fn ramp_up_names_the_result_file_and_records_its_rates() {
    let mock = Mock::start(1.0, 0.5);
    let dir = temp_dir("ramp");
    let out = run(
        &mock,
        &[
            "--model",
            "org/m",
            "--num-prompts",
            "40",
            "--random-input-len",
            "16",
            "--random-output-len",
            "2",
            "--ramp-up-strategy",
            "exponential",
            "--ramp-up-start-rps",
            "20",
            "--ramp-up-end-rps",
            "400",
            "--save-result",
            "--result-dir",
            dir.to_str().unwrap(),
        ],
    );
    let stdout = ok(&out);
    assert!(
        stdout.contains("Will increase RPS from 20.0 to 400.0 RPS"),
        "{stdout}"
    );
    let files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(files.len(), 1);
    assert!(
        files[0].starts_with("openai-ramp-up-exponential-20qps-400qps-m-"),
        "{files:?}"
    );
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join(&files[0])).unwrap()).unwrap();
    assert_eq!(r["ramp_up_strategy"], "exponential");
    assert_eq!(
        (
            r["ramp_up_start_rps"].as_i64(),
            r["ramp_up_end_rps"].as_i64()
        ),
        (Some(20), Some(400))
    );
    // Sum of 1/rate over the ramp: well above the 40/400 s an unramped run would take.
    assert!(value(&stdout, "Benchmark duration (s):") > 0.3, "{stdout}");
}

#[test]
fn duration_ends_a_closed_loop_run_and_leaves_unsent_requests_out() {
    let mock = Mock::start(2.0, 1.0);
    let out = run(
        &mock,
        &[
            "--num-prompts",
            "20000",
            "--random-input-len",
            "8",
            "--random-output-len",
            "2",
            "--max-concurrency",
            "4",
            "--duration",
            "1",
        ],
    );
    let stdout = ok(&out);
    let done = value(&stdout, "Successful requests:");
    assert!(done > 50.0 && done < 20000.0, "{stdout}");
    assert_eq!(value(&stdout, "Failed requests:"), 0.0);
    let dur = value(&stdout, "Benchmark duration (s):");
    assert!((0.99..1.5).contains(&dur), "{stdout}");
    assert!(
        stdout.contains("were not sent and are left out"),
        "{stdout}"
    );
}

#[test]
fn images_and_system_prompts_reach_a_chat_server() {
    let mock = Mock::start(1.0, 0.5);
    let out = run(
        &mock,
        &[
            "--backend",
            "openai-chat",
            "--dataset-name",
            "random-mm",
            "--num-prompts",
            "6",
            "--random-input-len",
            "32",
            "--random-output-len",
            "3",
            "--random-mm-bucket-config",
            "{(32, 48, 1): 1.0}",
            "--random-mm-base-items-per-request",
            "2",
        ],
    );
    let stdout = ok(&out);
    assert!(stdout.contains("images: 12 in 6 requests"), "{stdout}");
    assert_eq!(value(&stdout, "Successful requests:"), 6.0);

    let out = run(
        &mock,
        &[
            "--backend",
            "openai-chat",
            "--dataset-name",
            "generated-shared-prefix",
            "--gsp-num-groups",
            "3",
            "--gsp-prompts-per-group",
            "4",
            "--gsp-system-prompt-len",
            "64",
            "--gsp-question-len",
            "8",
            "--gsp-output-len",
            "3",
            "--warmup-requests",
            "2",
        ],
    );
    let stdout = ok(&out);
    assert!(stdout.contains("Warming up with 2 requests"), "{stdout}");
    assert_eq!(value(&stdout, "Successful requests:"), 12.0);
    assert_eq!(value(&stdout, "Total input tokens:"), 12.0 * 72.0);
}

#[test]
fn bad_dataset_files_fail_before_anything_is_sent() {
    let mock = Mock::start(1.0, 1.0);
    let missing_field = format!("{DATA}/timed_trace_missing_field.jsonl");
    let bad_json = format!("{DATA}/timed_trace_bad_json.jsonl");
    for (args, needles) in [
        (
            vec![
                "--dataset-name",
                "timed_trace",
                "--dataset-path",
                "/no/such.jsonl",
            ],
            vec!["/no/such.jsonl", "no such file"],
        ),
        (
            vec![
                "--dataset-name",
                "timed_trace",
                "--dataset-path",
                &missing_field,
            ],
            vec!["timed_trace_missing_field.jsonl:3", "output_length"],
        ),
        (
            vec!["--dataset-name", "timed_trace", "--dataset-path", &bad_json],
            vec!["timed_trace_bad_json.jsonl:2", "JSON"],
        ),
        (vec!["--dataset-name", "sharegpt"], vec!["--dataset-path"]),
        (vec!["--dataset-name", "nope"], vec!["unknown dataset"]),
    ] {
        let out = run(&mock, &args);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} was accepted");
        for n in needles {
            assert!(stderr.contains(n), "{args:?}: no '{n}' in {stderr}");
        }
        assert!(
            !stdout.contains("Starting main benchmark run"),
            "{args:?}: {stdout}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

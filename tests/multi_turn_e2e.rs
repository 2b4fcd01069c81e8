//! Multi-turn conversations end to end: the real binary against the real mock (which counts
//! prompt tokens over every message it is sent), on both engines. Checked: each later turn
//! is sent after the turn before it ended, carries the server's earlier replies, holds its
//! conversation's concurrency slot, and the per-turn figures add up.

use std::process::Command;

mod common;

use common::temp_dir;

use common::{Mock, BIN};

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/workloads");

/// Requests of `sharegpt-multiturn.json` in file order: (conversation, turn).
const ORDER: [(usize, u32); 7] = [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (2, 0), (3, 0)];

struct Run {
    result: serde_json::Value,
    stdout: String,
}

fn run(engine: &str, extra: &[&str]) -> Run {
    let mock = Mock::start_with(20.0, 2.0, &["--count-prompt-tokens"]);
    let dir = temp_dir(engine);
    let path = format!("{DATA}/sharegpt-multiturn.json");
    let out = Command::new(BIN)
        .args([
            "--base-url",
            &mock.url,
            "--disable-tqdm",
            "--num-shards",
            "2",
        ])
        .args(["--backend", "openai-chat", "--io-engine", engine])
        .args(["--dataset-name", "sharegpt", "--dataset-path", &path])
        .args(["--multi-turn", "--disable-shuffle", "--num-prompts", "4"])
        .args([
            "--sharegpt-output-len",
            "16",
            "--save-result",
            "--save-detailed",
        ])
        .args([
            "--result-filename",
            "r.json",
            "--result-dir",
            dir.to_str().unwrap(),
        ])
        .args(extra)
        .output()
        .expect("run servebench");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "stdout:\n{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(dir.join("r.json")).unwrap();
    Run {
        result: serde_json::from_str(&text).unwrap(),
        stdout,
    }
}

fn floats(v: &serde_json::Value, key: &str) -> Vec<f64> {
    v[key]
        .as_array()
        .unwrap_or_else(|| panic!("no array {key}"))
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

fn check_conversations(engine: &str) {
    let r = run(engine, &["--max-concurrency", "2"]).result;
    assert_eq!(r["completed"], 7, "{r}");
    assert_eq!(r["failed"], 0);
    let per_turn = r["per_turn"].as_array().unwrap();
    let counts: Vec<u64> = per_turn
        .iter()
        .map(|t| t["completed"].as_u64().unwrap())
        .collect();
    assert_eq!(counts, [4, 2, 1]);

    let start = floats(&r, "start_times");
    let latency = floats(&r, "latencies");
    let input = floats(&r, "input_lens");
    let output = floats(&r, "output_lens");
    let end = |i: usize| start[i] + latency[i];
    for i in 1..ORDER.len() {
        let (conv, turn) = ORDER[i];
        if turn == 0 {
            continue;
        }
        assert_eq!(ORDER[i - 1], (conv, turn - 1));
        // The next turn waits for the reply to the one before it.
        assert!(
            start[i] >= end(i - 1),
            "{engine}: turn {turn} of conversation {conv} started at {} before the turn \
             before it ended at {}",
            start[i],
            end(i - 1)
        );
        // ... and carries it: the server counts the earlier turn, its reply and the new
        // question (at least 8 tokens) in the prompt.
        assert!(
            input[i] >= input[i - 1] + output[i - 1] + 8.0,
            "{engine}: turn {turn} of conversation {conv} has {} prompt tokens; the turn \
             before had {} and its reply {}",
            input[i],
            input[i - 1],
            output[i - 1]
        );
    }
    // Two slots, held by whole conversations: the third conversation starts only when one of
    // the first two has ended its last turn.
    let first_free = end(2).min(end(4));
    assert!(
        start[5] >= first_free,
        "{engine}: conversation 2 started at {} while both slots were held (first free at \
         {first_free})",
        start[5]
    );
}

#[test]
fn later_turns_follow_carry_replies_and_hold_the_slot_uring() {
    check_conversations("uring");
}

#[test]
fn later_turns_follow_carry_replies_and_hold_the_slot_glommio() {
    check_conversations("glommio");
}

#[test]
fn per_turn_table_is_printed_and_duration_cuts_conversations() {
    // One slot: the first conversation holds it. Each turn takes at least 20 + 15 × 2 ms,
    // so its third turn is due after 100 ms, past the 75 ms the run lasts.
    let run = run("uring", &["--max-concurrency", "1", "--duration", "0.075"]);
    assert!(run.stdout.contains("Per-turn Latency"), "{}", run.stdout);
    assert!(
        run.stdout.contains("planned requests were not sent"),
        "{}",
        run.stdout
    );
    let r = run.result;
    let per_turn = r["per_turn"].as_array().unwrap();
    assert_eq!(per_turn[0]["turn"], 1);
    assert_eq!(per_turn[0]["completed"], 1, "{r}");
    assert!(
        per_turn.len() <= 2,
        "the third turn was sent after --duration: {r}"
    );
    let completed = r["completed"].as_u64().unwrap();
    assert!((1..=2).contains(&completed), "{r}");
    assert_eq!(r["failed"], 0);
}

#[test]
fn multi_turn_needs_a_chat_backend_and_sharegpt() {
    let mock = Mock::start(1.0, 1.0);
    let path = format!("{DATA}/sharegpt-multiturn.json");
    let out = Command::new(BIN)
        .args(["--base-url", &mock.url, "--disable-tqdm"])
        .args(["--backend", "vllm", "--dataset-name", "sharegpt"])
        .args(["--dataset-path", &path, "--multi-turn"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("chat backend"), "{err}");

    let out = Command::new(BIN)
        .args(["--base-url", &mock.url, "--disable-tqdm"])
        .args([
            "--backend",
            "openai-chat",
            "--dataset-name",
            "random",
            "--multi-turn",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--multi-turn takes ShareGPT"), "{err}");
}

#[test]
fn generated_shared_prefix_turns_run_as_conversations() {
    let mock = Mock::start_with(2.0, 0.5, &["--count-prompt-tokens"]);
    let dir = temp_dir("gsp");
    let out = Command::new(BIN)
        .args([
            "--base-url",
            &mock.url,
            "--disable-tqdm",
            "--num-shards",
            "1",
        ])
        .args([
            "--backend",
            "openai-chat",
            "--dataset-name",
            "generated-shared-prefix",
        ])
        .args(["--gsp-num-groups", "2", "--gsp-prompts-per-group", "3"])
        .args(["--gsp-system-prompt-len", "40", "--gsp-question-len", "10"])
        .args([
            "--gsp-output-len",
            "12",
            "--gsp-num-turns",
            "3",
            "--gsp-ordered",
        ])
        .args([
            "--save-result",
            "--save-detailed",
            "--result-filename",
            "r.json",
        ])
        .args(["--result-dir", dir.to_str().unwrap()])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("r.json")).unwrap()).unwrap();
    assert_eq!(r["completed"], 18);
    let counts: Vec<u64> = r["per_turn"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["completed"].as_u64().unwrap())
        .collect();
    assert_eq!(counts, [6, 6, 6]);
    let input = floats(&r, "input_lens");
    let output = floats(&r, "output_lens");
    for c in 0..6 {
        for t in 1..3 {
            let i = c * 3 + t;
            assert!(
                input[i] >= input[i - 1] + output[i - 1] + 5.0,
                "conversation {c} turn {t}: {} prompt tokens after {} + {}",
                input[i],
                input[i - 1],
                output[i - 1]
            );
        }
    }
}

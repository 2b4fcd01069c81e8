//! Tokenizers end to end: the real binary against the real mock. Server-side alignment in
//! every `/tokenize` dialect the mock speaks (and none), a hub id from a prepared HF cache,
//! the offline error, and `--skip-tokenizer-init`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

mod common;

use common::temp_dir;

use common::{Mock, BIN};

const TOKENIZER: &[u8] = include_bytes!("../assets/default-tokenizer.json");
const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/workloads");
const INPUT_LEN: usize = 48;
const PROMPTS: usize = 12;

/// The embedded tokenizer with most BPE merges dropped: it splits the same text into more
/// tokens, as a server with another tokenizer would.
fn coarser_tokenizer(dir: &Path) -> PathBuf {
    let mut v: serde_json::Value = serde_json::from_slice(TOKENIZER).unwrap();
    let merges = v["model"]["merges"].as_array_mut().unwrap();
    merges.truncate(merges.len() / 8);
    let path = dir.join("server-tokenizer.json");
    std::fs::write(&path, serde_json::to_vec(&v).unwrap()).unwrap();
    path
}

fn bench(mock: &Mock, dir: &Path, extra: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(BIN)
        .args([
            "--base-url",
            &mock.url,
            "--disable-tqdm",
            "--num-shards",
            "1",
        ])
        .args([
            "--save-result",
            "--result-filename",
            "r.json",
            "--result-dir",
        ])
        .arg(dir)
        .args(extra)
        .env("HF_HUB_OFFLINE", "1")
        .env("HF_HOME", dir.join("hf-empty"))
        .envs(env.iter().copied())
        .output()
        .expect("run servebench")
}

fn random_run(mock: &Mock, dir: &Path) -> (serde_json::Value, String) {
    let out = bench(
        mock,
        dir,
        &[
            "--num-prompts",
            &PROMPTS.to_string(),
            "--random-input-len",
            &INPUT_LEN.to_string(),
            "--random-output-len",
            "4",
            "--save-detailed",
        ],
        &[],
    );
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "stdout:\n{stdout}\nstderr:\n{stderr}");
    let r = serde_json::from_str(&std::fs::read_to_string(dir.join("r.json")).unwrap()).unwrap();
    (r, format!("{stdout}\n{stderr}"))
}

#[test]
fn random_prompts_are_aligned_in_every_tokenize_dialect() {
    let dir = temp_dir("dialects");
    let server_tok = coarser_tokenizer(&dir);
    for dialect in ["vllm", "sglang", "llamacpp"] {
        let mock = Mock::start_with(
            0.0,
            0.0,
            &[
                "--tokenizer",
                server_tok.to_str().unwrap(),
                "--tokenize-dialect",
                dialect,
            ],
        );
        let (r, log) = random_run(&mock, &dir);
        let a = &r["server_alignment"];
        assert_eq!(a["status"], "aligned", "{dialect}: {a}\n{log}");
        assert_eq!(a["dialect"], dialect, "{a}");
        assert_eq!(a["prompts"], PROMPTS);
        assert_eq!(a["failed"], 0, "{a}");
        // The coarser server tokenizer counts more tokens, so every prompt is cut to length.
        assert_eq!(a["truncated"], PROMPTS, "{a}");
        assert_eq!(r["completed"], PROMPTS);
        // Input lengths are the server's counts (the mock reports usage.prompt_tokens). A cut
        // text can re-tokenize a token or two short, so most, not all, land exactly.
        let lens: Vec<u64> = r["input_lens"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l.as_u64().unwrap())
            .collect();
        let target = INPUT_LEN as u64;
        assert!(
            lens.iter().all(|&l| (target - 5..=target).contains(&l)),
            "{lens:?}"
        );
        let exact = lens.iter().filter(|&&l| l == target).count();
        assert!(exact * 4 >= PROMPTS * 3, "{lens:?}");
        assert!(log.contains("Server tokenizer mismatch"), "{log}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn same_tokenizer_agrees_and_no_tokenize_route_warns_and_runs() {
    let dir = temp_dir("agree");
    let mock = Mock::start_with(0.0, 0.0, &["--count-prompt-tokens"]);
    let (r, _) = random_run(&mock, &dir);
    assert_eq!(
        r["server_alignment"],
        serde_json::json!({"status": "agreed", "dialect": "vllm"})
    );
    drop(mock);

    let mock = Mock::start_with(0.0, 0.0, &["--tokenize-dialect", "none"]);
    let (r, log) = random_run(&mock, &dir);
    assert_eq!(r["server_alignment"]["status"], "unavailable");
    assert!(
        r["server_alignment"]["reason"]
            .as_str()
            .unwrap()
            .contains("404"),
        "{r}"
    );
    assert!(log.contains("server-side alignment skipped"), "{log}");
    assert!(
        log.contains(&mock.url),
        "the warning names the server: {log}"
    );
    assert_eq!(r["completed"], PROMPTS);
    drop(mock);

    // Opted out: no request to /tokenize, nothing recorded.
    let mock = Mock::start_with(0.0, 0.0, &["--count-prompt-tokens"]);
    let out = bench(
        &mock,
        &dir,
        &["--num-prompts", "2", "--skip-server-alignment"],
        &[],
    );
    assert!(out.status.success());
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("r.json")).unwrap()).unwrap();
    assert!(r["server_alignment"].is_null(), "{r}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn hub_id_from_the_cache_is_reported_with_its_revision_and_hash() {
    let dir = temp_dir("hub");
    let commit = "00112233445566778899aabbccddeeff00112233";
    let repo = dir.join("hf/hub/models--acme--tiny");
    std::fs::create_dir_all(repo.join("refs")).unwrap();
    std::fs::create_dir_all(repo.join("snapshots").join(commit)).unwrap();
    std::fs::write(repo.join("refs/main"), commit).unwrap();
    std::fs::write(
        repo.join("snapshots").join(commit).join("tokenizer.json"),
        TOKENIZER,
    )
    .unwrap();
    let mock = Mock::start(0.0, 0.0);
    let hf_home = dir.join("hf");
    let home = hf_home.to_str().unwrap();
    // --model as a hub id doubles as the tokenizer, as in vLLM.
    for flags in [
        &["--tokenizer", "acme/tiny"][..],
        &["--model", "acme/tiny", "--served-model-name", "m"][..],
    ] {
        let mut args = vec!["--num-prompts", "2", "--random-input-len", "16"];
        args.extend_from_slice(flags);
        let out = bench(&mock, &dir, &args, &[("HF_HOME", home)]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        assert!(!stderr.contains("embedded default"), "{stderr}");
        let r: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("r.json")).unwrap()).unwrap();
        assert_eq!(r["tokenizer_id"], "acme/tiny");
        assert_eq!(r["tokenizer_revision"], commit);
        assert_eq!(r["skip_tokenizer_init"], false);
        assert_eq!(r["tokenizer_sha256"].as_str().map(str::len), Some(64));
    }
    // Nothing cached for another id, hub off: a clear error before anything is sent.
    let out = bench(
        &mock,
        &dir,
        &["--num-prompts", "2", "--tokenizer", "acme/absent"],
        &[("HF_HOME", home)],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("HF_HUB_OFFLINE") && stderr.contains("acme/absent"),
        "{stderr}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn skip_tokenizer_init_counts_output_from_usage_and_refuses_id_datasets() {
    let dir = temp_dir("skip");
    let mock = Mock::start(0.0, 0.0);
    let path = format!("{DATA}/custom-prompts.jsonl");
    let out = bench(
        &mock,
        &dir,
        &[
            "--skip-tokenizer-init",
            "--dataset-name",
            "custom",
            "--dataset-path",
            &path,
            "--num-prompts",
            "4",
            "--save-detailed",
        ],
        &[],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("counted from the server's usage"),
        "{stdout}"
    );
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("r.json")).unwrap()).unwrap();
    assert_eq!(r["skip_tokenizer_init"], true);
    assert_eq!(r["completed"], 4);
    let lens: Vec<u64> = r["output_lens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    assert!(lens.iter().all(|&n| n > 1), "usage counts, not 1: {lens:?}");
    assert_eq!(r["total_output_tokens"], lens.iter().sum::<u64>());

    let out = bench(
        &mock,
        &dir,
        &["--skip-tokenizer-init", "--num-prompts", "2"],
        &[],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("--dataset-name random") && stderr.contains("needs a tokenizer"),
        "{stderr}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

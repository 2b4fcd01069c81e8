//! `servebench compare`: result files side by side, with deltas against the first and marks
//! that know which way is better; JSON-lines files count one result per line.

use std::path::Path;
use std::process::{Command, Output};

mod common;

use common::temp_dir;

use common::BIN;

fn compare(files: &[&Path]) -> Output {
    Command::new(BIN)
        .arg("compare")
        .args(files)
        .output()
        .expect("run servebench compare")
}

/// The cells of the table row that starts with `label`.
fn row(table: &str, label: &str) -> Vec<String> {
    let line = table
        .lines()
        .find(|l| l.starts_with(label))
        .unwrap_or_else(|| panic!("no row '{label}' in:\n{table}"));
    line[label.len()..]
        .split("  ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(String::from)
        .collect()
}

fn result(throughput: f64, ttft: f64, failed: u64) -> String {
    format!(
        r#"{{"backend": "vllm", "model_id": "m", "request_rate": "inf", "completed": 100, "failed": {failed}, "duration": 10.0, "request_throughput": {throughput}, "request_goodput": null, "output_throughput": {}, "mean_ttft_ms": {ttft}, "median_ttft_ms": {ttft}, "p99_ttft_ms": {}, "mean_e2el_ms": 200.0}}"#,
        throughput * 10.0,
        ttft * 2.0
    )
}

#[test]
fn deltas_and_marks_against_the_first_file() {
    let dir = temp_dir("two");
    let (a, b) = (dir.join("a.json"), dir.join("b.json"));
    std::fs::write(&a, result(10.0, 50.0, 0)).unwrap();
    std::fs::write(&b, result(12.5, 40.0, 3)).unwrap();
    let out = compare(&[&a, &b]);
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{table}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        row(&table, "Request throughput (req/s)"),
        ["10", "12.50", "+25.0% better"]
    );
    assert_eq!(row(&table, "Mean TTFT (ms)"), ["50", "40", "-20.0% better"]);
    assert_eq!(row(&table, "P99 TTFT (ms)"), ["100", "80", "-20.0% better"]);
    assert_eq!(
        row(&table, "Failed requests"),
        ["0", "3", "up from 0 worse"]
    );
    assert_eq!(row(&table, "Benchmark duration (s)"), ["10", "10", "+0.0%"]);
    assert!(
        !table.contains("goodput"),
        "null in every file: no row\n{table}"
    );
    assert!(!table.contains("TPOT"), "no file has TPOT\n{table}");
    assert!(table.contains(&format!("A = {}", a.display())), "{table}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn json_lines_count_one_result_per_line_with_python_infinity() {
    let dir = temp_dir("jsonl");
    let lines = dir.join("runs.jsonl");
    // SGLang's JSON lines: bare Infinity, its own E2E latency and total throughput keys.
    let sglang = |tput: f64, e2e: f64| {
        format!(
            r#"{{"backend": "sglang", "request_rate": Infinity, "completed": 50, "request_throughput": {tput}, "total_throughput": {}, "mean_e2e_latency_ms": {e2e}}}"#,
            tput * 100.0
        )
    };
    std::fs::write(
        &lines,
        format!(
            "{}\n{}\n{}\n",
            sglang(4.0, 100.0),
            sglang(2.0, 150.0),
            sglang(5.0, 90.0)
        ),
    )
    .unwrap();
    let out = compare(&[&lines]);
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        row(&table, "Mean E2EL (ms)"),
        ["100", "150", "+50.0% worse", "90", "-10.0% better"]
    );
    assert_eq!(
        row(&table, "Total token throughput (tok/s)"),
        ["400", "200", "-50.0% worse", "500", "+25.0% better"]
    );
    assert!(
        table.contains("runs.jsonl#3") && table.contains("rate inf"),
        "{table}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_inputs_are_clear_errors() {
    let dir = temp_dir("bad");
    let good = dir.join("good.json");
    std::fs::write(&good, result(1.0, 1.0, 0)).unwrap();
    let broken = dir.join("broken.json");
    std::fs::write(&broken, "{\"completed\": 1,").unwrap();
    let array = dir.join("array.json");
    std::fs::write(&array, "[1, 2]").unwrap();
    let missing = dir.join("missing.json");
    for (files, says) in [
        (vec![&good, &missing], "missing.json"),
        (vec![&good, &broken], "broken.json is not a JSON result"),
        (vec![&good, &array], "not a JSON object"),
        (vec![&good], "at least two results"),
    ] {
        let files: Vec<&Path> = files.iter().map(|p| p.as_path()).collect();
        let out = compare(&files);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{files:?} should fail");
        assert!(stderr.contains(says), "{files:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

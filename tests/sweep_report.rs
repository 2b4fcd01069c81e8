//! The sweep page end to end: `servebench report` on a sweep summary file writes the sweep
//! page (not the run page), and headless Chromium renders it with every chart drawn, the SLO
//! line, the search's answer and one table row per point (tests/common/browser.rs).
//!
//! The summaries are built here from a simple queueing shape: a server of fixed capacity whose
//! latency stays flat at low load and climbs past a knee, searched as `servebench sweep` would.

use std::process::Command;

use serde_json::{json, Map, Value};

mod common;

use common::browser::{check_sweep_page, full_page_screenshot};
use common::{temp_dir, BIN};

/// Requests per second the modelled server completes at most.
const CAPACITY: f64 = 72.0;
const OUTPUT_LEN: f64 = 128.0;
const SLO_TTFT_P99_MS: f64 = 500.0;

/// One point of the model at an offered rate (None: unlimited).
fn point(index: usize, rate: Option<f64>, with_slo: bool) -> Value {
    let offered = rate.unwrap_or(f64::INFINITY);
    // Utilisation; an overloaded server queues without bound, and the sweep stops it early.
    let rho = offered / CAPACITY;
    let saturated = rho >= 1.0;
    let wait = if saturated { 60.0 } else { rho / (1.0 - rho) };
    let ttft = |tail: f64| 45.0 * tail + 25.0 * tail * wait;
    let tpot = |tail: f64| (11.0 + 7.0 * rho.min(1.2)) * tail;
    let achieved = offered.min(CAPACITY * 0.985);
    let p99_ttft = ttft(2.2);
    let meets = p99_ttft <= SLO_TTFT_P99_MS;
    let attainment: f64 = if meets {
        0.998
    } else {
        (SLO_TTFT_P99_MS / p99_ttft).min(0.9)
    };
    let stats = |f: &dyn Fn(f64) -> f64| json!({"mean": f(1.1), "p50": f(1.0), "p90": f(1.6), "p99": f(2.2)});
    let label = match rate {
        Some(r) => format!("request_rate={r}"),
        None => "request_rate=inf".into(),
    };
    let completed = if saturated { 410.0 } else { 30.0 * achieved };
    let null_unless = |v: Value| if with_slo { v } else { Value::Null };
    json!({
        "index": index,
        "label": label,
        "params": {"request_rate": rate, "max_concurrency": null},
        "x": rate,
        "result_file": format!("point-{index:03}-{label}.json"),
        "completed": completed.round(),
        "failed": 0,
        "duration": completed / achieved,
        "request_throughput": achieved,
        "output_throughput": achieved * OUTPUT_LEN,
        "total_token_throughput": achieved * (OUTPUT_LEN + 512.0),
        "request_goodput": null_unless(json!(achieved * attainment)),
        "slo_attainment": null_unless(json!(attainment)),
        "saturated": saturated,
        "partial": saturated,
        "meets_slo": null_unless(json!(meets)),
        "slo_values": if with_slo { json!({"p99_ttft_ms": p99_ttft}) } else { json!({}) },
        "latency_ms": {
            "ttft": stats(&ttft),
            "tpot": stats(&tpot),
            "itl": stats(&|t| tpot(t) * 0.95),
            "e2el": stats(&|t| ttft(t) + (OUTPUT_LEN - 1.0) * tpot(t)),
        },
    })
}

fn summary(mode: &str, points: Vec<Value>, slo: Value) -> Map<String, Value> {
    json!({
        "servebench_sweep": 1,
        "date": "20261123-041500",
        "backend": "openai",
        "model_id": "mock",
        "base_url": "http://127.0.0.1:8000",
        "variable": "request_rate",
        "mode": mode,
        "slo": slo,
        "points": points,
    })
    .as_object()
    .cloned()
    .unwrap()
}

/// A search for the highest rate meeting p99 TTFT ≤ 500 ms to 5%: doubling until a point
/// fails, then halving the bracket, in the order it would run.
fn search_summary() -> Map<String, Value> {
    let passes = |r: f64| point(0, Some(r), true)["meets_slo"] == Value::Bool(true);
    let mut rates = vec![10.0];
    while passes(*rates.last().unwrap()) {
        rates.push(rates.last().unwrap() * 2.0);
    }
    let (mut lo, mut hi) = (rates[rates.len() - 2], rates[rates.len() - 1]);
    while (hi - lo) / lo > 0.05 {
        let mid = (lo + hi) / 2.0;
        rates.push(mid);
        if passes(mid) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    let points = rates
        .iter()
        .enumerate()
        .map(|(i, r)| point(i, Some(*r), true))
        .collect();
    let achieved_at = |r: f64| r.min(CAPACITY * 0.985);
    let slo = json!({
        "constraints": [{"metric": "ttft", "stat": "p99", "limit_ms": SLO_TTFT_P99_MS,
                         "key": "p99_ttft_ms"}],
        "precision": 0.05,
        "answer": {
            "status": "found",
            "max_passing": lo,
            "min_failing": hi,
            "max_passing_throughput": achieved_at(lo),
            "text": format!("highest request rate meeting the SLO: {lo} req/s (fails at {hi})"),
        },
    });
    summary("search", points, slo)
}

/// A list sweep without an SLO, ending with an unlimited rate (x null).
fn list_summary() -> Map<String, Value> {
    let rates = [Some(20.0), Some(40.0), Some(60.0), Some(70.0), None];
    let points = rates
        .iter()
        .enumerate()
        .map(|(i, r)| point(i, *r, false))
        .collect();
    summary("list", points, Value::Null)
}

fn report(file: &std::path::Path, extra: &[&str]) -> String {
    let out = Command::new(BIN)
        .arg("report")
        .arg(file)
        .args(extra)
        .output()
        .expect("run servebench report");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stderr}");
    stderr
}

#[test]
fn report_renders_a_sweep_summary_as_the_sweep_page() {
    let dir = temp_dir("sweep-report");
    let search = search_summary();
    // The model does what the page must show: a bracket with a failing point past the knee
    // and a saturated one.
    let pts = search["points"].as_array().unwrap();
    assert!(pts.iter().any(|p| p["meets_slo"] == false));
    assert!(pts.iter().any(|p| p["saturated"] == true));
    assert!(pts.len() >= 6, "{} points", pts.len());

    let file = dir.join("summary.json");
    std::fs::write(&file, serde_json::to_string_pretty(&search).unwrap()).unwrap();
    let stderr = report(&file, &[]);
    assert!(stderr.contains("sweep report saved to"), "{stderr}");
    assert!(!stderr.contains("WARNING"), "{stderr}");
    // Default output: beside the summary, .html.
    let html = std::fs::read_to_string(dir.join("summary.html")).expect("summary.html");
    assert!(
        !html.contains("id=\"ttft-cdf\""),
        "the run page, not the sweep page"
    );
    let shown = dir.join("search");
    std::fs::create_dir_all(&shown).unwrap();
    check_sweep_page(&shown, &html, &search);
    // SERVEBENCH_SWEEP_SCREENSHOT=docs/img/sweep-report.png remakes the docs' screenshot.
    if let Ok(png) = std::env::var("SERVEBENCH_SWEEP_SCREENSHOT") {
        let size = full_page_screenshot(&shown, &html, std::path::Path::new(&png));
        eprintln!("sweep page screenshot {size:?} written to {png}");
    }

    let list = list_summary();
    let file = dir.join("list.json");
    std::fs::write(&file, serde_json::to_string(&list).unwrap()).unwrap();
    let out = dir.join("elsewhere/list-page.html");
    report(&file, &["-o", out.to_str().unwrap()]);
    let html = std::fs::read_to_string(&out).expect("the -o page");
    assert!(
        !html.contains("class=\"rule"),
        "no SLO: no limit or answer lines"
    );
    assert!(html.contains("<td class=\"num\">inf</td>"));
    let shown = dir.join("list");
    std::fs::create_dir_all(&shown).unwrap();
    check_sweep_page(&shown, &html, &list);

    // A sweep that has not finished a point yet.
    let empty = summary("search", vec![], Value::Null);
    let file = dir.join("empty.json");
    std::fs::write(&file, serde_json::to_string(&empty).unwrap()).unwrap();
    report(&file, &[]);
    let html = std::fs::read_to_string(dir.join("empty.html")).unwrap();
    check_sweep_page(&dir, &html, &empty);

    let _ = std::fs::remove_dir_all(&dir);
}

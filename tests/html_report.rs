//! The HTML report end to end: a real run against the real mock writes the page, `servebench
//! report` makes the same page from the saved file, and headless Chromium renders it (a
//! screenshot of the right size that is not blank, and plots with drawn data in its DOM).
//!
//! Without Chromium the browser part installs it or is skipped loudly (tests/common/browser.rs),
//! and the page is then checked structurally only.

use std::path::Path;
use std::process::{Command, Output};

mod common;

use common::temp_dir;

use common::browser::{assert_screenshot_not_blank, browser_or_skip, plot, probe};
use common::{Mock, BIN};

const PLOTS: [&str; 7] = [
    "ttft-cdf",
    "e2el-cdf",
    "itl-hist",
    "output-throughput",
    "request-throughput",
    "concurrency",
    "send-lag",
];

fn ok(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "stdout:\n{}\nstderr:\n{stderr}",
        String::from_utf8_lossy(&out.stdout)
    );
    stderr
}

fn bench(mock: &Mock, dir: &Path, extra: &[&str]) -> Output {
    Command::new(BIN)
        .args([
            "--base-url",
            &mock.url,
            "--disable-tqdm",
            "--num-shards",
            "1",
        ])
        .args(["--num-prompts", "200", "--request-rate", "200"])
        .args(["--random-input-len", "32", "--random-output-len", "12"])
        .args(["--max-concurrency", "32", "--save-result"])
        .args(["--result-dir", dir.to_str().unwrap()])
        .args(extra)
        .output()
        .expect("run servebench")
}

/// The page with its dates (`YYYYMMDD-HHMMSS`) blanked: the run and `report` stamp their own.
fn without_dates(html: &str) -> String {
    let b = html.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let is_date = b.len() - i >= 15
            && b[i..i + 8].iter().all(u8::is_ascii_digit)
            && b[i + 8] == b'-'
            && b[i + 9..i + 15].iter().all(u8::is_ascii_digit);
        if is_date {
            out.extend_from_slice(b"DATE");
            i += 15;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

/// Checks that need no browser: every plot present and drawn with data, the summary table,
/// nothing that would reach the network.
fn check_structure(html: &str) {
    assert!(html.starts_with("<!DOCTYPE html>"));
    for id in PLOTS {
        let svg = plot(html, id);
        assert!(!svg.contains("no data"), "plot {id} has no data");
        let series = svg.split("class=\"series\"").skip(1).collect::<String>();
        let marks = ["<path", "<circle", "<rect"]
            .iter()
            .map(|m| series.matches(m).count())
            .sum::<usize>();
        assert!(marks > 0, "plot {id} draws nothing");
        assert!(svg.contains("<title>"), "plot {id} has no hover titles");
    }
    for key in [
        "completed",
        "request_throughput",
        "mean_ttft_ms",
        "p99_itl_ms",
    ] {
        assert!(html.contains(&format!("<td>{key}</td>")), "no {key} row");
    }
    assert!(!html.contains("<script") && !html.contains(" src=") && !html.contains("href="));
}

#[test]
fn run_writes_the_page_and_report_remakes_it_from_the_file() {
    let mock = Mock::start(5.0, 1.0);
    let dir = temp_dir("run");

    // Without --save-detailed the page is still drawn from the full per-request data, and
    // the saved file keeps vLLM's shape (no per-request arrays of servebench's own).
    let page = dir.join("plain-run.html");
    let stderr = ok(&bench(
        &mock,
        &dir,
        &[
            "--result-filename",
            "plain.json",
            "--html-report",
            page.to_str().unwrap(),
        ],
    ));
    assert!(stderr.contains("HTML report saved to"), "{stderr}");
    let html = std::fs::read_to_string(&page).expect("the page");
    check_structure(&html);
    let plain: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("plain.json")).unwrap()).unwrap();
    assert!(plain.get("servebench_arrivals").is_none());
    assert!(plain.get("ttfts").is_none());

    // With --save-detailed, `servebench report` makes the same page from the file.
    let page = dir.join("run.html");
    ok(&bench(
        &mock,
        &dir,
        &[
            "--save-detailed",
            "--result-filename",
            "r.json",
            "--html-report",
            page.to_str().unwrap(),
        ],
    ));
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("r.json")).unwrap()).unwrap();
    let arrivals = saved["servebench_arrivals"].as_array().expect("arrivals");
    let starts = saved["start_times"].as_array().unwrap();
    assert_eq!(arrivals.len(), 200);
    for (a, s) in arrivals.iter().zip(starts) {
        let lag = s.as_f64().unwrap() - a.as_f64().unwrap();
        assert!((-1e-6..5.0).contains(&lag), "send lag {lag} s");
    }
    let from_run = std::fs::read_to_string(&page).unwrap();
    let remade = dir.join("remade.html");
    let stderr = ok(&Command::new(BIN)
        .args(["report", dir.join("r.json").to_str().unwrap(), "-o"])
        .arg(&remade)
        .output()
        .unwrap());
    assert!(!stderr.contains("WARNING"), "{stderr}");
    let from_file = std::fs::read_to_string(&remade).unwrap();
    let (a, b) = (without_dates(&from_run), without_dates(&from_file));
    if let Some(at) = a.bytes().zip(b.bytes()).position(|(x, y)| x != y) {
        let around = |s: &str| {
            s.get(at.saturating_sub(200)..(at + 200).min(s.len()))
                .map(String::from)
        };
        panic!(
            "the pages differ at byte {at}:\nrun:  {:?}\nfile: {:?}",
            around(&a),
            around(&b)
        );
    }
    assert_eq!(a.len(), b.len(), "one page is a prefix of the other");
    check_structure(&from_file);

    // A summary-only file: a warning, and a page whose plots say they have no data.
    let out = Command::new(BIN)
        .args(["report", dir.join("plain.json").to_str().unwrap()])
        .output()
        .unwrap();
    let stderr = ok(&out);
    assert!(stderr.contains("--save-detailed"), "{stderr}");
    let summary_only = std::fs::read_to_string(dir.join("plain.html")).unwrap();
    assert!(summary_only.contains("no data"));
    assert!(summary_only.contains("<td>completed</td>"));

    // A missing file is one clear error.
    let out = Command::new(BIN)
        .args(["report", dir.join("nope.json").to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("nope.json"));

    render_in_browser(&dir, &from_file);
    let _ = std::fs::remove_dir_all(&dir);
}

fn render_in_browser(dir: &Path, html: &str) {
    let Some(browser) = browser_or_skip("html_report") else {
        return;
    };
    assert_screenshot_not_blank(&browser, dir, html);

    // The DOM after layout: a probe appended to a copy of the page measures what the browser
    // drew (the page itself has no script).
    let probe_js = r#"
const plots = [...document.querySelectorAll('svg.plot')].map(svg => {
  const series = svg.querySelectorAll('g.series');
  let marks = 0, length = 0;
  series.forEach(g => {
    g.querySelectorAll('circle,rect').forEach(e => { const b = e.getBBox(); if (b.width > 0 || b.height > 0) marks++; });
    g.querySelectorAll('path').forEach(p => { length += p.getTotalLength(); });
  });
  const box = svg.getBoundingClientRect();
  return { id: svg.id, width: box.width, height: box.height, series: series.length, marks, length,
           title: svg.querySelector('.chart-title')?.textContent ?? '',
           ticks: svg.querySelectorAll('text.tick').length };
});
probe.textContent = JSON.stringify(plots);
"#;
    let plots = probe(&browser, dir, html, probe_js);
    let plots = plots.as_array().expect("a list of plots");
    let ids: Vec<&str> = plots.iter().map(|p| p["id"].as_str().unwrap()).collect();
    assert_eq!(ids, PLOTS);
    for p in plots {
        let id = &p["id"];
        assert!(
            p["width"].as_f64().unwrap() > 400.0,
            "{id} laid out narrow: {p}"
        );
        assert!(p["height"].as_f64().unwrap() > 200.0, "{id}: {p}");
        assert!(p["series"].as_u64().unwrap() >= 1, "{id}: {p}");
        let drawn = p["marks"].as_u64().unwrap() as f64 + p["length"].as_f64().unwrap();
        assert!(drawn > 0.0, "{id} drew no data: {p}");
        assert!(!p["title"].as_str().unwrap().is_empty(), "{id}: {p}");
        assert!(
            p["ticks"].as_u64().unwrap() >= 4,
            "{id} has no axis ticks: {p}"
        );
    }
}

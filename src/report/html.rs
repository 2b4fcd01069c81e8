//! `--html-report` and `servebench report`: one self-contained HTML page (inline CSS and SVG,
//! no script, nothing fetched) with the run's plots and every scalar of its result object.
//!
//! The page is drawn from the result object alone (the `--save-detailed` map), so a page made
//! after the run from a saved file is the same page the run would have written.

pub(crate) mod svg;

use std::fmt::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use serde_json::{Map, Value};

use svg::{esc, nice_step, Chart, Series, Shape, PALETTE};

/// Planned arrival per request (seconds, the epoch of `start_times`): servebench's own key.
pub const ARRIVALS_KEY: &str = "servebench_arrivals";

/// Most points a line is drawn with; more would only slow the browser down.
const MAX_LINE_POINTS: usize = 1500;
/// Most single points drawn as circles before a scatter becomes per-interval lines.
const MAX_SCATTER_POINTS: usize = 3000;

/// The per-request columns of a result object, as the plots need them.
struct Columns {
    ok: Vec<bool>,
    ttft_ms: Vec<f64>,
    e2el_ms: Vec<f64>,
    queue_ms: Vec<f64>,
    itls_ms: Vec<Vec<f64>>,
    output_lens: Vec<f64>,
    /// Seconds from the run's first planned arrival (or first start).
    start_s: Vec<f64>,
    arrival_s: Vec<f64>,
}

impl Columns {
    fn from(m: &Map<String, Value>) -> Columns {
        let nums = |k: &str| -> Vec<f64> {
            m.get(k)
                .and_then(Value::as_array)
                .map(|a| a.iter().map(|v| v.as_f64().unwrap_or(f64::NAN)).collect())
                .unwrap_or_default()
        };
        let ms = |k: &str| nums(k).into_iter().map(|s| s * 1e3).collect::<Vec<_>>();
        let itls_ms = m
            .get("itls")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .map(|r| {
                        r.as_array()
                            .map(|g| {
                                g.iter()
                                    .filter_map(Value::as_f64)
                                    .map(|s| s * 1e3)
                                    .collect()
                            })
                            .unwrap_or_default()
                    })
                    .collect()
            })
            .unwrap_or_default();
        let e2el_ms = ms("latencies");
        // A failed request has an error text; files without errors count every request with
        // a latency as a success.
        let ok = match m.get("errors").and_then(Value::as_array) {
            Some(errs) => errs
                .iter()
                .map(|e| e.as_str().is_some_and(str::is_empty))
                .collect(),
            None => e2el_ms.iter().map(|l| *l > 0.0).collect(),
        };
        let starts = nums("start_times");
        let arrivals = nums(ARRIVALS_KEY);
        let origin = starts
            .iter()
            .chain(arrivals.iter())
            .copied()
            .filter(|t| t.is_finite())
            .fold(f64::INFINITY, f64::min);
        let rel = |v: Vec<f64>| v.into_iter().map(|t| t - origin).collect::<Vec<_>>();
        Columns {
            ok,
            ttft_ms: ms("ttfts"),
            e2el_ms,
            queue_ms: ms("queue_times"),
            itls_ms,
            output_lens: nums("output_lens"),
            start_s: rel(starts),
            arrival_s: rel(arrivals),
        }
    }

    fn ok(&self, i: usize) -> bool {
        self.ok.get(i).copied().unwrap_or(false)
    }

    /// Values of `col` for successful requests.
    fn ok_values(&self, col: &[f64]) -> Vec<f64> {
        col.iter()
            .enumerate()
            .filter(|&(i, v)| self.ok(i) && v.is_finite())
            .map(|(_, v)| *v)
            .collect()
    }

    /// Send lag per request in µs, against the planned arrival when the file has it (else
    /// the client queue time, which servebench measures from the same planned instant).
    fn send_lag(&self) -> Vec<(f64, f64)> {
        if !self.arrival_s.is_empty() && self.arrival_s.len() == self.start_s.len() {
            self.arrival_s
                .iter()
                .zip(&self.start_s)
                .map(|(a, s)| (*a, (s - a) * 1e6))
                .collect()
        } else if self.queue_ms.len() == self.start_s.len() {
            self.start_s
                .iter()
                .zip(&self.queue_ms)
                .map(|(s, q)| (s - q / 1e3, q * 1e3))
                .collect()
        } else {
            Vec::new()
        }
    }
}

/// The whole page.
pub fn render(result: &Map<String, Value>) -> String {
    let c = Columns::from(result);
    let text = |k: &str| result.get(k).map(scalar_text).unwrap_or_default();
    let title = format!(
        "servebench: {} on {} ({})",
        text("model_id"),
        text("backend"),
        text("date")
    );
    let mut o = String::with_capacity(256 * 1024);
    let _ = write!(
        o,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{t}</title><style>{CSS}</style></head><body><h1>{t}</h1>",
        t = esc(&title)
    );
    o.push_str(&glance(result, &c));
    let (bucket_s, buckets) = time_buckets(&c);
    let charts = [
        (
            cdf_chart("ttft-cdf", "TTFT distribution", "TTFT (ms)", &c, &c.ttft_ms),
            "Time to first token of each successful request; the second line adds the time \
             it waited past its planned send (the coordinated-omission-free view).",
        ),
        (
            cdf_chart("e2el-cdf", "E2EL distribution", "E2EL (ms)", &c, &c.e2el_ms),
            "End-to-end latency of each successful request, as measured and from its \
             planned send.",
        ),
        (
            itl_histogram(&c),
            "Gaps between consecutive streamed events (vLLM's ITL: one sample per event).",
        ),
        (
            output_throughput(&c, bucket_s, buckets),
            "Output tokens per second, in buckets; a request's tokens are spread over its \
             streamed events.",
        ),
        (
            request_throughput(&c, bucket_s, buckets),
            "Successful requests finished per second, and requests sent per second.",
        ),
        (
            concurrency(&c),
            "Requests in flight (sent, not yet finished) over time.",
        ),
        (
            send_lag(&c, bucket_s, buckets),
            "Actual send minus planned send per request: how well the client kept its \
             schedule. Latencies include this delay only in the planned-send lines.",
        ),
    ];
    o.push_str("<section class=\"plots\">");
    for (chart, caption) in charts {
        let _ = write!(
            o,
            "<figure>{}<figcaption>{}</figcaption></figure>",
            chart.render(),
            esc(caption)
        );
    }
    o.push_str("</section>");
    o.push_str(&summary_table(result));
    o.push_str(
        "<footer>Written by servebench. Self-contained: no scripts, nothing fetched.</footer>\
         </body></html>\n",
    );
    o
}

pub(crate) const CSS: &str =
    "body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;background:#fff}\
h1{font-size:20px;margin:0 0 12px}h2{font-size:16px;margin:24px 0 8px}\
.glance{display:flex;flex-wrap:wrap;gap:8px 24px;margin:0 0 16px;padding:0}\
.glance li{list-style:none}.glance b{font-variant-numeric:tabular-nums}\
.plots{display:grid;grid-template-columns:repeat(auto-fill,minmax(560px,1fr));gap:16px}\
figure{margin:0;border:1px solid #ddd;border-radius:6px;padding:8px}\
figcaption{color:#555;font-size:12px;margin-top:4px}\
svg.plot{width:100%;height:auto;display:block;font-size:12px}\
.chart-title{font-weight:600;font-size:14px}.grid line{stroke:#eee}\
.axis line{stroke:#444}.tick{fill:#444}.axis-label{fill:#222}.no-data{fill:#999;font-size:16px}\
table{border-collapse:collapse;font-variant-numeric:tabular-nums}\
td,th{border-bottom:1px solid #eee;padding:3px 12px;text-align:left}td.num{text-align:right}\
footer{margin-top:24px;color:#888;font-size:12px}";

/// The handful of figures a reader looks for first.
fn glance(m: &Map<String, Value>, c: &Columns) -> String {
    let mut items: Vec<(String, String)> = [
        ("completed", "Completed", ""),
        ("failed", "Failed", ""),
        ("duration", "Duration", " s"),
        ("request_throughput", "Requests/s", ""),
        ("output_throughput", "Output tok/s", ""),
        ("mean_ttft_ms", "Mean TTFT", " ms"),
        ("p99_ttft_ms", "P99 TTFT", " ms"),
        ("mean_itl_ms", "Mean ITL", " ms"),
        ("mean_e2el_ms", "Mean E2EL", " ms"),
    ]
    .into_iter()
    .filter_map(|(k, label, unit)| {
        m.get(k)
            .filter(|v| !v.is_null())
            .map(|v| (label.to_string(), format!("{}{unit}", scalar_text(v))))
    })
    .collect();
    let mut lag: Vec<f64> = c
        .send_lag()
        .into_iter()
        .map(|p| p.1)
        .filter(|v| v.is_finite())
        .collect();
    if !lag.is_empty() {
        lag.sort_by(f64::total_cmp);
        items.push((
            "Send lag p50 / p99 / max".into(),
            format!(
                "{} / {} / {} µs",
                fmt_num(percentile(&lag, 50.0)),
                fmt_num(percentile(&lag, 99.0)),
                fmt_num(lag[lag.len() - 1])
            ),
        ));
    }
    let mut o = String::from("<ul class=\"glance\">");
    for (k, v) in items {
        let _ = write!(o, "<li>{}: <b>{}</b></li>", esc(&k), esc(&v));
    }
    o.push_str("</ul>");
    o
}

/// Every scalar key of the result, in the file's order; arrays are only counted.
fn summary_table(m: &Map<String, Value>) -> String {
    let mut o = String::from(
        "<h2>Summary</h2><table id=\"summary\"><thead><tr><th>key</th><th>value</th></tr></thead><tbody>",
    );
    let mut arrays = Vec::new();
    for (k, v) in m {
        match v {
            Value::Array(a) => arrays.push(format!("{k} ({})", a.len())),
            Value::Object(_) => arrays.push(k.clone()),
            _ => {
                let class = if v.is_number() { " class=\"num\"" } else { "" };
                let _ = write!(
                    o,
                    "<tr><td>{}</td><td{class} title=\"{}\">{}</td></tr>",
                    esc(k),
                    esc(&v.to_string()),
                    esc(&scalar_text(v))
                );
            }
        }
    }
    o.push_str("</tbody></table>");
    if !arrays.is_empty() {
        let _ = write!(
            o,
            "<p class=\"arrays\">Per-request data: {}</p>",
            esc(&arrays.join(", "))
        );
    }
    o
}

fn scalar_text(v: &Value) -> String {
    match v {
        Value::Null => "None".into(),
        Value::String(s) => s.clone(),
        Value::Number(n) if n.is_f64() => n.as_f64().map(fmt_num).unwrap_or_default(),
        other => other.to_string(),
    }
}

/// A float with enough digits to read, not all seventeen.
pub(crate) fn fmt_num(v: f64) -> String {
    if !v.is_finite() {
        return v.to_string();
    }
    let a = v.abs();
    if a == 0.0 || a >= 1e6 {
        format!("{v:.0}")
    } else if a >= 100.0 {
        format!("{v:.1}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.4}")
    }
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Evenly spaced picks of `n` indices, always keeping the last.
fn thin(n: usize, max: usize) -> Vec<usize> {
    if n <= max {
        return (0..n).collect();
    }
    let mut idx: Vec<usize> = (0..max).map(|k| k * (n - 1) / (max - 1)).collect();
    idx.dedup();
    idx
}

fn cdf_series(name: &str, color: &'static str, mut v: Vec<f64>, unit: &str) -> Series {
    let mut s = Series::new(name, color, Shape::Step);
    if v.is_empty() {
        return s;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len() as f64;
    s.points = thin(v.len(), MAX_LINE_POINTS)
        .into_iter()
        .map(|i| (v[i], (i + 1) as f64 / n))
        .collect();
    s.points.insert(0, (v[0], 0.0));
    for p in [50.0, 90.0, 99.0, 99.9] {
        if p > 99.0 && v.len() < 1000 {
            continue;
        }
        let x = percentile(&v, p);
        s.marks.push((
            (x, p / 100.0),
            format!("p{p} {name}: {} {unit}", fmt_num(x)),
        ));
    }
    s
}

fn cdf_chart(id: &str, title: &str, x_label: &str, c: &Columns, col_ms: &[f64]) -> Chart {
    let measured = c.ok_values(col_ms);
    let mut series = vec![cdf_series(
        title_metric(x_label),
        PALETTE[0],
        measured,
        "ms",
    )];
    if c.queue_ms.len() == col_ms.len() && c.queue_ms.iter().any(|q| *q > 0.0) {
        let planned: Vec<f64> = col_ms.iter().zip(&c.queue_ms).map(|(v, q)| v + q).collect();
        let name = format!("{} from planned send", title_metric(x_label));
        series.push(cdf_series(&name, PALETTE[1], c.ok_values(&planned), "ms"));
    }
    Chart {
        id: id.into(),
        title: title.into(),
        x_label: x_label.into(),
        y_label: "fraction of requests".into(),
        series,
        y_from_zero: true,
        y_max: Some(1.0),
    }
}

/// "TTFT (ms)" → "TTFT".
fn title_metric(label: &str) -> &str {
    label.split(" (").next().unwrap_or(label)
}

fn itl_histogram(c: &Columns) -> Chart {
    let mut gaps: Vec<f64> = c
        .itls_ms
        .iter()
        .enumerate()
        .filter(|(i, _)| c.ok(*i))
        .flat_map(|(_, g)| g.iter().copied())
        .filter(|g| g.is_finite())
        .collect();
    gaps.sort_by(f64::total_cmp);
    let mut s = Series::new("ITL", PALETTE[0], Shape::Bars { width: 1.0 });
    let mut x_label = "ITL (ms)".to_string();
    if let (Some(&lo), Some(&max)) = (gaps.first(), gaps.last()) {
        // A few stragglers would squeeze every other bar into one: the last bin holds all
        // gaps above the 99.5th percentile.
        let hi = percentile(&gaps, 99.5).max(lo);
        let width = nice_step((hi - lo) / 40.0).max(1e-6);
        let first = (lo / width).floor() * width;
        let nbins = (((hi - first) / width).floor() as usize + 1).min(200);
        let mut counts = vec![0u64; nbins];
        for g in &gaps {
            let b = ((g - first) / width).floor().max(0.0) as usize;
            counts[b.min(nbins - 1)] += 1;
        }
        s.shape = Shape::Bars { width };
        for (b, n) in counts.iter().enumerate() {
            let x0 = first + b as f64 * width;
            let range = if b + 1 == nbins && max >= x0 + width {
                format!("≥ {} ms (max {})", fmt_num(x0), fmt_num(max))
            } else {
                format!("{}–{} ms", fmt_num(x0), fmt_num(x0 + width))
            };
            s.points.push((x0, *n as f64));
            s.hover.push(format!("{range}: {n} gaps"));
        }
        if max > hi {
            x_label = format!(
                "ITL (ms); the last bar holds everything above {}",
                fmt_num(hi)
            );
        }
    }
    Chart {
        id: "itl-hist".into(),
        title: "ITL histogram".into(),
        x_label,
        y_label: "events".into(),
        series: vec![s],
        y_from_zero: true,
        y_max: None,
    }
}

/// A bucket width for the over-time plots (one second, as vLLM's peaks use, unless the run
/// is short or long enough to want finer or coarser ones) and the number of buckets.
fn time_buckets(c: &Columns) -> (f64, usize) {
    let end = c
        .start_s
        .iter()
        .zip(&c.e2el_ms)
        .map(|(s, l)| s + l / 1e3)
        .chain(c.arrival_s.iter().copied())
        .filter(|t| t.is_finite())
        .fold(0.0, f64::max);
    let width = if end >= 10.0 {
        nice_step(end / 300.0).max(1.0)
    } else {
        nice_step(end / 40.0).max(1e-3)
    };
    (width, (end / width).floor() as usize + 1)
}

fn bucket_of(t: f64, width: f64, n: usize) -> Option<usize> {
    (t.is_finite() && t >= 0.0).then(|| ((t / width) as usize).min(n - 1))
}

fn rate_series(name: &str, color: &'static str, counts: &[f64], width: f64) -> Series {
    let mut s = Series::new(name, color, Shape::Step);
    for (b, n) in counts.iter().enumerate() {
        s.points.push((b as f64 * width, n / width));
    }
    if let Some(&last) = counts.last() {
        s.points.push((counts.len() as f64 * width, last / width));
    }
    s
}

fn time_label(width: f64) -> String {
    format!("time since start (s); {width} s buckets")
}

fn output_throughput(c: &Columns, width: f64, n: usize) -> Chart {
    let mut tokens = vec![0.0; n];
    for (i, &start) in c.start_s.iter().enumerate() {
        let (Some(&ttft), Some(&out)) = (c.ttft_ms.get(i), c.output_lens.get(i)) else {
            continue;
        };
        if !c.ok(i) {
            continue;
        }
        let gaps = c.itls_ms.get(i).map(Vec::as_slice).unwrap_or_default();
        let per_event = out / (1 + gaps.len()) as f64;
        let mut t = start + ttft / 1e3;
        for gap in std::iter::once(&0.0).chain(gaps) {
            t += gap / 1e3;
            if let Some(b) = bucket_of(t, width, n) {
                tokens[b] += per_event;
            }
        }
    }
    let has = !c.start_s.is_empty() && !c.ttft_ms.is_empty();
    Chart {
        id: "output-throughput".into(),
        title: "Output throughput over time".into(),
        x_label: time_label(width),
        y_label: "output tokens/s".into(),
        series: if has {
            vec![rate_series("output tok/s", PALETTE[0], &tokens, width)]
        } else {
            vec![]
        },
        y_from_zero: true,
        y_max: None,
    }
}

fn request_throughput(c: &Columns, width: f64, n: usize) -> Chart {
    let (mut done, mut sent) = (vec![0.0; n], vec![0.0; n]);
    for (i, &start) in c.start_s.iter().enumerate() {
        if let Some(b) = bucket_of(start, width, n) {
            sent[b] += 1.0;
        }
        if let (true, Some(l)) = (c.ok(i), c.e2el_ms.get(i)) {
            if let Some(b) = bucket_of(start + l / 1e3, width, n) {
                done[b] += 1.0;
            }
        }
    }
    let series = if c.start_s.is_empty() {
        vec![]
    } else {
        vec![
            rate_series("completed req/s", PALETTE[0], &done, width),
            rate_series("sent req/s", PALETTE[2], &sent, width),
        ]
    };
    Chart {
        id: "request-throughput".into(),
        title: "Request throughput over time".into(),
        x_label: time_label(width),
        y_label: "requests/s".into(),
        series,
        y_from_zero: true,
        y_max: None,
    }
}

fn concurrency(c: &Columns) -> Chart {
    let mut edges: Vec<(f64, i32)> = c
        .start_s
        .iter()
        .zip(&c.e2el_ms)
        .enumerate()
        .filter(|(i, (s, l))| c.ok(*i) && s.is_finite() && l.is_finite())
        .flat_map(|(_, (s, l))| [(*s, 1), (s + l / 1e3, -1)])
        .collect();
    // A departure at the same instant as an arrival goes first, as the peak figure counts.
    edges.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    let mut s = Series::new("in flight", PALETTE[0], Shape::Step);
    let mut now = 0i64;
    let mut steps = Vec::with_capacity(edges.len());
    for (t, d) in edges {
        now += d as i64;
        steps.push((t, now as f64));
    }
    // Thinning a step function could hide its peaks: keep the highest value of each run of
    // steps that share one drawn point.
    if steps.len() > MAX_LINE_POINTS * 2 {
        let per = steps.len().div_ceil(MAX_LINE_POINTS);
        s.points = steps
            .chunks(per)
            .map(|ch| (ch[0].0, ch.iter().map(|p| p.1).fold(0.0, f64::max)))
            .collect();
    } else {
        s.points = steps;
    }
    Chart {
        id: "concurrency".into(),
        title: "Concurrency over time".into(),
        x_label: "time since start (s)".into(),
        y_label: "requests in flight".into(),
        series: vec![s],
        y_from_zero: true,
        y_max: None,
    }
}

fn send_lag(c: &Columns, width: f64, n: usize) -> Chart {
    let mut lag: Vec<(f64, f64)> = c
        .send_lag()
        .into_iter()
        .filter(|p| p.0.is_finite() && p.1.is_finite())
        .collect();
    // µs is the scale of a client that keeps up; one that falls behind reads better in ms.
    let unit = if lag.iter().any(|p| p.1 > 10_000.0) {
        lag.iter_mut().for_each(|p| p.1 /= 1e3);
        "ms"
    } else {
        "µs"
    };
    let series = if lag.len() <= MAX_SCATTER_POINTS {
        let mut s = Series::new("send lag", PALETTE[0], Shape::Points);
        for (i, &(t, v)) in lag.iter().enumerate() {
            s.points.push((t, v));
            s.hover.push(format!(
                "request {i}: planned at {} s, sent {} {unit} late",
                fmt_num(t),
                fmt_num(v)
            ));
        }
        vec![s]
    } else {
        let mut per: Vec<Vec<f64>> = vec![Vec::new(); n];
        for &(t, v) in &lag {
            if let Some(b) = bucket_of(t, width, n) {
                per[b].push(v);
            }
        }
        let mut max = Series::new("max per bucket", PALETTE[1], Shape::Step);
        let mut p50 = Series::new("median per bucket", PALETTE[0], Shape::Step);
        for (b, mut v) in per.into_iter().enumerate() {
            if v.is_empty() {
                continue;
            }
            v.sort_by(f64::total_cmp);
            let t = b as f64 * width;
            max.points.push((t, v[v.len() - 1]));
            p50.points.push((t, percentile(&v, 50.0)));
        }
        vec![max, p50]
    };
    Chart {
        id: "send-lag".into(),
        title: "Send lag over time".into(),
        x_label: "planned send time since start (s)".into(),
        y_label: format!("actual − planned send ({unit})"),
        series,
        y_from_zero: true,
        y_max: None,
    }
}

/// Write the page atomically (a temporary file renamed into place).
pub fn write(path: &Path, html: &str) -> anyhow::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create the directory {}", dir.display()))?;
    }
    super::result_json::write_atomically(path, crate::secrets::scrub(html).as_bytes())
        .with_context(|| format!("cannot write the HTML report {}", path.display()))
}

/// `servebench report RESULT.json [-o OUT.html] [--index N]`.
pub fn run(args: &crate::cli::ReportArgs) -> anyhow::Result<()> {
    let results = super::compare::read_results(&args.result)?;
    let n = results.len();
    let (i, chosen) = match args.index {
        Some(k) if k == 0 || k > n => bail!(
            "--index {k}: {} holds {n} result(s); pick 1 to {n}",
            args.result.display()
        ),
        Some(k) => (k, &results[k - 1]),
        None => (n, &results[n - 1]),
    };
    if n > 1 {
        eprintln!(
            "{} holds {n} results; reporting number {i} (choose with --index)",
            args.result.display()
        );
    }
    if chosen.1.contains_key(super::sweep_html::SWEEP_KEY) {
        let out = args
            .output
            .clone()
            .unwrap_or_else(|| default_output(&args.result));
        super::sweep_html::write_sweep(&out, &chosen.1)?;
        eprintln!("HTML sweep report saved to {}", out.display());
        return Ok(());
    }
    if !chosen.1.contains_key("ttfts") {
        eprintln!(
            "WARNING: {} has no per-request arrays (run with --save-detailed); most plots will be empty",
            args.result.display()
        );
    }
    let out = args
        .output
        .clone()
        .unwrap_or_else(|| default_output(&args.result));
    write(&out, &render(&chosen.1))?;
    eprintln!("HTML report saved to {}", out.display());
    Ok(())
}

/// `r.json` → `r.html`, beside it.
fn default_output(result: &Path) -> PathBuf {
    result.with_extension("html")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sample() -> Map<String, Value> {
        let v = json!({
            "date": "20250101-000000",
            "backend": "openai",
            "model_id": "m<1>",
            "completed": 3,
            "failed": 1,
            "request_rate": "inf",
            "max_concurrency": null,
            "mean_ttft_ms": 12.5,
            "ttfts": [0.010, 0.012, 0.0, 0.015],
            "latencies": [0.125, 0.375, 0.0, 0.5],
            "itls": [[0.01, 0.02], [0.01], [], [0.03, 0.01, 0.5]],
            "output_lens": [3, 2, 0, 4],
            "start_times": [100.0, 100.125, 100.25, 100.375],
            "servebench_arrivals": [100.0, 100.0625, 100.25, 100.3125],
            "queue_times": [0.0, 0.0625, 0.0, 0.0625],
            "errors": ["", "", "boom", ""],
        });
        v.as_object().unwrap().clone()
    }

    #[test]
    fn page_has_every_plot_and_every_scalar() {
        let html = render(&sample());
        for id in [
            "ttft-cdf",
            "e2el-cdf",
            "itl-hist",
            "output-throughput",
            "request-throughput",
            "concurrency",
            "send-lag",
        ] {
            assert!(html.contains(&format!("id=\"{id}\"")), "{id} missing");
        }
        assert!(!html.contains("no data"), "every plot has data");
        for k in [
            "completed",
            "failed",
            "request_rate",
            "max_concurrency",
            "mean_ttft_ms",
        ] {
            assert!(html.contains(&format!("<td>{k}</td>")), "{k} missing");
        }
        assert!(html.contains("m&lt;1&gt;") && !html.contains("m<1>"));
        assert!(!html.contains("<script") && !html.contains("http://www.w3.org/1999"));
        assert!(
            !html.contains("src=") && !html.contains("href="),
            "nothing fetched"
        );
    }

    #[test]
    fn failed_requests_stay_out_of_the_latency_plots() {
        let c = Columns::from(&sample());
        assert_eq!(c.ok_values(&c.ttft_ms), vec![10.0, 12.0, 15.0]);
        // Send lag from the planned arrivals, in µs.
        let lag: Vec<f64> = c.send_lag().iter().map(|p| p.1.round()).collect();
        assert_eq!(lag, vec![0.0, 62500.0, 0.0, 62500.0]);
    }

    #[test]
    fn concurrency_steps_up_and_down() {
        let chart = concurrency(&Columns::from(&sample()));
        let ys: Vec<f64> = chart.series[0].points.iter().map(|p| p.1).collect();
        // Three successes: [0, 0.125), [0.125, 0.5), [0.375, 0.875): the first ends as the
        // second starts, so it counts 0 in between, not 2.
        assert_eq!(ys, vec![1.0, 0.0, 1.0, 2.0, 1.0, 0.0]);
    }

    #[test]
    fn itl_histogram_counts_every_gap_once() {
        let chart = itl_histogram(&Columns::from(&sample()));
        let total: f64 = chart.series[0].points.iter().map(|p| p.1).sum();
        assert_eq!(total, 6.0, "gaps of the three successful requests");
    }

    #[test]
    fn a_summary_only_file_still_renders() {
        let m = json!({"completed": 1, "latencies": [0.5]});
        let html = render(m.as_object().unwrap());
        assert!(html.contains("<td>completed</td>"));
        assert!(html.contains("no data"));
    }
}

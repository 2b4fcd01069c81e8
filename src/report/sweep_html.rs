//! The HTML page of a sweep (`summary.json` of `servebench sweep`): latency percentiles
//! against achieved throughput, throughput and goodput against offered load with the search's
//! answer, output tokens/s, and a table of the points linking each point's result file.
//!
//! Like the run report it is one self-contained file (inline CSS and SVG, no script, nothing
//! fetched), drawn from the summary alone, so `servebench report summary.json` remakes the page
//! the sweep wrote. Every key may be missing or of the wrong type (a sweep still running, a
//! hand-edited file): such values are shown as unknown, never trusted.

use std::fmt::Write;
use std::path::Path;

use serde_json::{Map, Value};

use super::html::svg::{esc, Chart, Series, Shape, ALERT, PALETTE};
use super::html::{fmt_num, CSS};

/// The key that marks a JSON object as a sweep summary.
pub const SWEEP_KEY: &str = "servebench_sweep";

/// Latency metrics in the order vLLM reports them: key in the summary, display name.
const METRICS: [(&str, &str); 4] = [
    ("ttft", "TTFT"),
    ("tpot", "TPOT"),
    ("itl", "ITL"),
    ("e2el", "E2EL"),
];

/// The percentile lines every latency chart draws (when the points have them).
const LINE_STATS: [&str; 3] = ["p50", "p90", "p99"];
const STAT_COLORS: [&str; 4] = [PALETTE[0], PALETTE[2], PALETTE[3], "#ff7f0e"];
const GUIDE: &str = "#999999";
/// One colour per curve when the sweep has several (parameter sets × a swept value); red is
/// left to failures and limits.
const GROUP_COLORS: [&str; 8] = [
    "#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf", "#7f7f7f",
];

const SWEEP_CSS: &str = ".answer{font-size:16px;margin:0 0 16px;padding:8px 12px;\
border-left:4px solid #2ca02c;background:#f3faf3}\
.answer.all_fail,.answer.stopped,.answer.unknown{border-color:#d62728;background:#fdf3f3}\
tr.fail td{background:#fdf3f3}td.over{color:#d62728;font-weight:600}\
.no-points{font-size:16px;color:#555}td a{white-space:nowrap}";

/// One SLO constraint of the summary's `slo.constraints`.
struct Constraint {
    metric: String,
    stat: String,
    limit_ms: f64,
    key: String,
}

impl Constraint {
    fn from(v: &Value) -> Option<Constraint> {
        let m = v.as_object()?;
        let metric = m.get("metric")?.as_str()?.to_ascii_lowercase();
        let stat = m.get("stat")?.as_str()?.to_string();
        let limit_ms = num(m, "limit_ms")?;
        let key = match m.get("key").and_then(Value::as_str) {
            Some(k) => k.to_string(),
            None => format!("{stat}_{metric}_ms"),
        };
        Some(Constraint {
            metric,
            stat,
            limit_ms,
            key,
        })
    }

    /// "p99 TTFT ≤ 500 ms".
    fn text(&self) -> String {
        format!(
            "{} {} ≤ {} ms",
            self.stat,
            metric_name(&self.metric),
            fmt_x(self.limit_ms)
        )
    }
}

/// One point of the summary, read leniently.
struct Point<'a> {
    m: &'a Map<String, Value>,
    index: Option<f64>,
    label: String,
    /// The point's settings other than the swept value: its curve.
    group: String,
    x: Option<f64>,
    throughput: Option<f64>,
    meets: Option<bool>,
    saturated: bool,
    partial: bool,
}

impl<'a> Point<'a> {
    fn from(v: &'a Value) -> Option<Point<'a>> {
        let m = v.as_object()?;
        Some(Point {
            m,
            index: num(m, "index"),
            label: m
                .get("label")
                .and_then(Value::as_str)
                .unwrap_or("?")
                .to_string(),
            group: m
                .get("group")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
            x: num(m, "x"),
            throughput: num(m, "request_throughput"),
            meets: m.get("meets_slo").and_then(Value::as_bool),
            saturated: m.get("saturated").and_then(Value::as_bool) == Some(true),
            partial: m.get("partial").and_then(Value::as_bool) == Some(true),
        })
    }

    fn num(&self, k: &str) -> Option<f64> {
        num(self.m, k)
    }

    fn has_metric(&self, metric: &str) -> bool {
        self.m
            .get("latency_ms")
            .and_then(|l| l.get(metric))
            .is_some_and(Value::is_object)
    }

    /// A latency statistic in ms; "median" is the p50 the points carry.
    fn latency(&self, metric: &str, stat: &str) -> Option<f64> {
        let per = self.m.get("latency_ms")?.get(metric)?.as_object()?;
        num(per, stat).or_else(|| match stat {
            "median" => num(per, "p50"),
            "p50" => num(per, "median"),
            _ => None,
        })
    }

    /// The measured value of a constraint: its own entry in `slo_values`, else the latency.
    fn slo_value(&self, c: &Constraint) -> Option<f64> {
        self.m
            .get("slo_values")
            .and_then(Value::as_object)
            .and_then(|v| num(v, &c.key))
            .or_else(|| self.latency(&c.metric, &c.stat))
    }

    /// What a marker's hover adds about the point's state.
    fn flags(&self) -> String {
        let mut s = String::new();
        if self.meets == Some(false) {
            s.push_str("; fails the SLO");
        }
        if self.saturated {
            s.push_str("; saturated: stopped early, the server could not keep up");
        }
        if self.partial {
            s.push_str("; partial");
        }
        s
    }

    fn failing(&self) -> bool {
        self.meets == Some(false)
    }
}

/// The curves of a sweep: its points' groups in the order first run.
fn groups(points: &[Point]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for p in points {
        if !out.contains(&p.group) {
            out.push(p.group.clone());
        }
    }
    out
}

fn group_color(i: usize) -> &'static str {
    GROUP_COLORS[i % GROUP_COLORS.len()]
}

/// A finite number under `k` (a null, a string such as "inf" or a missing key is None).
fn num(m: &Map<String, Value>, k: &str) -> Option<f64> {
    m.get(k).and_then(Value::as_f64).filter(|v| v.is_finite())
}

fn text<'a>(m: &'a Map<String, Value>, k: &str) -> &'a str {
    m.get(k).and_then(Value::as_str).unwrap_or("?")
}

fn metric_name(key: &str) -> String {
    METRICS
        .iter()
        .find(|(k, _)| *k == key)
        .map(|(_, n)| n.to_string())
        .unwrap_or_else(|| key.to_ascii_uppercase())
}

/// A swept value as a person writes it: 10, 2.5, 0.125.
fn fmt_x(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        let s = format!("{v:.3}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

fn opt(v: Option<f64>) -> String {
    v.map(fmt_num).unwrap_or_else(|| "—".into())
}

fn count(v: Option<f64>) -> String {
    v.map(fmt_x).unwrap_or_else(|| "—".into())
}

/// A result file name as a relative link: bytes outside a plain set are percent-encoded, so
/// the link can neither name a scheme (`javascript:`) nor break out of the attribute.
fn href(file: &str) -> String {
    let mut out = String::with_capacity(file.len());
    for b in file.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/=+,".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// The whole page.
pub fn render(summary: &Map<String, Value>) -> String {
    let variable = summary
        .get("variable")
        .and_then(Value::as_str)
        .unwrap_or("request_rate");
    let is_rate = variable == "request_rate";
    let slo = summary.get("slo").and_then(Value::as_object);
    let constraints: Vec<Constraint> = slo
        .and_then(|s| s.get("constraints"))
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Constraint::from).collect())
        .unwrap_or_default();
    let answer = slo.and_then(|s| s.get("answer")).and_then(Value::as_object);
    let points: Vec<Point> = summary
        .get("points")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Point::from).collect())
        .unwrap_or_default();

    let title = format!(
        "servebench sweep: {} on {} ({})",
        text(summary, "model_id"),
        text(summary, "backend"),
        text(summary, "date")
    );
    let mut o = String::with_capacity(64 * 1024);
    let _ = write!(
        o,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{t}</title><style>{CSS}{SWEEP_CSS}</style></head><body><h1>{t}</h1>",
        t = esc(&title)
    );
    o.push_str(&glance(summary, variable, slo, &constraints, points.len()));
    if let Some(a) = answer {
        o.push_str(&answer_line(a, is_rate));
    }
    if points.is_empty() {
        o.push_str("<p class=\"no-points\">This sweep has no points yet (no points measured).</p>");
    } else {
        let mut charts: Vec<(Chart, String)> = METRICS
            .iter()
            .filter(|(m, _)| points.iter().any(|p| p.has_metric(m)))
            .map(|(m, _)| latency_chart(m, &points, &constraints))
            .collect();
        let unplaced = points.iter().filter(|p| p.x.is_none()).count();
        let note = if unplaced > 0 {
            format!(
                " {unplaced} point(s) without a finite {variable} (an unlimited rate) are in \
                 the latency charts and the table only."
            )
        } else {
            String::new()
        };
        charts.push((
            throughput_chart(&points, variable, answer),
            format!(
                "Achieved request throughput{} against the offered {variable}.{}{note}",
                if is_rate {
                    " (the dashed line is achieved = offered)"
                } else {
                    ""
                },
                if constraints.is_empty() {
                    ""
                } else {
                    " Goodput counts the requests that meet the SLO; hollow red markers fail \
                     it; the vertical lines are the search's bracket."
                }
            ),
        ));
        charts.push((
            output_chart(&points, variable),
            format!("Output tokens per second against the offered {variable}.{note}"),
        ));
        o.push_str("<section class=\"plots\">");
        for (chart, caption) in charts {
            let _ = write!(
                o,
                "<figure>{}<figcaption>{}</figcaption></figure>",
                chart.render(),
                esc(&caption)
            );
        }
        o.push_str("</section>");
        o.push_str(&points_table(&points, variable, &constraints));
    }
    o.push_str(
        "<footer>Written by servebench sweep. Self-contained: no scripts, nothing fetched; \
         the result files are linked relative to this page.</footer></body></html>\n",
    );
    o
}

/// The facts a reader checks first: what was swept, against what, under which SLO.
fn glance(
    m: &Map<String, Value>,
    variable: &str,
    slo: Option<&Map<String, Value>>,
    constraints: &[Constraint],
    n_points: usize,
) -> String {
    let mut items: Vec<(&str, String)> = vec![
        ("Backend", text(m, "backend").to_string()),
        ("Model", text(m, "model_id").to_string()),
        ("Base URL", text(m, "base_url").to_string()),
        ("Date", text(m, "date").to_string()),
        (
            "Swept",
            format!(
                "{variable} ({})",
                m.get("mode").and_then(Value::as_str).unwrap_or("list")
            ),
        ),
        ("Points", n_points.to_string()),
    ];
    if !constraints.is_empty() {
        let all: Vec<String> = constraints.iter().map(Constraint::text).collect();
        items.push(("SLO", all.join(" and ")));
    }
    if let Some(p) = slo.and_then(|s| num(s, "precision")) {
        items.push(("Search precision", format!("{}%", fmt_x(p * 100.0))));
    }
    let mut o = String::from("<ul class=\"glance\">");
    for (k, v) in items {
        let _ = write!(o, "<li>{k}: <b>{}</b></li>", esc(&v));
    }
    o.push_str("</ul>");
    o
}

/// The search's answer in words: its own text, else one made from its figures.
fn answer_line(a: &Map<String, Value>, is_rate: bool) -> String {
    let status = a.get("status").and_then(Value::as_str).unwrap_or("unknown");
    let unit = if is_rate { " req/s" } else { "" };
    let words = match a.get("text").and_then(Value::as_str) {
        Some(t) => t.to_string(),
        None => {
            let v = |k| num(a, k).map(|v| format!("{}{unit}", fmt_x(v)));
            format!(
                "{status}: highest passing {}, lowest failing {}",
                v("max_passing").unwrap_or_else(|| "none".into()),
                v("min_failing").unwrap_or_else(|| "none".into())
            )
        }
    };
    let mut o = format!(
        "<p class=\"answer {}\" id=\"answer\">Answer: <b>{}</b>",
        esc(&status.replace(|c: char| !c.is_ascii_alphanumeric(), "_")),
        esc(&words)
    );
    if let Some(t) = num(a, "max_passing_throughput") {
        let _ = write!(o, " (achieved {} req/s there)", fmt_num(t));
    }
    o.push_str("</p>");
    o
}

/// Percentile lines of one metric against achieved throughput, with its SLO limits.
fn latency_chart(metric: &str, points: &[Point], constraints: &[Constraint]) -> (Chart, String) {
    let name = metric_name(metric);
    let limits: Vec<&Constraint> = constraints.iter().filter(|c| c.metric == metric).collect();
    // The stat a constraint is on gets its own line when it is not one of the usual three.
    let mut stats: Vec<&str> = LINE_STATS.to_vec();
    for c in &limits {
        let same = c.stat == "median" && stats.contains(&"p50");
        if !same && !stats.contains(&c.stat.as_str()) {
            stats.push(c.stat.as_str());
        }
    }
    let mut series = Vec::new();
    // Several curves: one line each, of the constrained statistic (else p99).
    let groups = groups(points);
    let lines: Vec<(String, &str, &'static str, Option<&str>)> = if groups.len() > 1 {
        let stat = limits.first().map_or("p99", |c| c.stat.as_str());
        groups
            .iter()
            .enumerate()
            .map(|(i, g)| {
                (
                    format!("{g}: {stat} {name}"),
                    stat,
                    group_color(i),
                    Some(g.as_str()),
                )
            })
            .collect()
    } else {
        stats
            .iter()
            .enumerate()
            .map(|(i, stat)| {
                let color = STAT_COLORS[i.min(STAT_COLORS.len() - 1)];
                (format!("{stat} {name}"), *stat, color, None)
            })
            .collect()
    };
    for (title, stat, color, group) in lines {
        let mut s = Series::new(title, color, Shape::Line);
        let on = limits.iter().find(|c| c.stat == stat);
        for p in points.iter().filter(|p| group.is_none_or(|g| p.group == g)) {
            let v = match on {
                Some(c) => p.slo_value(c),
                None => p.latency(metric, stat),
            };
            let (Some(t), Some(v)) = (p.throughput, v) else {
                continue;
            };
            s.points.push((t, v));
            s.hover.push(format!(
                "{}: {stat} {name} {} ms at {} req/s achieved{}",
                p.label,
                fmt_num(v),
                fmt_num(t),
                p.flags()
            ));
            s.flagged.push(p.failing());
        }
        if !s.points.is_empty() {
            series.push(s);
        }
    }
    for c in &limits {
        let mut s = Series::new(format!("SLO: {}", c.text()), ALERT, Shape::HRule);
        s.points.push((0.0, c.limit_ms));
        series.push(s);
    }
    let caption = if limits.is_empty() {
        format!("{name} percentiles of each point against the request throughput it achieved.")
    } else {
        format!(
            "{name} percentiles of each point against the request throughput it achieved; the \
             dashed red line is the SLO limit, hollow red markers fail the SLO."
        )
    };
    let chart = Chart {
        id: format!("latency-{metric}"),
        title: format!("{name} vs achieved throughput"),
        x_label: "achieved request throughput (req/s)".into(),
        y_label: format!("{name} (ms)"),
        series,
        y_from_zero: true,
        y_max: None,
    };
    (chart, caption)
}

fn load_label(variable: &str) -> String {
    match variable {
        "request_rate" => "offered request rate (req/s)".into(),
        "max_concurrency" => "max concurrency (requests in flight)".into(),
        other => other.to_string(),
    }
}

/// Lines of one point key against the offered load, one per curve (points without a finite x
/// are left out); several curves are named by their settings and coloured apart.
fn load_series(
    points: &[Point],
    name: &str,
    key: &str,
    unit: &str,
    color: &'static str,
) -> Vec<Series> {
    let groups = groups(points);
    if groups.len() <= 1 {
        return vec![load_line(points, name, key, unit, color)];
    }
    groups
        .iter()
        .enumerate()
        .map(|(i, g)| {
            let mine: Vec<&Point> = points.iter().filter(|p| &p.group == g).collect();
            load_line(&mine, &format!("{g}: {name}"), key, unit, group_color(i))
        })
        .collect()
}

fn load_line<'a, P: std::borrow::Borrow<Point<'a>>>(
    points: &[P],
    name: &str,
    key: &str,
    unit: &str,
    color: &'static str,
) -> Series {
    let mut s = Series::new(name, color, Shape::Line);
    for p in points.iter().map(|p| p.borrow()) {
        let (Some(x), Some(v)) = (p.x, p.num(key)) else {
            continue;
        };
        s.points.push((x, v));
        s.hover
            .push(format!("{}: {} {unit}{}", p.label, fmt_num(v), p.flags()));
        s.flagged.push(p.failing());
    }
    s
}

fn throughput_chart(
    points: &[Point],
    variable: &str,
    answer: Option<&Map<String, Value>>,
) -> Chart {
    let is_rate = variable == "request_rate";
    let mut series = load_series(
        points,
        "achieved req/s",
        "request_throughput",
        "req/s achieved",
        PALETTE[0],
    );
    let mut goodput = load_series(
        points,
        "goodput req/s",
        "request_goodput",
        "req/s goodput",
        PALETTE[2],
    );
    goodput.retain(|s| !s.points.is_empty());
    let title = if goodput.is_empty() {
        "Throughput vs offered load"
    } else {
        // With several curves, a curve's goodput is its colour dashed.
        if goodput.len() > 1 {
            goodput.iter_mut().for_each(|s| s.dashed = true);
        }
        series.extend(goodput);
        "Throughput and goodput vs offered load"
    };
    let xs: Vec<f64> = points.iter().filter_map(|p| p.x).collect();
    if is_rate && !xs.is_empty() {
        let lo = xs.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = xs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let mut guide = Series::new("achieved = offered", GUIDE, Shape::Line);
        guide.points = vec![(lo, lo), (hi, hi)];
        guide.dashed = true;
        series.push(guide);
    }
    let unit = if is_rate { " req/s" } else { "" };
    // The answer's bracket belongs to one curve: drawn only when there is one.
    let answer = answer.filter(|_| groups(points).len() <= 1);
    for (key, what, color) in [
        ("max_passing", "passes at", PALETTE[2]),
        ("min_failing", "fails at", ALERT),
    ] {
        if let Some(v) = answer.and_then(|a| num(a, key)) {
            let mut s = Series::new(format!("{what} {}{unit}", fmt_x(v)), color, Shape::VRule);
            s.points.push((v, 0.0));
            series.push(s);
        }
    }
    Chart {
        id: "throughput-vs-load".into(),
        title: title.into(),
        x_label: load_label(variable),
        y_label: "requests/s".into(),
        series,
        y_from_zero: true,
        y_max: None,
    }
}

fn output_chart(points: &[Point], variable: &str) -> Chart {
    Chart {
        id: "output-vs-load".into(),
        title: "Output tokens/s vs offered load".into(),
        x_label: load_label(variable),
        y_label: "output tokens/s".into(),
        series: load_series(
            points,
            "output tok/s",
            "output_throughput",
            "output tokens/s",
            PALETTE[0],
        ),
        y_from_zero: true,
        y_max: None,
    }
}

/// The points in order of offered load (unlimited last), with their run order in `#`.
fn points_table(points: &[Point], variable: &str, constraints: &[Constraint]) -> String {
    let mut order: Vec<&Point> = points.iter().collect();
    let curves = groups(points);
    let curve = |p: &Point| curves.iter().position(|g| *g == p.group).unwrap_or(0);
    order.sort_by(|a, b| {
        let x = |p: &Point| p.x.unwrap_or(f64::INFINITY);
        curve(a)
            .cmp(&curve(b))
            .then(x(a).total_cmp(&x(b)))
            .then(a.index.unwrap_or(0.0).total_cmp(&b.index.unwrap_or(0.0)))
    });
    let has_slo = !constraints.is_empty();
    // Without constraints, the p99 of every metric the points have.
    let p99s: Vec<Constraint> = if has_slo {
        Vec::new()
    } else {
        METRICS
            .iter()
            .filter(|(m, _)| points.iter().any(|p| p.latency(m, "p99").is_some()))
            .map(|(m, _)| Constraint {
                metric: m.to_string(),
                stat: "p99".into(),
                limit_ms: f64::INFINITY,
                key: format!("p99_{m}_ms"),
            })
            .collect()
    };
    let columns = if has_slo { constraints } else { &p99s[..] };

    let grouped = groups(points).len() > 1;
    let mut o = String::from("<h2>Points</h2><table id=\"points\"><thead><tr><th>#</th>");
    if grouped {
        o.push_str("<th>settings</th>");
    }
    let _ = write!(o, "<th>{}</th>", esc(variable));
    o.push_str("<th>achieved req/s</th><th>output tok/s</th>");
    if has_slo {
        o.push_str("<th>goodput req/s</th><th>SLO attainment</th>");
    }
    for c in columns {
        let _ = write!(
            o,
            "<th>{} {} (ms)</th>",
            esc(&c.stat),
            metric_name(&c.metric)
        );
    }
    if has_slo {
        o.push_str("<th>meets SLO</th>");
    }
    o.push_str(
        "<th>saturated</th><th>completed</th><th>failed</th><th>result</th></tr></thead><tbody>",
    );
    for p in order {
        let class = if p.failing() { " class=\"fail\"" } else { "" };
        let x = match p.x {
            Some(x) => fmt_x(x),
            None if variable == "request_rate" => "inf".into(),
            None => "none".into(),
        };
        let settings = if grouped {
            format!("<td>{}</td>", esc(&p.group))
        } else {
            String::new()
        };
        let _ = write!(
            o,
            "<tr{class}><td class=\"num\">{}</td>{settings}<td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{}</td>",
            p.index.map(fmt_x).unwrap_or_else(|| "?".into()),
            esc(&x),
            opt(p.throughput),
            opt(p.num("output_throughput"))
        );
        if has_slo {
            let attained = p
                .num("slo_attainment")
                .map(|a| format!("{}%", fmt_num(a * 100.0)));
            let _ = write!(
                o,
                "<td class=\"num\">{}</td><td class=\"num\">{}</td>",
                opt(p.num("request_goodput")),
                attained.unwrap_or_else(|| "—".into())
            );
        }
        for c in columns {
            let v = p.slo_value(c);
            let over = if v.is_some_and(|v| v > c.limit_ms) {
                " over"
            } else {
                ""
            };
            let _ = write!(o, "<td class=\"num{over}\">{}</td>", opt(v));
        }
        if has_slo {
            let meets = match p.meets {
                Some(true) => "yes",
                Some(false) => "no",
                None => "—",
            };
            let _ = write!(o, "<td>{meets}</td>");
        }
        let saturated = match (p.saturated, p.partial) {
            (true, true) => "yes (partial)",
            (true, false) => "yes",
            (false, true) => "partial",
            (false, false) => "",
        };
        let _ = write!(
            o,
            "<td>{saturated}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>",
            count(p.num("completed")),
            count(p.num("failed"))
        );
        match p.m.get("result_file").and_then(Value::as_str) {
            Some(f) => {
                let _ = write!(
                    o,
                    "<td><a href=\"{}\">{}</a></td></tr>",
                    esc(&href(f)),
                    esc(f)
                );
            }
            None => o.push_str("<td>—</td></tr>"),
        }
    }
    o.push_str("</tbody></table>");
    o
}

/// Write the page for `summary` atomically (the sweep calls this after every point, so an
/// interrupted sweep still leaves a page of what it measured).
pub fn write_sweep(path: &Path, summary: &Map<String, Value>) -> anyhow::Result<()> {
    super::html::write(path, &render(summary))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A small search: latency flat, then rising past a knee near 75 req/s.
    fn summary(with_slo: bool) -> Map<String, Value> {
        let rates = [10.0, 160.0, 85.0, 47.5, 66.0, 80.0];
        let points: Vec<Value> = rates
            .iter()
            .enumerate()
            .map(|(i, &r)| {
                let achieved = f64::min(r, 80.0) * 0.99;
                let rho = (r / 82.0).min(0.99);
                let ttft = 40.0 + 20.0 * rho / (1.0 - rho);
                let meets = ttft * 2.0 <= 500.0;
                json!({
                    "index": i, "label": format!("request_rate={r}"),
                    "params": {"request_rate": r, "max_concurrency": null},
                    "x": r, "result_file": format!("point-{i:03}-request_rate={r}.json"),
                    "completed": 300, "failed": 0, "duration": 30.0,
                    "request_throughput": achieved, "output_throughput": achieved * 128.0,
                    "total_token_throughput": achieved * 640.0,
                    "request_goodput": if with_slo { json!(if meets { achieved } else { 0.0 }) } else { Value::Null },
                    "slo_attainment": if with_slo { json!(if meets { 1.0 } else { 0.2 }) } else { Value::Null },
                    "saturated": r > 100.0, "partial": false,
                    "meets_slo": if with_slo { json!(meets) } else { Value::Null },
                    "slo_values": if with_slo { json!({"p99_ttft_ms": ttft * 2.0}) } else { json!({}) },
                    "latency_ms": {
                        "ttft": {"mean": ttft, "p50": ttft, "p90": ttft * 1.5, "p99": ttft * 2.0},
                        "tpot": {"mean": 8.0, "p50": 8.0, "p90": 9.0, "p99": 10.0 + rho},
                    }
                })
            })
            .collect();
        let slo = if with_slo {
            json!({
                "constraints": [{"metric": "ttft", "stat": "p99", "limit_ms": 500.0, "key": "p99_ttft_ms"}],
                "precision": 0.05,
                "answer": {"status": "found", "max_passing": 66.0, "min_failing": 80.0,
                           "max_passing_throughput": 65.3,
                           "text": "highest request rate meeting the SLO: 66 req/s (fails at 80)"}
            })
        } else {
            Value::Null
        };
        json!({
            "servebench_sweep": 1, "date": "20261123-041500", "backend": "openai",
            "model_id": "mock", "base_url": "http://127.0.0.1:8000",
            "variable": "request_rate", "mode": if with_slo { "search" } else { "list" },
            "slo": slo, "points": points,
        })
        .as_object()
        .cloned()
        .unwrap()
    }

    fn svg<'a>(html: &'a str, id: &str) -> &'a str {
        let start = html
            .find(&format!("<svg class=\"plot\" id=\"{id}\""))
            .unwrap_or_else(|| panic!("no chart {id}"));
        let len = html[start..].find("</svg>").unwrap();
        &html[start..start + len]
    }

    #[test]
    fn charts_for_the_metrics_present_and_the_load() {
        let html = render(&summary(true));
        for id in [
            "latency-ttft",
            "latency-tpot",
            "throughput-vs-load",
            "output-vs-load",
        ] {
            let s = svg(&html, id);
            assert!(!s.contains("no data"), "{id} is empty");
            assert!(s.contains("<polyline"), "{id} draws no line");
        }
        // No ITL or E2EL in the points, so no chart for them.
        assert!(!html.contains("id=\"latency-itl\"") && !html.contains("id=\"latency-e2el\""));
        // Three percentile lines of six markers each.
        let ttft = svg(&html, "latency-ttft");
        assert_eq!(ttft.matches("<polyline").count(), 3);
        assert_eq!(ttft.matches("<circle").count(), 18);
        // Failing points are hollow on every line: 160, 85 and 80 fail.
        assert_eq!(ttft.matches("class=\"fail\"").count(), 3 * 3);
        assert!(ttft.contains("saturated: stopped early"));
        assert!(!html.contains("<script") && !html.contains(" src="));
    }

    #[test]
    fn several_curves_get_a_line_each_and_no_single_answer() {
        // The search of `summary` run for two parameter sets.
        let mut two = summary(true);
        let Some(Value::Array(points)) = two.get_mut("points") else {
            panic!()
        };
        let mut second: Vec<Value> = points.clone();
        for (i, p) in second.iter_mut().enumerate() {
            p["index"] = json!(points.len() + i);
            p["group"] = json!("long, random_output_len=256");
        }
        points.iter_mut().for_each(|p| p["group"] = json!("short"));
        points.extend(second);
        let html = render(&two);
        let ttft = svg(&html, "latency-ttft");
        // One line per curve, of the constrained p99, plus the SLO line.
        assert_eq!(ttft.matches("<polyline").count(), 2);
        assert!(ttft.contains("data-name=\"short: p99 TTFT\""));
        assert!(ttft.contains("data-name=\"long, random_output_len=256: p99 TTFT\""));
        assert_eq!(ttft.matches("class=\"rule hrule\"").count(), 1);
        let load = svg(&html, "throughput-vs-load");
        assert!(load.contains("data-name=\"short: achieved req/s\""));
        assert!(load.contains("data-name=\"long, random_output_len=256: goodput req/s\""));
        assert!(
            !load.contains("class=\"rule vrule\""),
            "whose bracket would it be?"
        );
        assert_eq!(svg(&html, "output-vs-load").matches("<polyline").count(), 2);
        // The table names each point's curve and keeps a curve's points together.
        assert!(html.contains("<th>settings</th>"));
        let short_rows = html.matches("<td>short</td>").count();
        assert_eq!(short_rows, 6);
        let first_long = html.find("<td>long, random_output_len=256</td>").unwrap();
        assert!(html.rfind("<td>short</td>").unwrap() < first_long);
    }

    #[test]
    fn the_slo_line_and_the_answer_come_only_with_constraints() {
        let html = render(&summary(true));
        let ttft = svg(&html, "latency-ttft");
        assert_eq!(ttft.matches("class=\"rule hrule\"").count(), 1);
        assert!(ttft.contains("SLO: p99 TTFT ≤ 500 ms"));
        // The TPOT chart has no constraint of its own.
        assert!(!svg(&html, "latency-tpot").contains("class=\"rule"));
        let load = svg(&html, "throughput-vs-load");
        assert_eq!(load.matches("class=\"rule vrule\"").count(), 2);
        assert!(load.contains("passes at 66 req/s") && load.contains("fails at 80 req/s"));
        assert!(load.contains("data-name=\"goodput req/s\""));
        assert!(load.contains("data-name=\"achieved = offered\""));
        assert!(html.contains("id=\"answer\""));
        assert!(html.contains("highest request rate meeting the SLO: 66 req/s (fails at 80)"));
        assert!(html.contains("<th>meets SLO</th>") && html.contains("<td>no</td>"));

        let plain = render(&summary(false));
        assert!(!plain.contains("class=\"rule"), "no SLO, no limit lines");
        assert!(!plain.contains("id=\"answer\"") && !plain.contains("class=\"fail\""));
        assert!(!svg(&plain, "throughput-vs-load").contains("goodput"));
        assert!(svg(&plain, "throughput-vs-load").contains("data-name=\"achieved req/s\""));
        assert!(!plain.contains("<th>meets SLO</th>"));
        // Without constraints the table shows every metric's p99.
        assert!(plain.contains("<th>p99 TTFT (ms)</th><th>p99 TPOT (ms)</th>"));
    }

    #[test]
    fn a_constraint_on_another_stat_gets_its_own_line() {
        let mut s = summary(true);
        s["slo"]["constraints"] = json!([
            {"metric": "ttft", "stat": "p95", "limit_ms": 400.0, "key": "p95_ttft_ms"},
            {"metric": "tpot", "stat": "median", "limit_ms": 9.0, "key": "median_tpot_ms"},
        ]);
        for p in s["points"].as_array_mut().unwrap() {
            let p99 = p["latency_ms"]["ttft"]["p99"].as_f64().unwrap();
            p["slo_values"] = json!({"p95_ttft_ms": p99 * 0.9, "median_tpot_ms": 8.0});
        }
        let html = render(&s);
        let ttft = svg(&html, "latency-ttft");
        assert_eq!(ttft.matches("<polyline").count(), 4);
        assert!(ttft.contains("data-name=\"p95 TTFT\"") && ttft.contains("SLO: p95 TTFT ≤ 400 ms"));
        // The median is the p50 line already.
        let tpot = svg(&html, "latency-tpot");
        assert_eq!(tpot.matches("<polyline").count(), 3);
        assert!(tpot.contains("SLO: median TPOT ≤ 9 ms"));
        assert!(html.contains("<th>p95 TTFT (ms)</th><th>median TPOT (ms)</th>"));
    }

    #[test]
    fn labels_and_links_are_escaped() {
        let mut s = summary(true);
        s.insert("model_id".into(), json!("<b>m&m</b>"));
        let pts = s.get_mut("points").and_then(Value::as_array_mut).unwrap();
        pts[0]["label"] = json!("rate=\"10\"<x>");
        pts[0]["result_file"] = json!("javascript:alert(1) \"#.json");
        let html = render(&s);
        assert!(html.contains("&lt;b&gt;m&amp;m&lt;/b&gt;") && !html.contains("<b>m&m"));
        assert!(html.contains("rate=&quot;10&quot;&lt;x&gt;") && !html.contains("<x>"));
        assert!(html.contains("href=\"javascript%3Aalert%281%29%20%22%23.json\""));
        assert!(html.contains("href=\"point-001-request_rate=160.json\""));
    }

    #[test]
    fn points_without_x_stay_off_the_load_axis() {
        let mut s = summary(false);
        let pts = s.get_mut("points").and_then(Value::as_array_mut).unwrap();
        pts[1]["x"] = Value::Null;
        pts[1]["label"] = json!("request_rate=inf");
        let html = render(&s);
        // Six markers against achieved throughput, five against the offered load.
        assert_eq!(svg(&html, "latency-ttft").matches("<circle").count(), 6 * 3);
        assert_eq!(svg(&html, "output-vs-load").matches("<circle").count(), 5);
        let load = svg(&html, "throughput-vs-load");
        assert_eq!(load.matches("<circle").count(), 5);
        assert!(!load.contains("request_rate=inf"));
        assert!(html.contains("1 point(s) without a finite request_rate"));
        // In the table, last, as "inf".
        let table = &html[html.find("id=\"points\"").unwrap()..];
        let rows: Vec<&str> = table.split("<tr").skip(2).collect();
        assert_eq!(rows.len(), 6);
        assert!(
            rows[5].contains("<td class=\"num\">inf</td>"),
            "{}",
            rows[5]
        );
    }

    #[test]
    fn an_empty_or_broken_summary_still_renders() {
        let mut s = summary(true);
        s.insert("points".into(), json!([]));
        let html = render(&s);
        assert!(html.contains("no points"));
        assert!(!html.contains("<svg"));
        assert!(html.contains("id=\"answer\""));
        // Wrong types everywhere: unknowns, not a panic.
        let broken = json!({"servebench_sweep": 1, "slo": {"constraints": [{"metric": 5}], "answer": []},
                            "points": [7, {"x": "inf", "latency_ms": {"ttft": {"p50": "x"}}}]});
        let html = render(broken.as_object().unwrap());
        assert!(html.contains("</html>"));
        assert!(html.contains("<td class=\"num\">inf</td>"));
    }

    #[test]
    fn write_sweep_writes_the_page() {
        let dir = std::env::temp_dir().join(format!("sweep-html-{}", std::process::id()));
        let path = dir.join("summary.html");
        write_sweep(&path, &summary(true)).unwrap();
        let page = std::fs::read_to_string(&path).unwrap();
        assert!(page.starts_with("<!DOCTYPE html>") && page.contains("latency-ttft"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}

//! A sweep's points as figures: what each run measured (averaged over `--num-runs`), the
//! summary file's objects and the console table.

use std::fmt::Write;

use serde_json::{json, Map, Value};

use super::slo::{self, Constraint, METRICS};

/// The keys a point keeps from its result: counts, throughputs and every latency statistic.
fn kept(key: &str) -> bool {
    const PLAIN: [&str; 8] = [
        "completed",
        "failed",
        "duration",
        "request_throughput",
        "output_throughput",
        "total_token_throughput",
        "request_goodput",
        "max_concurrent_requests",
    ];
    if PLAIN.contains(&key) {
        return true;
    }
    let Some(rest) = key.strip_suffix("_ms") else {
        return false;
    };
    let Some((stat, metric)) = rest.split_once('_') else {
        return false;
    };
    METRICS.contains(&metric)
        && (matches!(stat, "mean" | "median" | "std")
            || stat
                .strip_prefix('p')
                .is_some_and(|p| p.parse::<f64>().is_ok()))
}

/// One point's figures from its runs' results: numbers averaged, `saturated` and `partial`
/// when any run was.
pub fn figures(runs: &[Map<String, Value>]) -> Map<String, Value> {
    let mut out = Map::new();
    let Some(first) = runs.first() else {
        return out;
    };
    for key in first.keys().filter(|k| kept(k)) {
        let vals: Vec<f64> = runs.iter().filter_map(|r| r.get(key)?.as_f64()).collect();
        let v = if runs.len() == 1 {
            first[key].clone()
        } else if vals.len() == runs.len() {
            json!(vals.iter().sum::<f64>() / vals.len() as f64)
        } else {
            Value::Null
        };
        out.insert(key.clone(), v);
    }
    let any = |k: &str| {
        runs.iter()
            .any(|r| r.get(k).is_some_and(|v| !v.is_null() && v != &json!(false)))
    };
    out.insert("saturated".into(), json!(any("saturation")));
    out.insert("partial".into(), json!(any("partial")));
    // Goodput as a share: good requests over those sent (SGLang's slo_attainment).
    let attainment = match (
        out.get("request_goodput").and_then(Value::as_f64),
        out.get("duration").and_then(Value::as_f64),
    ) {
        (Some(g), Some(d)) => {
            let sent = num(&out, "completed") + num(&out, "failed");
            (sent > 0.0).then(|| (g * d / sent).min(1.0))
        }
        _ => None,
    };
    out.insert("slo_attainment".into(), json!(attainment));
    out
}

fn num(m: &Map<String, Value>, k: &str) -> f64 {
    m.get(k).and_then(Value::as_f64).unwrap_or(0.0)
}

/// `{"ttft": {"mean":…, "p50":…, "p90":…, "p99":…}, …}` for the charts.
fn latency(f: &Map<String, Value>) -> Value {
    let mut out = Map::new();
    for m in METRICS {
        let mut stats = Map::new();
        for (name, key) in [
            ("mean", format!("mean_{m}_ms")),
            ("p50", format!("p50_{m}_ms")),
            ("p90", format!("p90_{m}_ms")),
            ("p99", format!("p99_{m}_ms")),
        ] {
            if let Some(v) = f.get(&key).filter(|v| !v.is_null()) {
                stats.insert(name.into(), v.clone());
            }
        }
        if !stats.is_empty() {
            out.insert(m.into(), Value::Object(stats));
        }
    }
    Value::Object(out)
}

/// A measured point as the summary file holds it.
pub struct Point {
    pub index: usize,
    pub label: String,
    /// The other settings of its combination (the curve it belongs to).
    pub group: String,
    pub params: Map<String, Value>,
    /// The swept or searched value (None: an unbounded rate).
    pub x: Option<f64>,
    pub result_files: Vec<String>,
    pub figures: Map<String, Value>,
    pub verdict: Option<slo::Verdict>,
}

impl Point {
    /// A point as `to_json` wrote it (for `--resume`), judged again under `constraints`.
    pub fn from_json(v: &Value, constraints: &[Constraint], max_failed: f64) -> Option<Point> {
        let m = v.as_object()?;
        let figures = m.get("figures")?.as_object()?.clone();
        let verdict =
            (!constraints.is_empty()).then(|| slo::judge(constraints, &figures, max_failed));
        let files = m
            .get("result_files")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|f| f.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        Some(Point {
            index: m.get("index")?.as_u64()? as usize,
            label: m.get("label")?.as_str()?.to_string(),
            group: m
                .get("group")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
            params: m
                .get("params")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default(),
            x: m.get("x").and_then(Value::as_f64),
            result_files: files,
            figures,
            verdict,
        })
    }

    pub fn meets(&self) -> Option<bool> {
        self.verdict.as_ref().map(|v| v.meets)
    }

    pub fn to_json(&self) -> Value {
        let f = &self.figures;
        let get = |k: &str| f.get(k).cloned().unwrap_or(Value::Null);
        json!({
            "index": self.index,
            "label": self.label,
            "group": self.group,
            "params": self.params,
            "x": self.x,
            "result_file": self.result_files.first(),
            "result_files": self.result_files,
            "completed": get("completed"),
            "failed": get("failed"),
            "duration": get("duration"),
            "request_throughput": get("request_throughput"),
            "output_throughput": get("output_throughput"),
            "total_token_throughput": get("total_token_throughput"),
            "request_goodput": get("request_goodput"),
            "slo_attainment": get("slo_attainment"),
            "saturated": get("saturated"),
            "partial": get("partial"),
            "meets_slo": self.meets(),
            "slo_why": self.verdict.as_ref().map(|v| v.why.clone()),
            "slo_values": self.verdict.as_ref().map(|v| Value::Object(v.values.clone())),
            "latency_ms": latency(f),
            "figures": f,
        })
    }
}

/// `summary.csv`: one row per point (its settings, verdict and every figure), as
/// `vllm bench sweep` writes one for spreadsheets and pandas.
pub fn csv(points: &[Point]) -> String {
    let mut params: Vec<String> = Vec::new();
    let mut figs: Vec<String> = Vec::new();
    for p in points {
        for k in p.params.keys() {
            if !params.contains(k) {
                params.push(k.clone());
            }
        }
        for k in p.figures.keys() {
            if !figs.contains(k) {
                figs.push(k.clone());
            }
        }
    }
    let mut o = String::new();
    let mut head: Vec<String> = vec!["index".into(), "label".into(), "result_file".into()];
    head.extend(params.iter().cloned());
    head.extend(["meets_slo".to_string(), "slo_why".to_string()]);
    head.extend(figs.iter().cloned());
    o.push_str(
        &head
            .iter()
            .map(|h| csv_field(h))
            .collect::<Vec<_>>()
            .join(","),
    );
    o.push('\n');
    let cell = |v: Option<&Value>| match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => csv_field(s),
        Some(v) => csv_field(&v.to_string()),
    };
    for p in points {
        let mut row = vec![
            p.index.to_string(),
            csv_field(&p.label),
            csv_field(p.result_files.first().map_or("", String::as_str)),
        ];
        row.extend(params.iter().map(|k| cell(p.params.get(k))));
        row.push(p.meets().map_or(String::new(), |m| m.to_string()));
        row.push(csv_field(p.verdict.as_ref().map_or("", |v| v.why.as_str())));
        row.extend(figs.iter().map(|k| cell(p.figures.get(k))));
        o.push_str(&row.join(","));
        o.push('\n');
    }
    o
}

/// RFC 4180 quoting where needed.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// The console table: one line per point, in the order run.
pub fn table(points: &[Point], variable: &str, constraints: &[Constraint]) -> String {
    let mut o = String::new();
    let head = |s: &str| format!("{s:>10}");
    let x_name = match variable {
        "max_concurrency" => "conc",
        _ => "rate",
    };
    let _ = write!(
        o,
        "{:>3} {}{}{}",
        "#",
        head(x_name),
        head("req/s"),
        head("out tok/s")
    );
    let has_goodput = points.iter().any(|p| {
        p.figures
            .get("request_goodput")
            .is_some_and(|v| !v.is_null())
    });
    if has_goodput {
        o.push_str(&head("goodput"));
    }
    let mut cols: Vec<String> = vec![
        "p99_ttft_ms".into(),
        "p99_tpot_ms".into(),
        "p99_itl_ms".into(),
    ];
    for c in constraints {
        if !cols.contains(&c.key()) {
            cols.push(c.key());
        }
    }
    for c in &cols {
        let short = c.trim_end_matches("_ms").replace('_', " ");
        let _ = write!(o, "{:>12}", short);
    }
    if !constraints.is_empty() {
        o.push_str("  SLO");
    }
    o.push('\n');
    for p in points {
        let x = p.x.map_or("inf".to_string(), fmt);
        let f = |k: &str| {
            p.figures
                .get(k)
                .and_then(Value::as_f64)
                .map_or("-".to_string(), fmt)
        };
        let _ = write!(
            o,
            "{:>3} {:>10}{:>10}{:>10}",
            p.index,
            x,
            f("request_throughput"),
            f("output_throughput")
        );
        if has_goodput {
            let _ = write!(o, "{:>10}", f("request_goodput"));
        }
        for c in &cols {
            let _ = write!(o, "{:>12}", f(c));
        }
        match p.meets() {
            Some(true) => o.push_str("  pass"),
            Some(false) => o.push_str("  FAIL"),
            None => {}
        }
        if p.figures.get("saturated") == Some(&json!(true)) {
            o.push_str("  saturated (stopped early)");
        }
        o.push('\n');
    }
    o
}

/// Four significant figures, no exponent.
fn fmt(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return format!("{v}");
    }
    let digits = (3 - v.abs().log10().floor() as i32).clamp(0, 3) as usize;
    format!("{v:.digits$}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(ttft: f64, sat: bool) -> Map<String, Value> {
        let mut m = json!({
            "completed": 10, "failed": 0, "duration": 2.0, "request_throughput": 5.0,
            "request_goodput": 4.0, "p99_ttft_ms": ttft, "p50_ttft_ms": ttft / 2.0,
            "mean_tpot_ms": 3.0, "model_id": "m", "ttfts": [1, 2]
        })
        .as_object()
        .unwrap()
        .clone();
        if sat {
            m.insert("saturation".into(), json!({"reason": "x"}));
        }
        m
    }

    #[test]
    fn runs_average_and_saturation_sticks() {
        let f = figures(&[run(10.0, false), run(30.0, true)]);
        assert_eq!(f["p99_ttft_ms"], json!(20.0));
        assert_eq!(f["saturated"], json!(true));
        assert!(!f.contains_key("model_id") && !f.contains_key("ttfts"));
        // 4 good/s over 2 s of 10 sent.
        assert_eq!(f["slo_attainment"], json!(0.8));
        let lat = latency(&f);
        assert_eq!(lat["ttft"]["p99"], json!(20.0));
        assert_eq!(lat["tpot"]["mean"], json!(3.0));
        assert!(lat.get("itl").is_none());
    }

    #[test]
    fn the_table_shows_every_point_and_verdict() {
        let c = slo::parse("ttft:15", 99.0).unwrap();
        let points: Vec<Point> = [(1.0, 10.0), (2.0, 30.0)]
            .iter()
            .enumerate()
            .map(|(i, &(x, ttft))| {
                let figures = figures(&[run(ttft, false)]);
                let verdict = Some(slo::judge(std::slice::from_ref(&c), &figures, 0.01));
                Point {
                    index: i,
                    label: String::new(),
                    group: String::new(),
                    params: Map::new(),
                    x: Some(x),
                    result_files: vec![],
                    figures,
                    verdict,
                }
            })
            .collect();
        let t = table(&points, "request_rate", &[c]);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 3, "{t}");
        assert!(
            lines[0].contains("rate")
                && lines[0].contains("p99 ttft")
                && lines[0].contains("goodput")
        );
        assert!(
            lines[1].ends_with("pass") && lines[2].ends_with("FAIL"),
            "{t}"
        );
        assert!(lines[2].contains("30.00"), "{t}");
        assert_eq!(points[1].to_json()["meets_slo"], json!(false));
    }

    #[test]
    fn the_csv_has_a_column_per_setting_and_figure() {
        let mut a = Point {
            index: 0,
            label: "a, b".into(),
            group: String::new(),
            params: json!({"request_rate": 5}).as_object().unwrap().clone(),
            x: Some(5.0),
            result_files: vec!["point-000.json".into()],
            figures: figures(&[run(10.0, false)]),
            verdict: None,
        };
        a.verdict = Some(slo::judge(
            &[slo::parse("ttft:5", 99.0).unwrap()],
            &a.figures,
            0.01,
        ));
        let text = csv(&[a]);
        let mut lines = text.lines();
        let head: Vec<&str> = lines.next().unwrap().split(',').collect();
        assert_eq!(
            &head[..6],
            [
                "index",
                "label",
                "result_file",
                "request_rate",
                "meets_slo",
                "slo_why"
            ]
        );
        assert!(head.contains(&"p99_ttft_ms"));
        let row = lines.next().unwrap();
        assert!(
            row.starts_with("0,\"a, b\",point-000.json,5,false,p99_ttft_ms = 10.0 ms > 5 ms,"),
            "{row}"
        );
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
    }

    #[test]
    fn a_point_reads_back_as_written_and_is_judged_again() {
        let figs = figures(&[run(10.0, false)]);
        let c = slo::parse("ttft:15", 99.0).unwrap();
        let verdict = Some(slo::judge(std::slice::from_ref(&c), &figs, 0.01));
        let p = Point {
            index: 3,
            label: "request_rate=2".into(),
            group: "g".into(),
            params: json!({"request_rate": 2}).as_object().unwrap().clone(),
            x: Some(2.0),
            result_files: vec!["point-003.json".into()],
            figures: figs,
            verdict,
        };
        let back = Point::from_json(&p.to_json(), std::slice::from_ref(&c), 0.01).unwrap();
        assert_eq!(
            (back.index, back.x, &back.label, &back.group),
            (3, Some(2.0), &p.label, &p.group)
        );
        assert_eq!(back.figures, p.figures);
        assert_eq!(back.result_files, p.result_files);
        assert_eq!(back.meets(), Some(true));
        // A tighter SLO judges the same figures again.
        let tight = slo::parse("ttft:5", 99.0).unwrap();
        assert_eq!(
            Point::from_json(&p.to_json(), &[tight], 0.01)
                .unwrap()
                .meets(),
            Some(false)
        );
        assert!(Point::from_json(&json!({"index": 1}), &[], 0.01).is_none());
    }

    #[test]
    fn numbers_keep_four_figures() {
        assert_eq!(fmt(1234.56), "1235");
        assert_eq!(fmt(12.3456), "12.35");
        assert_eq!(fmt(0.012345), "0.012");
    }
}

//! `servebench compare A.json B.json [...]`: result files side by side, each figure's change
//! against the first result in %, marked better or worse (lower latencies and failures are
//! better, higher throughputs are).
//!
//! A file may hold one result object or several, one per line (`--append-result`, SGLang's
//! `--output-file`); every object counts as one result.

use std::fmt::Write;
use std::path::Path;

use anyhow::{bail, Context};
use serde_json::{Map, Value};

/// One result and the name the table gives it (`file`, or `file#line` for JSON lines).
pub type Named = (String, Map<String, Value>);

/// Which way is good for a figure.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Better {
    Higher,
    Lower,
    /// Neither (e.g. the duration): the change is shown without a mark.
    Neither,
}

/// A row: its label, which way is better, and the keys it is found under (vLLM's first,
/// then SGLang's).
struct Row {
    label: String,
    better: Better,
    keys: Vec<String>,
}

fn rows() -> Vec<Row> {
    let row = |label: &str, better, keys: &[&str]| Row {
        label: label.into(),
        better,
        keys: keys.iter().map(|k| k.to_string()).collect(),
    };
    let mut rows = vec![
        row("Successful requests", Better::Higher, &["completed"]),
        row("Failed requests", Better::Lower, &["failed"]),
        row("Benchmark duration (s)", Better::Neither, &["duration"]),
        row(
            "Request throughput (req/s)",
            Better::Higher,
            &["request_throughput"],
        ),
        row(
            "Request goodput (req/s)",
            Better::Higher,
            &["request_goodput"],
        ),
        row(
            "Output token throughput (tok/s)",
            Better::Higher,
            &["output_throughput"],
        ),
        row(
            "Total token throughput (tok/s)",
            Better::Higher,
            &["total_token_throughput", "total_throughput"],
        ),
        row(
            "Peak output token throughput (tok/s)",
            Better::Higher,
            &["max_output_tokens_per_s"],
        ),
    ];
    for (metric, label, sglang) in [
        ("ttft", "TTFT", "ttft"),
        ("tpot", "TPOT", "tpot"),
        ("itl", "ITL", "itl"),
        ("e2el", "E2EL", "e2e_latency"),
    ] {
        for (stat, stat_label) in [("mean", "Mean"), ("median", "Median"), ("p99", "P99")] {
            rows.push(Row {
                label: format!("{stat_label} {label} (ms)"),
                better: Better::Lower,
                keys: vec![format!("{stat}_{metric}_ms"), format!("{stat}_{sglang}_ms")],
            });
        }
    }
    rows
}

/// Every result object in the file, in order.
pub fn read_results(path: &Path) -> anyhow::Result<Vec<Named>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the result file {}", path.display()))?;
    let text = python_literals_as_strings(&text);
    let mut out = Vec::new();
    let stream = serde_json::Deserializer::from_str(&text).into_iter::<Value>();
    for (i, v) in stream.enumerate() {
        let v = v.with_context(|| {
            format!(
                "{} is not a JSON result file (or JSON lines of results)",
                path.display()
            )
        })?;
        let Value::Object(m) = v else {
            bail!("{}: result {} is not a JSON object", path.display(), i + 1);
        };
        out.push((path.display().to_string(), m));
    }
    if out.is_empty() {
        bail!("{} holds no result", path.display());
    }
    if out.len() > 1 {
        for (i, r) in out.iter_mut().enumerate() {
            r.0 = format!("{}#{}", r.0, i + 1);
        }
    }
    Ok(out)
}

/// Python's `json.dump` writes `Infinity`, `-Infinity` and `NaN` bare (SGLang's files do),
/// which JSON parsers refuse: outside strings they become the strings "inf", "-inf", "nan".
fn python_literals_as_strings(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.contains("Infinity") && !text.contains("NaN") {
        return text.into();
    }
    let mut out = String::with_capacity(text.len() + 16);
    let (mut in_string, mut escaped) = (false, false);
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
            rest = &rest[c.len_utf8()..];
            continue;
        }
        let mut replaced = false;
        for (lit, with) in [
            ("-Infinity", "\"-inf\""),
            ("Infinity", "\"inf\""),
            ("NaN", "\"nan\""),
        ] {
            if let Some(r) = rest.strip_prefix(lit) {
                out.push_str(with);
                rest = r;
                replaced = true;
                break;
            }
        }
        if !replaced {
            in_string = c == '"';
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    out.into()
}

fn number(m: &Map<String, Value>, keys: &[String]) -> Option<f64> {
    keys.iter().find_map(|k| m.get(k).and_then(Value::as_f64))
}

fn fmt_value(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

/// The change of `v` against `base` in %, with its mark.
fn delta(base: f64, v: f64, better: Better) -> String {
    if base == v {
        return "+0.0%".into();
    }
    let pct = if base == 0.0 {
        None
    } else {
        Some((v - base) / base.abs() * 100.0)
    };
    let up = v > base;
    let mark = match (better, up) {
        (Better::Neither, _) => "",
        (Better::Higher, true) | (Better::Lower, false) => " better",
        _ => " worse",
    };
    match pct {
        Some(p) => format!("{p:+.1}%{mark}"),
        None => format!("{}{mark}", if up { "up from 0" } else { "down to 0" }),
    }
}

/// What identifies a result's run, shown under the table.
fn describe(m: &Map<String, Value>) -> String {
    let get = |k: &str| match m.get(k) {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Null) | None => None,
        Some(v) => Some(v.to_string()),
    };
    [
        ("backend", get("backend")),
        ("model", get("model_id")),
        ("rate", get("request_rate")),
        ("max concurrency", get("max_concurrency")),
        ("prompts", get("num_prompts")),
        ("date", get("date")),
    ]
    .into_iter()
    .filter_map(|(k, v)| v.map(|v| format!("{k} {v}")))
    .collect::<Vec<_>>()
    .join(", ")
}

/// Column names: A, B, …, Z, then R27, R28, ….
fn column_name(i: usize) -> String {
    if i < 26 {
        ((b'A' + i as u8) as char).to_string()
    } else {
        format!("R{}", i + 1)
    }
}

/// The comparison table as text.
pub fn render(results: &[Named]) -> String {
    let mut table: Vec<Vec<String>> = Vec::new();
    let mut header = vec!["Metric".to_string()];
    for i in 0..results.len() {
        header.push(column_name(i));
        if i > 0 {
            header.push(format!("{} vs A", column_name(i)));
        }
    }
    table.push(header);
    for row in rows() {
        let values: Vec<Option<f64>> = results.iter().map(|r| number(&r.1, &row.keys)).collect();
        if values.iter().all(Option::is_none) {
            continue;
        }
        let mut line = vec![row.label.clone()];
        for (i, v) in values.iter().enumerate() {
            line.push(v.map_or("-".into(), fmt_value));
            if i > 0 {
                line.push(match (values[0], v) {
                    (Some(b), Some(v)) => delta(b, *v, row.better),
                    _ => "-".into(),
                });
            }
        }
        table.push(line);
    }
    let widths: Vec<usize> = (0..table[0].len())
        .map(|c| {
            table
                .iter()
                .map(|l| l[c].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut o = String::new();
    for (n, line) in table.iter().enumerate() {
        for (c, cell) in line.iter().enumerate() {
            let pad = widths[c] - cell.chars().count();
            if c == 0 {
                let _ = write!(o, "{cell}{}", " ".repeat(pad));
            } else {
                let _ = write!(o, "  {}{cell}", " ".repeat(pad));
            }
        }
        o.push('\n');
        if n == 0 {
            o.push_str(&"-".repeat(widths.iter().sum::<usize>() + 2 * (widths.len() - 1)));
            o.push('\n');
        }
    }
    o.push('\n');
    for (i, (name, m)) in results.iter().enumerate() {
        let d = describe(m);
        let _ = writeln!(
            o,
            "{} = {name}{}",
            column_name(i),
            if d.is_empty() {
                String::new()
            } else {
                format!(" ({d})")
            }
        );
    }
    o
}

/// `servebench compare FILE...`.
pub fn run(args: &crate::cli::CompareArgs) -> anyhow::Result<()> {
    let mut results = Vec::new();
    for f in &args.files {
        results.extend(read_results(f)?);
    }
    if results.len() < 2 {
        bail!(
            "compare needs at least two results; the files given hold {}",
            results.len()
        );
    }
    print!("{}", render(&results));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deltas_are_marked_by_direction() {
        assert_eq!(delta(100.0, 110.0, Better::Higher), "+10.0% better");
        assert_eq!(delta(100.0, 110.0, Better::Lower), "+10.0% worse");
        assert_eq!(delta(100.0, 75.0, Better::Lower), "-25.0% better");
        assert_eq!(delta(10.0, 12.0, Better::Neither), "+20.0%");
        assert_eq!(delta(0.0, 3.0, Better::Lower), "up from 0 worse");
        assert_eq!(delta(5.0, 5.0, Better::Higher), "+0.0%");
    }

    #[test]
    fn python_literals_outside_strings_only() {
        let s = python_literals_as_strings(
            r#"{"a": Infinity, "b": "NaN \" Infinity", "c": -Infinity, "d": NaN}"#,
        );
        let v: Value = serde_json::from_str(&s).unwrap();
        assert_eq!(v["a"], "inf");
        assert_eq!(v["b"], "NaN \" Infinity");
        assert_eq!(v["c"], "-inf");
        assert_eq!(v["d"], "nan");
    }

    #[test]
    fn table_has_only_rows_some_result_has() {
        let a = serde_json::json!({"completed": 10, "mean_ttft_ms": 20.0});
        let b = serde_json::json!({"completed": 8, "mean_ttft_ms": 10.0, "request_goodput": null});
        let named = |n: &str, v: &Value| (n.to_string(), v.as_object().unwrap().clone());
        let t = render(&[named("a.json", &a), named("b.json", &b)]);
        assert!(t.contains("Successful requests"), "{t}");
        assert!(t.contains("-20.0% worse"), "{t}");
        assert!(t.contains("-50.0% better"), "{t}");
        assert!(!t.contains("goodput"), "null goodput is no row: {t}");
        assert!(t.contains("A = a.json") && t.contains("B = b.json"), "{t}");
    }
}

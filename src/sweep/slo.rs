//! SLO constraints of a sweep (`--slo`): a statistic of a latency metric at or under a limit,
//! read from a point's result keys (`p99_ttft_ms`, `mean_tpot_ms`, ...).

use serde_json::{json, Map, Value};

use crate::report::pyfmt::percentile_word;

pub const METRICS: [&str; 4] = ["ttft", "tpot", "itl", "e2el"];

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Stat {
    Mean,
    Median,
    Percentile(f64),
}

impl Stat {
    pub fn word(self) -> String {
        match self {
            Stat::Mean => "mean".into(),
            Stat::Median => "median".into(),
            Stat::Percentile(p) => format!("p{}", percentile_word(p)),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Constraint {
    pub metric: &'static str,
    pub stat: Stat,
    pub limit_ms: f64,
}

impl Constraint {
    /// The result key holding the value: `p99_ttft_ms`.
    pub fn key(&self) -> String {
        format!("{}_{}_ms", self.stat.word(), self.metric)
    }

    /// `p99 TTFT ≤ 500 ms`.
    pub fn text(&self) -> String {
        format!(
            "{} {} ≤ {} ms",
            self.stat.word(),
            self.metric.to_uppercase(),
            crate::report::pyfmt::py_float(self.limit_ms)
        )
    }

    pub fn to_json(&self) -> Value {
        json!({
            "metric": self.metric,
            "stat": self.stat.word(),
            "limit_ms": self.limit_ms,
            "key": self.key(),
        })
    }
}

/// Parses one `--slo` item: `[STAT_]METRIC:MS` (STAT: mean, median, pNN; without one, the
/// `default_percentile`), or vLLM's SLA form `STAT_METRIC_ms<=MS`.
pub fn parse(item: &str, default_percentile: f64) -> Result<Constraint, String> {
    let bad = |why: &str| {
        format!(
            "--slo '{item}': {why} (write METRIC:MS or STAT_METRIC:MS, e.g. ttft:500, p99_itl:50, mean_tpot:30, with METRIC one of {})",
            METRICS.join(", ")
        )
    };
    let (name, limit) = match item.split_once("<=") {
        Some((k, v)) => (k.trim().strip_suffix("_ms").unwrap_or(k.trim()), v),
        None => item.split_once(':').ok_or_else(|| bad("no ':'"))?,
    };
    let limit_ms: f64 = limit
        .trim()
        .parse()
        .map_err(|_| bad(&format!("'{limit}' is not a number of milliseconds")))?;
    if !(limit_ms.is_finite() && limit_ms > 0.0) {
        return Err(bad("the limit must be a positive number of milliseconds"));
    }
    let (stat, metric) = match name.trim().rsplit_once('_') {
        Some((stat, metric)) => (
            parse_stat(stat).ok_or_else(|| bad(&format!("'{stat}' is not mean, median or pNN")))?,
            metric,
        ),
        None => (Stat::Percentile(default_percentile), name.trim()),
    };
    let metric = METRICS
        .into_iter()
        .find(|m| *m == metric.to_ascii_lowercase())
        .ok_or_else(|| bad(&format!("'{metric}' is not a metric")))?;
    Ok(Constraint {
        metric,
        stat,
        limit_ms,
    })
}

fn parse_stat(s: &str) -> Option<Stat> {
    match s.to_ascii_lowercase().as_str() {
        "mean" | "avg" => Some(Stat::Mean),
        "median" | "p50" => Some(Stat::Median),
        s => {
            let p: f64 = s.strip_prefix('p')?.parse().ok()?;
            (p > 0.0 && p < 100.0).then_some(Stat::Percentile(p))
        }
    }
}

/// How a point measured up.
#[derive(Clone, Debug, PartialEq)]
pub struct Verdict {
    pub meets: bool,
    /// Worst constraint's value / limit − 1: ≤ 0 meets it. Infinite when a value is missing.
    pub margin: f64,
    /// Each constraint's key and measured value (null when missing).
    pub values: Map<String, Value>,
    /// Why it fails, in words (empty when it meets the SLO).
    pub why: String,
}

/// Judges a point's figures: every constraint met, the run not stopped for saturation, and
/// at most `max_failed` of its requests failed.
pub fn judge(constraints: &[Constraint], figures: &Map<String, Value>, max_failed: f64) -> Verdict {
    let mut values = Map::new();
    let mut margin = f64::NEG_INFINITY;
    let mut why = Vec::new();
    for c in constraints {
        let v = figures.get(&c.key()).and_then(Value::as_f64);
        values.insert(c.key(), json!(v));
        let m = match v {
            Some(v) => v / c.limit_ms - 1.0,
            None => f64::INFINITY,
        };
        if m > 0.0 {
            why.push(match v {
                Some(v) => format!("{} = {:.1} ms > {} ms", c.key(), v, c.limit_ms),
                None => format!("{} not measured", c.key()),
            });
        }
        margin = margin.max(m);
    }
    let completed = figures
        .get("completed")
        .and_then(Value::as_f64)
        .unwrap_or(0.0);
    let failed = figures.get("failed").and_then(Value::as_f64).unwrap_or(0.0);
    let share = if completed + failed > 0.0 {
        failed / (completed + failed)
    } else {
        1.0
    };
    if share > max_failed {
        why.push(format!("{:.1} % of requests failed", share * 100.0));
        margin = margin.max(f64::INFINITY);
    }
    if figures.get("saturated").and_then(Value::as_bool) == Some(true) {
        why.push("stopped early: saturated".into());
        margin = f64::INFINITY;
    }
    Verdict {
        meets: why.is_empty(),
        margin,
        values,
        why: why.join("; "),
    }
}

/// The percentiles and metrics the points must report for these constraints and the curves.
pub fn needed_percentiles(constraints: &[Constraint]) -> Vec<f64> {
    let mut ps = vec![50.0, 90.0, 99.0];
    for c in constraints {
        if let Stat::Percentile(p) = c.stat {
            if !ps.contains(&p) {
                ps.push(p);
            }
        }
    }
    ps.sort_by(f64::total_cmp);
    ps
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spelling_parses() {
        let p = |s| parse(s, 99.0).unwrap();
        assert_eq!(p("ttft:500").key(), "p99_ttft_ms");
        assert_eq!(p("p99.9_itl:50").key(), "p99.9_itl_ms");
        assert_eq!(p("mean_tpot:30").key(), "mean_tpot_ms");
        assert_eq!(p("median_e2el:2000").key(), "median_e2el_ms");
        assert_eq!(p("p90_ttft_ms<=250").key(), "p90_ttft_ms");
        assert_eq!(p("p90_ttft_ms<=250").limit_ms, 250.0);
        assert_eq!(parse("e2el:1", 95.0).unwrap().key(), "p95_e2el_ms");
        assert_eq!(p("ttft:500").text(), "p99 TTFT ≤ 500.0 ms");
    }

    #[test]
    fn bad_constraints_say_what_is_wrong() {
        let e = |s| parse(s, 99.0).unwrap_err();
        assert!(e("ttft").contains("no ':'"));
        assert!(e("ttft:fast").contains("'fast' is not a number"));
        assert!(e("ttft:-5").contains("positive"));
        assert!(e("latency:5").contains("'latency' is not a metric"));
        assert!(e("q99_ttft:5").contains("'q99' is not mean"));
        assert!(e("p100_ttft:5").contains("'p100'"));
    }

    #[test]
    fn judging_a_point() {
        let cs = [
            parse("ttft:100", 99.0).unwrap(),
            parse("mean_tpot:10", 99.0).unwrap(),
        ];
        let fig = |ttft: f64, tpot: f64, failed: u64| {
            json!({"p99_ttft_ms": ttft, "mean_tpot_ms": tpot, "completed": 100, "failed": failed})
                .as_object()
                .unwrap()
                .clone()
        };
        let ok = judge(&cs, &fig(80.0, 5.0, 0), 0.01);
        assert!(ok.meets && (ok.margin + 0.2).abs() < 1e-12, "{ok:?}");
        let slow = judge(&cs, &fig(80.0, 12.0, 0), 0.01);
        assert!(!slow.meets && (slow.margin - 0.2).abs() < 1e-12);
        assert!(
            slow.why.contains("mean_tpot_ms = 12.0 ms > 10 ms"),
            "{}",
            slow.why
        );
        let failing = judge(&cs, &fig(80.0, 5.0, 5), 0.01);
        assert!(!failing.meets && failing.why.contains("failed"));
        let mut sat = fig(80.0, 5.0, 0);
        sat.insert("saturated".into(), json!(true));
        assert!(!judge(&cs, &sat, 0.01).meets);
        let missing = judge(
            &cs,
            &json!({"completed": 0, "failed": 0})
                .as_object()
                .unwrap()
                .clone(),
            1.0,
        );
        assert!(!missing.meets && missing.margin.is_infinite());
        assert_eq!(
            needed_percentiles(&[parse("p99.9_itl:5", 99.0).unwrap()]),
            vec![50.0, 90.0, 99.0, 99.9]
        );
    }
}

//! Goodput (DistServe's definition, as `vllm bench serve` and SGLang's bench implement it): a
//! request is good when it succeeded and every given SLO holds (value ≤ SLO). vLLM reports
//! good requests per second; SGLang also reports the share of all sent requests that were good
//! (failures count against it) and that share per SLO.

use crate::record::RequestRecord;

/// A metric an SLO can be set on, in the order vLLM checks them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SloMetric {
    Ttft,
    Tpot,
    E2el,
}

impl SloMetric {
    pub fn key(self) -> &'static str {
        match self {
            SloMetric::Ttft => "ttft",
            SloMetric::Tpot => "tpot",
            SloMetric::E2el => "e2el",
        }
    }

    fn from_key(k: &str) -> Option<Self> {
        [SloMetric::Ttft, SloMetric::Tpot, SloMetric::E2el]
            .into_iter()
            .find(|m| m.key() == k)
    }

    /// The request's value for this metric in ns. vLLM counts TPOT as 0 for requests with at
    /// most one output token (so they always meet a TPOT SLO).
    fn value_ns(self, r: &RequestRecord) -> f64 {
        match self {
            SloMetric::Ttft => r.ttft_ns as f64,
            SloMetric::E2el => r.latency_ns as f64,
            SloMetric::Tpot if r.output_tokens > 1 => {
                r.latency_ns.saturating_sub(r.ttft_ns) as f64 / (r.output_tokens - 1) as f64
            }
            SloMetric::Tpot => 0.0,
        }
    }
}

/// `--goodput` SLOs in milliseconds, in the order given (a repeated key keeps its first
/// position and its last value, as a Python dict does).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Slos(pub Vec<(SloMetric, f64)>);

/// Parse `--goodput ttft:MS tpot:MS e2el:MS` with vLLM's checks and messages.
pub fn parse(pairs: &[String]) -> Result<Slos, String> {
    let mut raw: Vec<(String, f64)> = Vec::new();
    for pair in pairs {
        let parsed = match pair.split(':').collect::<Vec<_>>()[..] {
            [name, value] => value.trim().parse::<f64>().ok().map(|v| (name, v)),
            _ => None,
        };
        let Some((name, value)) = parsed else {
            return Err(
                "Invalid format found for service level objectives. Specify service level \
                 objectives for goodput as \"KEY:VALUE\" pairs, where the key is a metric name, \
                 and the value is a number in milliseconds."
                    .into(),
            );
        };
        match raw.iter_mut().find(|(k, _)| k == name) {
            Some(slot) => slot.1 = value,
            None => raw.push((name.to_string(), value)),
        }
    }
    let mut slos = Vec::with_capacity(raw.len());
    for (name, value) in raw {
        let shown = crate::report::pyfmt::py_float(value);
        let Some(metric) = SloMetric::from_key(&name) else {
            return Err(format!(
                "Invalid metric name found, {name}: {shown}. The service level objective name \
                 should be one of ['ttft', 'tpot', 'e2el']. "
            ));
        };
        if value.is_nan() || value < 0.0 {
            return Err(format!(
                "Invalid value found, {name}: {shown}. The service level objective value should \
                 be non-negative."
            ));
        }
        slos.push((metric, value));
    }
    Ok(Slos(slos))
}

/// What the SLOs say about a run.
#[derive(Clone, Debug, PartialEq)]
pub struct Goodput {
    pub slos: Slos,
    /// Successful requests that met every SLO.
    pub good: u64,
    /// Requests sent (successful or not): SGLang's denominator for attainment.
    pub sent: u64,
    /// good / duration (vLLM's and SGLang's `request_goodput`).
    pub request_goodput: f64,
    /// good / sent, a fraction (SGLang's `slo_attainment`).
    pub attainment: f64,
    /// Per SLO: the fraction of sent requests that met it.
    pub by_metric: Vec<(SloMetric, f64)>,
}

/// Evaluate `slos` over the run's records (`output_tokens` filled).
pub fn evaluate(slos: &Slos, records: &[RequestRecord], duration_s: f64) -> Goodput {
    let meets = |r: &RequestRecord, (m, slo_ms): (SloMetric, f64)| {
        r.success && m.value_ns(r) <= slo_ms * 1e6
    };
    let good = records
        .iter()
        .filter(|r| slos.0.iter().all(|&s| meets(r, s)))
        .count() as u64;
    let sent = records.len() as u64;
    let share = |n: u64| n as f64 / sent.max(1) as f64;
    let by_metric = slos
        .0
        .iter()
        .map(|&s| {
            (
                s.0,
                share(records.iter().filter(|r| meets(r, s)).count() as u64),
            )
        })
        .collect();
    Goodput {
        slos: slos.clone(),
        good,
        sent,
        request_goodput: if duration_s > 0.0 {
            good as f64 / duration_s
        } else {
            0.0
        },
        attainment: share(good),
        by_metric,
    }
}

/// Python's `format(v, "g")`: 6 significant digits, trailing zeros dropped, exponent form
/// outside [1e-4, 1e6). SGLang prints the SLOs this way.
pub fn py_g(v: f64) -> String {
    if !v.is_finite() {
        return crate::report::pyfmt::py_float(v);
    }
    if v == 0.0 {
        return "0".into();
    }
    let exp = v.abs().log10().floor() as i32;
    // Rounding to 6 digits may carry into the next power of ten (999999.5 → 1e+06).
    let sci = format!("{v:.5e}");
    let (mantissa, e) = sci.split_once('e').unwrap_or((&sci, "0"));
    let e: i32 = e.parse().unwrap_or(exp);
    if !(-4..6).contains(&e) {
        let m = trim_zeros(mantissa);
        let sign = if e < 0 { '-' } else { '+' };
        return format!("{m}e{sign}{:02}", e.abs());
    }
    let decimals = (5 - e).max(0) as usize;
    trim_zeros(&format!("{v:.decimals$}")).to_string()
}

fn trim_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(ok: bool, ttft_ms: u64, latency_ms: u64, tokens: u32) -> RequestRecord {
        RequestRecord {
            success: ok,
            ttft_ns: ttft_ms * 1_000_000,
            latency_ns: latency_ms * 1_000_000,
            output_tokens: tokens,
            ..Default::default()
        }
    }

    fn strings(xs: &[&str]) -> Vec<String> {
        xs.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn parses_like_vllm_and_names_what_is_wrong() {
        let s = parse(&strings(&["e2el:20000", "ttft:500", "ttft:250"])).unwrap();
        assert_eq!(
            s.0,
            vec![(SloMetric::E2el, 20000.0), (SloMetric::Ttft, 250.0)]
        );
        let e = parse(&strings(&["itl:10"])).unwrap_err();
        assert!(
            e.starts_with("Invalid metric name found, itl: 10.0."),
            "{e}"
        );
        let e = parse(&strings(&["ttft:-5"])).unwrap_err();
        assert!(e.starts_with("Invalid value found, ttft: -5.0."), "{e}");
        for bad in ["ttft", "ttft:fast", "ttft:1:2", ""] {
            let e = parse(&strings(&[bad])).unwrap_err();
            assert!(e.contains("\"KEY:VALUE\""), "{bad}: {e}");
        }
        assert_eq!(parse(&[]).unwrap(), Slos::default());
    }

    #[test]
    fn a_request_is_good_only_if_it_succeeded_and_met_every_slo() {
        let rs = [
            rec(true, 100, 400, 4),  // tpot 100: good
            rec(true, 400, 500, 2),  // ttft misses
            rec(true, 100, 1100, 3), // tpot 500 and e2el 1100 miss
            rec(true, 250, 250, 1),  // one token: tpot counts as 0
            rec(false, 0, 0, 0),     // failed: never good
        ];
        let slos = parse(&strings(&["ttft:300", "tpot:150", "e2el:1000"])).unwrap();
        let g = evaluate(&slos, &rs, 2.0);
        assert_eq!((g.good, g.sent), (2, 5));
        assert_eq!(g.request_goodput, 1.0);
        assert_eq!(g.attainment, 0.4);
        assert_eq!(
            g.by_metric,
            vec![
                (SloMetric::Ttft, 0.6),
                (SloMetric::Tpot, 0.6),
                (SloMetric::E2el, 0.6)
            ]
        );
        // An SLO exactly at the value holds (value ≤ SLO).
        let edge = evaluate(&parse(&strings(&["ttft:100"])).unwrap(), &rs[..1], 1.0);
        assert_eq!(edge.good, 1);
    }

    #[test]
    fn g_format_matches_python() {
        for (v, s) in [
            (2000.0, "2000"),
            (50.5, "50.5"),
            (0.25, "0.25"),
            (1e6, "1e+06"),
            (123456.0, "123456"),
            (1234567.0, "1.23457e+06"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (0.0, "0"),
        ] {
            assert_eq!(py_g(v), s, "{v}");
        }
    }
}

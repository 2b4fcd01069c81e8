//! What a sweep runs: value lists and ranges for `--sweep-request-rate` and
//! `--sweep-max-concurrency`, and vLLM-style parameter files (`--sweep-params`), multiplied
//! out into points.

use std::path::Path;

use serde_json::{Map, Value};

/// Most points one list may expand to: a typo such as `1:100000:1` should not start a week of
/// runs.
pub const MAX_VALUES: usize = 1000;

/// One point's settings: flag name (without `--`) and value, in a fixed order, plus the
/// `_benchmark_name` of its parameter set when the file gave one.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Params {
    pub name: Option<String>,
    pub pairs: Vec<(String, Value)>,
}

impl Params {
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// `request_rate=10, max_concurrency=64` (the summary's label).
    pub fn label(&self) -> String {
        let mut parts: Vec<String> = self.name.iter().cloned().collect();
        parts.extend(self.pairs.iter().map(|(k, v)| {
            let v = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            format!("{}={v}", k.replace('-', "_"))
        }));
        parts.join(", ")
    }

    /// The flags that set these values on a `serve` command line.
    pub fn to_args(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (k, v) in &self.pairs {
            let flag = format!("--{}", k.replace('_', "-"));
            match v {
                Value::Bool(true) => out.push(flag),
                Value::Bool(false) => {}
                Value::Null => {}
                Value::String(s) => out.extend([flag, s.clone()]),
                Value::Array(items) => {
                    out.push(flag);
                    out.extend(items.iter().map(|i| match i {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    }));
                }
                other => out.extend([flag, other.to_string()]),
            }
        }
        out
    }
}

/// Parses a value list: comma-separated numbers and ranges. `A:B:S` is A, A+S, … up to B
/// (inclusive); `A:B*F` is A, A·F, A·F², … up to B; `inf` is an unbounded rate.
pub fn parse_list(flag: &str, text: &str, integer: bool) -> Result<Vec<f64>, String> {
    let mut out = Vec::new();
    for item in text.split(',').map(str::trim) {
        if item.is_empty() {
            return Err(format!(
                "{flag} '{text}': an empty item (two commas, or a trailing one)"
            ));
        }
        let num = |s: &str| -> Result<f64, String> {
            let v: f64 = s.trim().parse().map_err(|_| {
                format!("{flag} '{text}': '{s}' is not a number (write values as 1,2,4 or ranges as 1:16:1 or 1:64*2)")
            })?;
            if v.is_nan() || v <= 0.0 {
                return Err(format!("{flag} '{text}': {s} must be positive"));
            }
            if integer && (v.fract() != 0.0 || v.is_infinite()) {
                return Err(format!("{flag} '{text}': {s} must be a whole number"));
            }
            Ok(v)
        };
        match item.split(':').collect::<Vec<_>>()[..] {
            [one] => out.push(num(one)?),
            [a, rest] => {
                let Some((b, f)) = rest.split_once('*') else {
                    return Err(format!(
                        "{flag} '{text}': '{item}' is not a range: write START:STOP:STEP or START:STOP*FACTOR"
                    ));
                };
                let (a, b, f) = (num(a)?, num(b)?, num_factor(flag, text, f)?);
                push_range(&mut out, a, b, |v| v * f, flag, text)?;
            }
            [a, b, s] => {
                let (a, b, s) = (num(a)?, num(b)?, num(s)?);
                push_range(&mut out, a, b, |v| v + s, flag, text)?;
            }
            _ => return Err(format!("{flag} '{text}': '{item}' has too many ':'")),
        }
        if out.len() > MAX_VALUES {
            return Err(format!(
                "{flag} '{text}' expands to more than {MAX_VALUES} values"
            ));
        }
    }
    if integer {
        for v in out.iter_mut() {
            *v = v.round();
        }
    }
    Ok(out)
}

fn num_factor(flag: &str, text: &str, f: &str) -> Result<f64, String> {
    match f.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && v > 1.0 => Ok(v),
        _ => Err(format!(
            "{flag} '{text}': the factor '{f}' must be a number above 1"
        )),
    }
}

fn push_range(
    out: &mut Vec<f64>,
    a: f64,
    b: f64,
    next: impl Fn(f64) -> f64,
    flag: &str,
    text: &str,
) -> Result<(), String> {
    if !a.is_finite() || !b.is_finite() || b < a {
        return Err(format!(
            "{flag} '{text}': a range runs from a finite start up to a finite stop at or above it"
        ));
    }
    let mut v = a;
    // A relative slack, so that 0.1:0.3:0.1 ends at 0.3 despite rounding.
    while v <= b * (1.0 + 1e-9) {
        out.push(round_decimal(v));
        if out.len() > MAX_VALUES {
            return Err(format!(
                "{flag} '{text}' expands to more than {MAX_VALUES} values"
            ));
        }
        v = next(v);
    }
    Ok(())
}

/// 0.30000000000000004 → 0.3: range steps print as the user wrote them.
fn round_decimal(v: f64) -> f64 {
    let r = (v * 1e9).round() / 1e9;
    if (r - v).abs() <= 1e-9 * v.abs().max(1.0) {
        r
    } else {
        v
    }
}

/// Reads a vLLM `--bench-params`-style file: a list of objects (flag name → value), or an
/// object of named sets (`{"short": {...}, "long": {...}}`, each named by its key).
pub fn read_params_file(path: &Path) -> Result<Vec<Params>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read --sweep-params {}: {e}", path.display()))?;
    let v: Value = serde_json::from_str(&text)
        .map_err(|e| format!("--sweep-params {} is not JSON: {e}", path.display()))?;
    params_from_json(&v).map_err(|e| format!("--sweep-params {}: {e}", path.display()))
}

pub fn params_from_json(v: &Value) -> Result<Vec<Params>, String> {
    let sets: Vec<(Option<String>, &Map<String, Value>)> = match v {
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, item)| match item {
                Value::Object(m) => Ok((None, m)),
                _ => Err(format!("item {i} is not an object of flag → value")),
            })
            .collect::<Result<_, _>>()?,
        Value::Object(named) => named
            .iter()
            .map(|(name, item)| match item {
                Value::Object(m) => Ok((Some(name.clone()), m)),
                _ => Err(format!("'{name}' is not an object of flag → value")),
            })
            .collect::<Result<_, _>>()?,
        _ => return Err("expected a list of objects or an object of named objects".into()),
    };
    if sets.is_empty() {
        return Err("it holds no parameter sets".into());
    }
    let mut out = Vec::new();
    for (name, m) in sets {
        let mut p = Params {
            name,
            pairs: Vec::new(),
        };
        for (k, val) in m {
            if k == "_benchmark_name" {
                p.name = Some(match val {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                });
                continue;
            }
            let key = k.trim_start_matches('-').replace('_', "-");
            if matches!(val, Value::Object(_)) {
                return Err(format!(
                    "'{k}': a value must be a number, string, boolean or list"
                ));
            }
            p.pairs.push((key, val.clone()));
        }
        out.push(p);
    }
    let mut names: Vec<&str> = out.iter().filter_map(|p| p.name.as_deref()).collect();
    names.sort_unstable();
    if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
        return Err(format!("the name '{}' is used twice", w[0]));
    }
    Ok(out)
}

/// Every combination: each parameter set × each max concurrency × each request rate (the rate
/// varies fastest, so one set's rate curve runs in one stretch).
pub fn product(sets: &[Params], concurrency: &[f64], rates: &[f64]) -> Vec<Params> {
    let base = [Params::default()];
    let sets = if sets.is_empty() { &base[..] } else { sets };
    let mut out = Vec::new();
    for set in sets {
        let cs: Vec<Option<f64>> = if concurrency.is_empty() {
            vec![None]
        } else {
            concurrency.iter().copied().map(Some).collect()
        };
        for c in &cs {
            let rs: Vec<Option<f64>> = if rates.is_empty() {
                vec![None]
            } else {
                rates.iter().copied().map(Some).collect()
            };
            for r in &rs {
                let mut p = set.clone();
                if let Some(c) = c {
                    p.pairs
                        .push(("max-concurrency".into(), Value::from(*c as u64)));
                }
                if let Some(r) = r {
                    p.pairs.push(("request-rate".into(), rate_value(*r)));
                }
                out.push(p);
            }
        }
    }
    out
}

/// A rate as JSON: a number, or the string "inf".
pub fn rate_value(r: f64) -> Value {
    if r.is_infinite() {
        Value::from("inf")
    } else if r.fract() == 0.0 && r < 1e15 {
        Value::from(r as u64)
    } else {
        Value::from(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn lists_and_ranges_expand() {
        let f = |t| parse_list("--x", t, false);
        assert_eq!(f("1,2,4").unwrap(), vec![1.0, 2.0, 4.0]);
        assert_eq!(f("2:10:4").unwrap(), vec![2.0, 6.0, 10.0]);
        assert_eq!(f("0.1:0.3:0.1").unwrap(), vec![0.1, 0.2, 0.3]);
        assert_eq!(
            f("1:64*2").unwrap(),
            vec![1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0]
        );
        assert_eq!(
            f("1:10*3, 50, inf").unwrap(),
            vec![1.0, 3.0, 9.0, 50.0, f64::INFINITY]
        );
        assert_eq!(
            parse_list("--c", "8:32:8", true).unwrap(),
            vec![8.0, 16.0, 24.0, 32.0]
        );
    }

    #[test]
    fn bad_lists_say_what_is_wrong() {
        let f = |t, int| parse_list("--sweep-request-rate", t, int).unwrap_err();
        assert!(f("1,,2", false).contains("empty item"));
        assert!(f("fast", false).contains("'fast' is not a number"));
        assert!(f("-1", false).contains("must be positive"));
        assert!(f("1.5", true).contains("whole number"));
        assert!(f("10:1:1", false).contains("stop at or above"));
        assert!(f("1:10*1", false).contains("factor"));
        assert!(f("1:10", false).contains("START:STOP:STEP"));
        assert!(f("1:100000:1", false).contains("more than 1000"));
        assert!(f("1:inf:1", false).contains("finite"));
        assert!(f("1:2:3:4", false).contains("too many"));
    }

    #[test]
    fn params_files_in_both_vllm_shapes() {
        let list = params_from_json(&json!([
            {"random_input_len": 128, "_benchmark_name": "short"},
            {"--random-input-len": 1024, "ignore_eos": true}
        ]))
        .unwrap();
        assert_eq!(list[0].name.as_deref(), Some("short"));
        assert_eq!(list[0].pairs, vec![("random-input-len".into(), json!(128))]);
        assert_eq!(
            list[1].to_args(),
            vec!["--random-input-len", "1024", "--ignore-eos"]
        );
        let named = params_from_json(&json!({"a": {"seed": 1}, "b": {"seed": 2}})).unwrap();
        assert_eq!(named[1].label(), "b, seed=2");
        assert!(params_from_json(&json!([1]))
            .unwrap_err()
            .contains("item 0"));
        assert!(params_from_json(&json!([]))
            .unwrap_err()
            .contains("no parameter sets"));
        assert!(
            params_from_json(&json!([{"_benchmark_name": "x"}, {"_benchmark_name": "x"}]))
                .unwrap_err()
                .contains("used twice")
        );
        assert!(params_from_json(&json!([{"a": {"b": 1}}]))
            .unwrap_err()
            .contains("'a'"));
    }

    #[test]
    fn the_product_varies_the_rate_fastest() {
        let sets = params_from_json(&json!([{"seed": 1}, {"seed": 2}])).unwrap();
        let pts = product(&sets, &[8.0, 16.0], &[1.0, f64::INFINITY]);
        assert_eq!(pts.len(), 8);
        assert_eq!(pts[0].label(), "seed=1, max_concurrency=8, request_rate=1");
        assert_eq!(
            pts[1].label(),
            "seed=1, max_concurrency=8, request_rate=inf"
        );
        assert_eq!(
            pts[7].to_args(),
            vec![
                "--seed",
                "2",
                "--max-concurrency",
                "16",
                "--request-rate",
                "inf"
            ]
        );
        assert_eq!(product(&[], &[], &[2.5]).len(), 1);
    }
}

//! Per-turn figures for multi-turn runs: how TTFT, TPOT and end-to-end latency change as a
//! conversation's history grows (and, with a prefix cache, as more of it is cached). Neither
//! anchor reports this; SGLang flattens the turns into one list.
//!
//! The statistics are exact ([`Exact`], numpy's definitions over the turn's records): a run
//! has few turns and each turn's records are already in memory.

use std::fmt::Write;

use serde_json::{json, Value};

use crate::record::RequestRecord;
use crate::stats::Exact;

#[derive(Clone, Debug, PartialEq)]
pub struct TurnFigures {
    /// 1 for a conversation's first turn.
    pub turn: u32,
    pub completed: u64,
    pub failed: u64,
    /// Mean prompt tokens of the completed requests (the server's count where it sent one).
    pub mean_input_tokens: f64,
    pub ttft: Exact,
    pub tpot: Exact,
    pub e2el: Exact,
}

/// The figures of each turn, first turn first; `turns[i]` is record i's turn (0-based).
pub fn per_turn(records: &[RequestRecord], turns: &[u32]) -> Vec<TurnFigures> {
    let last = turns.iter().copied().max().unwrap_or(0);
    (0..=last)
        .map(|t| {
            let of_turn = || {
                records
                    .iter()
                    .zip(turns)
                    .filter(move |(_, &k)| k == t)
                    .map(|(r, _)| r)
            };
            let ok: Vec<&RequestRecord> = of_turn().filter(|r| r.success).collect();
            let completed = ok.len() as u64;
            let ms = |ns: u64| ns as f64 / 1e6;
            TurnFigures {
                turn: t + 1,
                completed,
                failed: of_turn().count() as u64 - completed,
                mean_input_tokens: if ok.is_empty() {
                    0.0
                } else {
                    ok.iter().map(|r| r.prompt_len as f64).sum::<f64>() / ok.len() as f64
                },
                ttft: Exact::of_ms(ok.iter().map(|r| ms(r.ttft_ns)).collect()),
                tpot: Exact::of_ms(ok.iter().filter_map(|r| r.tpot_ns()).map(ms).collect()),
                e2el: Exact::of_ms(ok.iter().map(|r| ms(r.latency_ns)).collect()),
            }
        })
        .collect()
}

/// The console table, printed after the result block.
pub fn render(turns: &[TurnFigures]) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "{:=^50}", " Per-turn Latency (ms) ");
    let _ = writeln!(
        o,
        "{:>4} {:>6} {:>6} {:>8} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "Turn",
        "OK",
        "Failed",
        "In tok",
        "TTFT avg",
        "TTFT p99",
        "TPOT avg",
        "E2EL avg",
        "E2EL p99"
    );
    for t in turns {
        let _ = writeln!(
            o,
            "{:>4} {:>6} {:>6} {:>8.1} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>9.2}",
            t.turn,
            t.completed,
            t.failed,
            t.mean_input_tokens,
            t.ttft.mean,
            t.ttft.p99,
            t.tpot.mean,
            t.e2el.mean,
            t.e2el.p99
        );
    }
    let _ = writeln!(o, "{}", "=".repeat(50));
    o
}

/// The `per_turn` list of the result file.
pub fn to_json(turns: &[TurnFigures]) -> Value {
    let stat = |s: &Exact, m: &str| {
        json!({
            format!("mean_{m}_ms"): s.mean,
            format!("median_{m}_ms"): s.median,
            format!("p99_{m}_ms"): s.p99,
        })
    };
    Value::Array(
        turns
            .iter()
            .map(|t| {
                let mut o = json!({
                    "turn": t.turn,
                    "completed": t.completed,
                    "failed": t.failed,
                    "mean_input_tokens": t.mean_input_tokens,
                });
                for (s, m) in [(&t.ttft, "ttft"), (&t.tpot, "tpot"), (&t.e2el, "e2el")] {
                    if let (Value::Object(o), Value::Object(add)) = (&mut o, stat(s, m)) {
                        o.extend(add);
                    }
                }
                o
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(success: bool, prompt: u32, ttft_ms: u64, e2el_ms: u64, out: u32) -> RequestRecord {
        RequestRecord {
            success,
            prompt_len: prompt,
            ttft_ns: ttft_ms * 1_000_000,
            latency_ns: e2el_ms * 1_000_000,
            output_tokens: out,
            ..Default::default()
        }
    }

    #[test]
    fn figures_are_grouped_by_turn() {
        let records = [
            rec(true, 10, 100, 200, 11),
            rec(true, 40, 20, 120, 11),
            rec(true, 12, 300, 400, 11),
            rec(false, 0, 0, 0, 0),
            rec(true, 44, 40, 140, 1),
        ];
        let turns = [0, 1, 0, 1, 1];
        let f = per_turn(&records, &turns);
        assert_eq!(f.len(), 2);
        assert_eq!((f[0].turn, f[0].completed, f[0].failed), (1, 2, 0));
        assert_eq!((f[1].turn, f[1].completed, f[1].failed), (2, 2, 1));
        assert_eq!(f[0].mean_input_tokens, 11.0);
        assert_eq!(f[1].mean_input_tokens, 42.0);
        assert_eq!(f[0].ttft.mean, 200.0);
        assert_eq!(f[0].ttft.median, 200.0);
        // numpy: 100 + 0.99 × (300 − 100).
        assert!((f[0].ttft.p99 - 298.0).abs() < 1e-9);
        // TPOT only where more than one token came: (120 − 20) / 10.
        assert_eq!(f[1].tpot.mean, 10.0);
        assert_eq!(f[1].e2el.mean, 130.0);

        let v = to_json(&f);
        assert_eq!(v[1]["turn"], 2);
        assert_eq!(v[1]["failed"], 1);
        assert_eq!(v[0]["mean_ttft_ms"], 200.0);
        let table = render(&f);
        assert_eq!(table.lines().count(), 5, "{table}");
        assert!(table.lines().nth(3).unwrap().trim_start().starts_with("2 "));
    }
}

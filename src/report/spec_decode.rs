//! vLLM's speculative-decoding figures: the server's Prometheus counters
//! (`vllm:spec_decode_*_total`, summed over their label sets) read from `/metrics` before and
//! after the run; the figures are the differences.

use std::collections::BTreeMap;

/// Counter values at one moment.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SpecCounters {
    pub drafts: f64,
    pub draft_tokens: f64,
    pub accepted_tokens: f64,
    /// Accepted tokens by draft position (the `position` label).
    pub accepted_per_position: BTreeMap<u32, f64>,
}

/// What the run added, as vLLM reports it.
#[derive(Clone, Debug, PartialEq)]
pub struct SpecDecode {
    /// Accepted / draft tokens, in %.
    pub acceptance_rate: f64,
    /// 1 + accepted tokens per draft.
    pub acceptance_length: f64,
    pub drafts: u64,
    pub draft_tokens: u64,
    pub accepted_tokens: u64,
    /// Per draft position: accepted at that position / drafts, in %.
    pub per_position: Vec<f64>,
}

/// The spec-decode counters of a Prometheus text exposition; None when it has none (the
/// server does not speculate, or is not vLLM).
pub fn parse_counters(text: &str) -> Option<SpecCounters> {
    let mut c = SpecCounters::default();
    let mut seen = false;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (name, labels, rest) = match line.find('{') {
            Some(open) => {
                let Some(close) = line[open..].find('}').map(|i| open + i) else {
                    continue;
                };
                (&line[..open], &line[open + 1..close], &line[close + 1..])
            }
            None => match line.split_once(char::is_whitespace) {
                Some((name, rest)) => (name, "", rest),
                None => continue,
            },
        };
        let Some(value) = rest
            .split_whitespace()
            .next()
            .and_then(|v| v.parse::<f64>().ok())
        else {
            continue;
        };
        match name {
            "vllm:spec_decode_num_drafts_total" => c.drafts += value,
            "vllm:spec_decode_num_draft_tokens_total" => c.draft_tokens += value,
            "vllm:spec_decode_num_accepted_tokens_total" => c.accepted_tokens += value,
            "vllm:spec_decode_num_accepted_tokens_per_pos_total" => {
                let Some(pos) = label(labels, "position").and_then(|p| p.parse().ok()) else {
                    continue;
                };
                *c.accepted_per_position.entry(pos).or_default() += value;
            }
            _ => continue,
        }
        seen = true;
    }
    seen.then_some(c)
}

fn label<'a>(labels: &'a str, key: &str) -> Option<&'a str> {
    labels.split(',').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k.trim() == key).then(|| v.trim().trim_matches('"'))
    })
}

/// The run's figures from the counters before and after; None when no draft was made.
pub fn figures(before: &SpecCounters, after: &SpecCounters) -> Option<SpecDecode> {
    let drafts = after.drafts - before.drafts;
    let draft_tokens = after.draft_tokens - before.draft_tokens;
    let accepted = after.accepted_tokens - before.accepted_tokens;
    if drafts <= 0.0 || draft_tokens <= 0.0 {
        return None;
    }
    let per_position = after
        .accepted_per_position
        .iter()
        .map(|(pos, v)| {
            let was = before
                .accepted_per_position
                .get(pos)
                .copied()
                .unwrap_or(0.0);
            (v - was) / drafts * 100.0
        })
        .collect();
    Some(SpecDecode {
        acceptance_rate: accepted / draft_tokens * 100.0,
        acceptance_length: 1.0 + accepted / drafts,
        drafts: drafts as u64,
        draft_tokens: draft_tokens as u64,
        accepted_tokens: accepted.max(0.0) as u64,
        per_position,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const BEFORE: &str = r#"# HELP vllm:spec_decode_num_drafts_total Number of spec decoding drafts.
# TYPE vllm:spec_decode_num_drafts_total counter
vllm:spec_decode_num_drafts_total{engine="0",model_name="m"} 100.0
vllm:spec_decode_num_draft_tokens_total{engine="0",model_name="m"} 300.0
vllm:spec_decode_num_accepted_tokens_total{engine="0",model_name="m"} 150.0
vllm:spec_decode_num_accepted_tokens_per_pos_total{engine="0",model_name="m",position="0"} 80.0
vllm:spec_decode_num_accepted_tokens_per_pos_total{engine="0",model_name="m",position="1"} 50.0
vllm:spec_decode_num_accepted_tokens_per_pos_total{engine="0",model_name="m",position="2"} 20.0
vllm:num_requests_running{engine="0",model_name="m"} 3.0
"#;

    /// After the run, with a second engine whose counters add to the same totals.
    const AFTER: &str = r#"vllm:spec_decode_num_drafts_total{engine="0",model_name="m"} 250.0
vllm:spec_decode_num_drafts_total{engine="1",model_name="m"} 50.0
vllm:spec_decode_num_draft_tokens_total{engine="0",model_name="m"} 900.0
vllm:spec_decode_num_accepted_tokens_total{engine="0",model_name="m"} 450.0
vllm:spec_decode_num_accepted_tokens_per_pos_total{engine="0",model_name="m",position="0"} 240.0
vllm:spec_decode_num_accepted_tokens_per_pos_total{engine="0",model_name="m",position="1"} 150.0
vllm:spec_decode_num_accepted_tokens_per_pos_total{engine="0",model_name="m",position="2"} 60.0
"#;

    #[test]
    fn counters_are_summed_and_differenced() {
        let before = parse_counters(BEFORE).unwrap();
        let after = parse_counters(AFTER).unwrap();
        assert_eq!(after.drafts, 300.0);
        let f = figures(&before, &after).unwrap();
        assert_eq!(
            (f.drafts, f.draft_tokens, f.accepted_tokens),
            (200, 600, 300)
        );
        assert!((f.acceptance_rate - 50.0).abs() < 1e-9);
        assert!((f.acceptance_length - 2.5).abs() < 1e-9);
        let want = [80.0, 50.0, 20.0];
        assert_eq!(f.per_position.len(), 3);
        for (got, want) in f.per_position.iter().zip(want) {
            assert!((got - want).abs() < 1e-9, "{:?}", f.per_position);
        }
    }

    #[test]
    fn servers_without_speculation_have_no_figures() {
        assert_eq!(
            parse_counters("vllm:num_requests_running 1\n# HELP x\n"),
            None
        );
        assert_eq!(parse_counters("garbage {{{ 1 2 3\n"), None);
        let c = parse_counters(BEFORE).unwrap();
        assert_eq!(figures(&c, &c), None);
    }
}

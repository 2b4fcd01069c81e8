//! The result block of `vllm bench serve`, character for character (trailing spaces included:
//! Python's `{:<10}` pads values on the right).

use std::fmt::Write;

use super::pyfmt::percentile_word;
use super::{Figures, RunInfo};

pub(crate) fn center(title: &str, fill: char) -> String {
    // Python's "{:{c}^50}": extra fill goes to the right.
    let len = title.chars().count();
    if len >= 50 {
        return title.to_string();
    }
    let left = (50 - len) / 2;
    let right = 50 - len - left;
    let f = |n| std::iter::repeat_n(fill, n).collect::<String>();
    format!("{}{title}{}", f(left), f(right))
}

fn int_line(out: &mut String, label: &str, v: impl std::fmt::Display) {
    let _ = writeln!(out, "{label:<40} {:<10}", v.to_string());
}

fn float_line(out: &mut String, label: &str, v: f64) {
    let _ = writeln!(out, "{label:<40} {:<10}", format!("{v:.2}"));
}

/// The block printed after the run.
pub fn render(info: &RunInfo, f: &Figures) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "{}", center(" Serving Benchmark Result ", '='));
    int_line(&mut o, "Successful requests:", f.completed);
    int_line(&mut o, "Failed requests:", f.failed);
    if let Some(c) = info.max_concurrency {
        int_line(&mut o, "Maximum request concurrency:", c);
    }
    if info.request_rate.is_finite() {
        float_line(&mut o, "Request rate configured (RPS):", info.request_rate);
    }
    float_line(&mut o, "Benchmark duration (s):", f.duration_s);
    int_line(&mut o, "Total input tokens:", f.total_input);
    int_line(&mut o, "Total generated tokens:", f.total_output);
    float_line(&mut o, "Request throughput (req/s):", f.request_throughput);
    if let Some(g) = &f.goodput {
        float_line(&mut o, "Request goodput (req/s):", g.request_goodput);
    }
    float_line(
        &mut o,
        "Output token throughput (tok/s):",
        f.output_throughput,
    );
    float_line(
        &mut o,
        "Peak output token throughput (tok/s):",
        f.max_output_tokens_per_s,
    );
    float_line(
        &mut o,
        "Peak concurrent requests:",
        f.max_concurrent_requests as f64,
    );
    float_line(
        &mut o,
        "Total token throughput (tok/s):",
        f.total_token_throughput,
    );
    for b in &f.blocks {
        let (name, s) = (b.key.label(), &b.summary);
        let _ = writeln!(o, "{}", center(b.key.header(), '-'));
        float_line(&mut o, &format!("Mean {name} (ms):"), s.mean_ms);
        float_line(&mut o, &format!("Median {name} (ms):"), s.median_ms);
        for &(p, v) in &s.percentiles_ms {
            float_line(&mut o, &format!("P{} {name} (ms):", percentile_word(p)), v);
        }
    }
    if let Some(sd) = &f.spec_decode {
        let _ = writeln!(o, "{}", center("Speculative Decoding", '-'));
        float_line(&mut o, "Acceptance rate (%):", sd.acceptance_rate);
        float_line(&mut o, "Acceptance length:", sd.acceptance_length);
        int_line(&mut o, "Drafts:", sd.drafts);
        int_line(&mut o, "Draft tokens:", sd.draft_tokens);
        int_line(&mut o, "Accepted tokens:", sd.accepted_tokens);
        let _ = writeln!(o, "Per-position acceptance (%):");
        for (i, rate) in sd.per_position.iter().enumerate() {
            float_line(&mut o, &format!("  Position {i}:"), *rate);
        }
    }
    let _ = writeln!(o, "{}", "=".repeat(50));
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{MetricBlock, MetricKey};
    use crate::stats::Summary;

    #[test]
    fn headers_center_like_python() {
        assert_eq!(
            center(" Serving Benchmark Result ", '='),
            "============ Serving Benchmark Result ============"
        );
        assert_eq!(
            center("Time to First Token", '-'),
            "---------------Time to First Token----------------"
        );
        assert_eq!(
            center("Time per Output Token (excl. 1st token)", '-'),
            "-----Time per Output Token (excl. 1st token)------"
        );
        assert_eq!(
            center("Inter-token Latency", '-'),
            "---------------Inter-token Latency----------------"
        );
    }

    #[test]
    fn block_layout_matches_vllm() {
        let info = RunInfo {
            backend: "vllm".into(),
            label: None,
            model_id: "m".into(),
            tokenizer_id: "t".into(),
            tokenizer_extra: Default::default(),
            num_prompts: 2,
            metadata: vec![],
            request_rate: f64::INFINITY,
            burstiness: 1.0,
            max_concurrency: Some(256),
            percentile_metrics: vec![MetricKey::Ttft],
            percentiles: vec![99.0, 99.9],
            ramp_up: None,
        };
        let f = Figures {
            completed: 2000,
            failed: 0,
            total_input: 512000,
            total_output: 256000,
            duration_s: 12.3456,
            request_throughput: 162.0,
            output_throughput: 20736.5,
            total_token_throughput: 62209.5,
            max_output_tokens_per_s: 25600.0,
            max_concurrent_requests: 256,
            blocks: vec![MetricBlock {
                key: MetricKey::Ttft,
                summary: Summary {
                    count: 2000,
                    mean_ms: 50.123,
                    median_ms: 50.1,
                    std_ms: 0.2,
                    percentiles_ms: vec![(99.0, 51.0), (99.9, 52.555)],
                },
            }],
            spec_decode: None,
            goodput: None,
        };
        let expected = "\
============ Serving Benchmark Result ============
Successful requests:                     2000      
Failed requests:                         0         
Maximum request concurrency:             256       
Benchmark duration (s):                  12.35     
Total input tokens:                      512000    
Total generated tokens:                  256000    
Request throughput (req/s):              162.00    
Output token throughput (tok/s):         20736.50  
Peak output token throughput (tok/s):    25600.00  
Peak concurrent requests:                256.00    
Total token throughput (tok/s):          62209.50  
---------------Time to First Token----------------
Mean TTFT (ms):                          50.12     
Median TTFT (ms):                        50.10     
P99 TTFT (ms):                           51.00     
P99.9 TTFT (ms):                         52.55     
==================================================
";
        // 52.555 rounds to 52.55 or 52.56 depending on binary representation; Python and Rust
        // both round the exact binary value, so they agree.
        assert_eq!(render(&info, &f), expected);

        let mut with_spec = f.clone();
        with_spec.spec_decode = Some(crate::report::spec_decode::SpecDecode {
            acceptance_rate: 62.5,
            acceptance_length: 2.875,
            drafts: 80,
            draft_tokens: 240,
            accepted_tokens: 150,
            per_position: vec![90.0, 60.0],
        });
        let section = "\
---------------Speculative Decoding---------------
Acceptance rate (%):                     62.50     
Acceptance length:                       2.88      
Drafts:                                  80        
Draft tokens:                            240       
Accepted tokens:                         150       
Per-position acceptance (%):
  Position 0:                            90.00     
  Position 1:                            60.00     
==================================================
";
        let out = render(&info, &with_spec);
        assert!(out.ends_with(section), "{out}");
    }
}

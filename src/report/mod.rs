//! Turning a finished run into figures, the console block and the result file.

pub mod compare;
pub mod console;
pub mod failures;
pub mod goodput;
pub mod health;
pub mod html;
pub mod pyfmt;
pub mod result_json;
pub mod sglang;
pub mod spec_decode;
pub mod sweep_html;
pub mod turns;

use crate::record::{Metrics, RequestRecord};
use crate::stats::{Distribution, Summary};

/// A metric vLLM can report percentiles for, in vLLM's report order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetricKey {
    Ttft,
    Tpot,
    Itl,
    E2el,
    ClientQueueTime,
    E2elIncludingClientQueue,
}

impl MetricKey {
    pub const ALL: [MetricKey; 6] = [
        MetricKey::Ttft,
        MetricKey::Tpot,
        MetricKey::Itl,
        MetricKey::E2el,
        MetricKey::ClientQueueTime,
        MetricKey::E2elIncludingClientQueue,
    ];

    /// The name used in `--percentile-metrics` and in result keys.
    pub fn key(self) -> &'static str {
        match self {
            MetricKey::Ttft => "ttft",
            MetricKey::Tpot => "tpot",
            MetricKey::Itl => "itl",
            MetricKey::E2el => "e2el",
            MetricKey::ClientQueueTime => "client_queue_time",
            MetricKey::E2elIncludingClientQueue => "e2el_including_client_queue",
        }
    }

    fn label(self) -> &'static str {
        match self {
            MetricKey::Ttft => "TTFT",
            MetricKey::Tpot => "TPOT",
            MetricKey::Itl => "ITL",
            MetricKey::E2el => "E2EL",
            MetricKey::ClientQueueTime => "Client Queue Time",
            MetricKey::E2elIncludingClientQueue => "E2EL incl. Client Queue",
        }
    }

    fn header(self) -> &'static str {
        match self {
            MetricKey::Ttft => "Time to First Token",
            MetricKey::Tpot => "Time per Output Token (excl. 1st token)",
            MetricKey::Itl => "Inter-token Latency",
            MetricKey::E2el => "End-to-end Latency",
            MetricKey::ClientQueueTime => "Client-side Queueing",
            MetricKey::E2elIncludingClientQueue => "Queue-inclusive End-to-end Latency",
        }
    }

    /// Parse `--percentile-metrics` (comma separated).
    pub fn parse_list(s: &str) -> Result<Vec<MetricKey>, String> {
        s.split(',')
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .map(|k| {
                MetricKey::ALL
                    .into_iter()
                    .find(|m| m.key() == k)
                    .ok_or_else(|| {
                        format!(
                            "--percentile-metrics: unknown metric '{k}'; choose from ttft, tpot, itl, e2el, client_queue_time, e2el_including_client_queue"
                        )
                    })
            })
            .collect()
    }
}

/// Parse `--metric-percentiles` (comma separated numbers in [0, 100]).
pub fn parse_percentiles(s: &str) -> Result<Vec<f64>, String> {
    s.split(',')
        .map(str::trim)
        .map(|p| match p.parse::<f64>() {
            Ok(v) if (0.0..=100.0).contains(&v) => Ok(v),
            _ => Err(format!(
                "--metric-percentiles: '{p}' is not a percentile between 0 and 100 (e.g. 50,90,99.9)"
            )),
        })
        .collect()
}

/// `--report-style`: whose result block the console shows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportStyle {
    #[default]
    Auto,
    Vllm,
    Sglang,
    Both,
}

impl ReportStyle {
    /// (vLLM's block, SGLang's block) for `backend`: auto picks SGLang's for its backends.
    pub fn blocks(self, backend: &str) -> (bool, bool) {
        match self {
            ReportStyle::Auto if backend.starts_with("sglang") => (false, true),
            ReportStyle::Auto | ReportStyle::Vllm => (true, false),
            ReportStyle::Sglang => (false, true),
            ReportStyle::Both => (true, true),
        }
    }
}

/// The run's configuration as the report and result file show it.
#[derive(Clone, Debug)]
pub struct RunInfo {
    pub backend: String,
    pub label: Option<String>,
    pub model_id: String,
    pub tokenizer_id: String,
    /// Tokenizer provenance and server alignment, appended at the end of the result file
    /// (`tokenizer_revision`, `tokenizer_sha256`, `skip_tokenizer_init`, `server_alignment`).
    pub tokenizer_extra: serde_json::Map<String, serde_json::Value>,
    pub num_prompts: usize,
    pub metadata: Vec<(String, String)>,
    pub request_rate: f64,
    pub burstiness: f64,
    pub max_concurrency: Option<usize>,
    pub percentile_metrics: Vec<MetricKey>,
    pub percentiles: Vec<f64>,
    /// `--ramp-up-strategy` and its rates, when the rate ramps.
    pub ramp_up: Option<crate::plan::RampUp>,
}

#[derive(Clone, Debug)]
pub struct MetricBlock {
    pub key: MetricKey,
    pub summary: Summary,
}

/// Everything the console block and the result file print.
#[derive(Clone, Debug, Default)]
pub struct Figures {
    pub completed: u64,
    pub failed: u64,
    pub total_input: u64,
    pub total_output: u64,
    pub duration_s: f64,
    pub request_throughput: f64,
    pub output_throughput: f64,
    pub total_token_throughput: f64,
    pub max_output_tokens_per_s: f64,
    pub max_concurrent_requests: u64,
    pub blocks: Vec<MetricBlock>,
    /// From the server's `/metrics`, when it speculates (set after the run by the caller).
    pub spec_decode: Option<spec_decode::SpecDecode>,
    /// With `--goodput` (set after the run by the caller, from [`goodput::evaluate`]).
    pub goodput: Option<goodput::Goodput>,
}

/// Compute the figures the way vLLM's `calculate_metrics` does, from the merged distributions
/// (percentiles) and the records (counts, peaks). `records` must have `output_tokens` filled.
pub fn figures(
    info: &RunInfo,
    records: &[RequestRecord],
    metrics: &Metrics,
    duration_ns: u64,
) -> Figures {
    let ok = || records.iter().filter(|r| r.success);
    let completed = ok().count() as u64;
    let total_input: u64 = ok().map(|r| r.prompt_len as u64).sum();
    let total_output: u64 = ok().map(|r| r.output_tokens as u64).sum();
    let dur = duration_ns as f64 / 1e9;
    let rate = |x: u64| if dur > 0.0 { x as f64 / dur } else { 0.0 };

    let with_queue = info.max_concurrency.is_some();
    let with_queue_e2el = with_queue && info.request_rate.is_finite();
    let queue_e2el = with_queue_e2el.then(|| {
        let mut d = Distribution::new();
        ok().for_each(|r| d.record(r.latency_ns + r.queue_ns()));
        d
    });
    let blocks = MetricKey::ALL
        .into_iter()
        .filter(|k| info.percentile_metrics.contains(k))
        .filter_map(|key| {
            let dist = match key {
                MetricKey::Ttft => &metrics.ttft,
                MetricKey::Tpot => &metrics.tpot,
                MetricKey::Itl => &metrics.itl,
                MetricKey::E2el => &metrics.e2el,
                MetricKey::ClientQueueTime if with_queue => &metrics.queue,
                MetricKey::E2elIncludingClientQueue => queue_e2el.as_ref()?,
                MetricKey::ClientQueueTime => return None,
            };
            Some(MetricBlock {
                key,
                summary: dist.summary(&info.percentiles),
            })
        })
        .collect();

    Figures {
        completed,
        failed: records.len() as u64 - completed,
        total_input,
        total_output,
        duration_s: dur,
        request_throughput: rate(completed),
        output_throughput: rate(total_output),
        total_token_throughput: rate(total_input + total_output),
        max_output_tokens_per_s: peak_output_events_per_s(records),
        max_concurrent_requests: peak_concurrency(records),
        blocks,
        spec_decode: None,
        goodput: None,
    }
}

/// vLLM's "peak output token throughput": output-carrying events (not tokens) counted in
/// one-second buckets from the first successful start.
fn peak_output_events_per_s(records: &[RequestRecord]) -> f64 {
    let Some(first) = records
        .iter()
        .filter(|r| r.success)
        .map(|r| r.start_ns)
        .min()
    else {
        return 0.0;
    };
    let mut buckets: Vec<u32> = Vec::new();
    let mut bump = |t: u64| {
        let b = ((t - first) / 1_000_000_000) as usize;
        if b >= buckets.len() {
            buckets.resize(b + 1, 0);
        }
        buckets[b] += 1;
    };
    for r in records.iter().filter(|r| r.success) {
        let mut t = r.start_ns + r.ttft_ns;
        bump(t);
        for gap in &r.itl_ns {
            t += gap;
            bump(t);
        }
    }
    buckets.into_iter().max().unwrap_or(0) as f64
}

/// Peak number of requests in flight, over half-open intervals [start, start + latency).
fn peak_concurrency(records: &[RequestRecord]) -> u64 {
    let mut edges: Vec<(u64, i32)> = records
        .iter()
        .filter(|r| r.success)
        .flat_map(|r| [(r.start_ns, 1), (r.start_ns + r.latency_ns, -1)])
        .collect();
    // A departure at the same instant as an arrival goes first.
    edges.sort_unstable();
    let (mut now, mut peak) = (0i64, 0i64);
    for (_, d) in edges {
        now += d as i64;
        peak = peak.max(now);
    }
    peak as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(start_ms: u64, ttft_ms: u64, itls_ms: &[u64]) -> RequestRecord {
        let ms = 1_000_000;
        RequestRecord {
            success: true,
            start_ns: start_ms * ms,
            ttft_ns: ttft_ms * ms,
            latency_ns: (ttft_ms + itls_ms.iter().sum::<u64>()) * ms,
            itl_ns: itls_ms.iter().map(|x| x * ms).collect(),
            output_tokens: itls_ms.len() as u32 + 1,
            ..Default::default()
        }
    }

    #[test]
    fn peaks_follow_vllm_definitions() {
        let rs = vec![
            rec(0, 100, &[100, 100]),   // events at 100, 200, 300 ms
            rec(250, 100, &[800, 100]), // events at 350, 1150, 1250 ms
            rec(1200, 10, &[10]),       // events at 1210, 1220 ms
        ];
        assert_eq!(peak_output_events_per_s(&rs), 4.0);
        // [0,300) and [250,1250) overlap; [1200,1220) overlaps the second one only.
        assert_eq!(peak_concurrency(&rs), 2);
        let touching = vec![rec(0, 10, &[]), rec(10, 10, &[])];
        assert_eq!(peak_concurrency(&touching), 1);
    }

    #[test]
    fn percentile_flags_parse_and_reject() {
        assert_eq!(
            parse_percentiles("25,50, 99.9").unwrap(),
            vec![25.0, 50.0, 99.9]
        );
        assert!(parse_percentiles("101").is_err());
        assert!(parse_percentiles("p99").is_err());
        assert_eq!(
            MetricKey::parse_list("ttft,e2el").unwrap(),
            vec![MetricKey::Ttft, MetricKey::E2el]
        );
        assert!(MetricKey::parse_list("ttft,latency")
            .unwrap_err()
            .contains("latency"));
    }
}

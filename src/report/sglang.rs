//! SGLang's report: the figures `python -m sglang.bench_serving` computes, its console block
//! and its `--output-file` JSONL line.
//!
//! Titles, keys and their order come from SGLang's `python/sglang/benchmark/serving.py`
//! (`benchmark()`'s prints and `result` dict; `bench_serving.py` is a shim over it), and the
//! goodput block and keys from the `--goodput` change to that file (`_print_goodput_metrics`,
//! `_goodput_result_fields`). SGLang's statistics are numpy's over every sample, so these are
//! computed exactly from the records, not from the histograms.

use std::fmt::Write as _;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use super::goodput::{py_g, Goodput};
use super::pyfmt::py_float;
use super::result_json::to_python_json;
use crate::record::RequestRecord;
use crate::stats::Exact;

/// Which inter-token latency a figure uses. The engine records vLLM's (one gap per output
/// event), except for SGLang's native `/generate`, where it records SGLang's split (an event
/// bringing Δ tokens adds Δ samples of gap/Δ) because the server's running token count says
/// how many tokens each event brought.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ItlDefinition {
    PerEvent,
    PerToken,
}

/// One request's ITL samples in ns under `def`. Per token, an OpenAI stream does not say how
/// many tokens each event carried: when a request has more tokens than events, the extra
/// tokens are spread evenly over its gaps (the first event counted as one token).
pub fn itl_samples(r: &RequestRecord, def: ItlDefinition) -> Vec<f64> {
    let gaps = &r.itl_ns;
    let tokens_after_first = r.output_tokens.saturating_sub(1) as usize;
    if def == ItlDefinition::PerEvent || gaps.is_empty() || tokens_after_first <= gaps.len() {
        return gaps.iter().map(|&g| g as f64).collect();
    }
    let (base, extra) = (
        tokens_after_first / gaps.len(),
        tokens_after_first % gaps.len(),
    );
    let mut out = Vec::with_capacity(tokens_after_first);
    for (i, &g) in gaps.iter().enumerate() {
        let delta = base + usize::from(i < extra);
        out.extend(std::iter::repeat_n(g as f64 / delta as f64, delta));
    }
    out
}

/// Everything SGLang's block and JSONL line show.
#[derive(Clone, Debug, PartialEq)]
pub struct SglangFigures {
    pub completed: u64,
    pub total_input: u64,
    pub total_output: u64,
    /// Output tokens counted by the tokenizer on the generated text (SGLang's "retokenized").
    pub total_output_retokenized: u64,
    pub duration_s: f64,
    pub request_throughput: f64,
    pub input_throughput: f64,
    pub output_throughput: f64,
    pub total_throughput: f64,
    pub e2e: Exact,
    pub ttft: Exact,
    pub tpot: Exact,
    pub itl: Exact,
    /// Sum of E2E latencies over the duration (Little's law: mean requests in flight).
    pub concurrency: f64,
    pub accept_length: Option<f64>,
    pub max_output_tokens_per_s: f64,
    pub max_concurrent_requests: u64,
}

/// SGLang's `calculate_metrics` over the records. `retokenized[i]` is record i's generated text
/// counted by the tokenizer; the peaks come from the vLLM figures.
pub fn figures(
    records: &[RequestRecord],
    retokenized: &[u32],
    duration_s: f64,
    peaks: (f64, u64),
    accept_length: Option<f64>,
) -> SglangFigures {
    let ok: Vec<(usize, &RequestRecord)> = records
        .iter()
        .enumerate()
        .filter(|(_, r)| r.success)
        .collect();
    let ms = |ns: u64| ns as f64 / 1e6;
    let total_input: u64 = ok.iter().map(|(_, r)| r.prompt_len as u64).sum();
    let total_output: u64 = ok.iter().map(|(_, r)| r.output_tokens as u64).sum();
    let per_s = |x: f64| {
        if duration_s > 0.0 {
            x / duration_s
        } else {
            0.0
        }
    };
    let e2e: Vec<f64> = ok.iter().map(|(_, r)| ms(r.latency_ns)).collect();
    SglangFigures {
        completed: ok.len() as u64,
        total_input,
        total_output,
        total_output_retokenized: ok
            .iter()
            .map(|&(i, _)| retokenized.get(i).copied().unwrap_or(0) as u64)
            .sum(),
        duration_s,
        request_throughput: per_s(ok.len() as f64),
        input_throughput: per_s(total_input as f64),
        output_throughput: per_s(total_output as f64),
        total_throughput: per_s((total_input + total_output) as f64),
        concurrency: per_s(e2e.iter().sum::<f64>() / 1e3),
        e2e: Exact::of_ms(e2e),
        ttft: Exact::of_ms(ok.iter().map(|(_, r)| ms(r.ttft_ns)).collect()),
        tpot: Exact::of_ms(
            ok.iter()
                .filter(|(_, r)| r.output_tokens > 1)
                .map(|(_, r)| {
                    ms(r.latency_ns.saturating_sub(r.ttft_ns)) / (r.output_tokens - 1) as f64
                })
                .collect(),
        ),
        itl: Exact::of_ms(
            ok.iter()
                .flat_map(|(_, r)| r.itl_ns.iter().map(|&g| ms(g)))
                .collect(),
        ),
        accept_length,
        max_output_tokens_per_s: peaks.0,
        max_concurrent_requests: peaks.1,
    }
}

/// The run's settings as SGLang's report shows them.
#[derive(Clone, Debug, Default)]
pub struct SglangRun {
    pub tag: Option<String>,
    pub backend: String,
    pub dataset_name: String,
    /// `--request-rate` (inf allowed), or None when the dataset's timestamps are replayed
    /// (SGLang's "trace").
    pub request_rate: Option<f64>,
    pub max_concurrency: Option<usize>,
    pub sharegpt_output_len: Option<usize>,
    pub random_input_len: usize,
    pub random_output_len: usize,
    pub random_range_ratio: f64,
    /// The server's `/server_info` JSON, when it has one.
    pub server_info: Option<Value>,
}

fn title(out: &mut String, t: &str, fill: char) {
    let _ = writeln!(out, "{}", super::console::center(t, fill));
}

fn line(out: &mut String, label: &str, v: impl std::fmt::Display) {
    let _ = writeln!(out, "{label:<40} {:<10}", v.to_string());
}

fn float(out: &mut String, label: &str, v: f64) {
    line(out, label, format!("{v:.2}"));
}

fn stats(out: &mut String, name: &str, s: &Exact, max: bool) {
    float(out, &format!("Mean {name} (ms):"), s.mean);
    float(out, &format!("Median {name} (ms):"), s.median);
    float(out, &format!("P90 {name} (ms):"), s.p90);
    float(out, &format!("P95 {name} (ms):"), s.p95);
    float(out, &format!("P99 {name} (ms):"), s.p99);
    if max {
        float(out, &format!("Max {name} (ms):"), s.max);
    }
}

/// SGLang's result block, character for character (it starts with a blank line).
pub fn render(run: &SglangRun, f: &SglangFigures, goodput: Option<&Goodput>) -> String {
    let mut o = String::from("\n");
    title(&mut o, " Serving Benchmark Result ", '=');
    line(&mut o, "Backend:", &run.backend);
    line(
        &mut o,
        "Traffic request rate:",
        run.request_rate.map_or("trace".into(), py_float),
    );
    line(
        &mut o,
        "Max request concurrency:",
        run.max_concurrency
            .map_or("not set".into(), |c| c.to_string()),
    );
    line(&mut o, "Successful requests:", f.completed);
    float(&mut o, "Benchmark duration (s):", f.duration_s);
    line(&mut o, "Total input tokens:", f.total_input);
    line(&mut o, "Total input text tokens:", f.total_input);
    line(&mut o, "Total generated tokens:", f.total_output);
    line(
        &mut o,
        "Total generated tokens (retokenized):",
        f.total_output_retokenized,
    );
    float(&mut o, "Request throughput (req/s):", f.request_throughput);
    float(
        &mut o,
        "Input token throughput (tok/s):",
        f.input_throughput,
    );
    float(
        &mut o,
        "Output token throughput (tok/s):",
        f.output_throughput,
    );
    float(
        &mut o,
        "Peak output token throughput (tok/s):",
        f.max_output_tokens_per_s,
    );
    line(
        &mut o,
        "Peak concurrent requests:",
        f.max_concurrent_requests,
    );
    float(
        &mut o,
        "Total token throughput (tok/s):",
        f.total_throughput,
    );
    float(&mut o, "Concurrency:", f.concurrency);
    if let Some(a) = f.accept_length.filter(|&a| a != 0.0) {
        float(&mut o, "Accept length:", a);
    }
    if let Some(g) = goodput.filter(|g| !g.slos.0.is_empty()) {
        title(&mut o, "Goodput", '-');
        let slos: Vec<String> = g
            .slos
            .0
            .iter()
            .map(|(m, v)| format!("{}:{}", m.key(), py_g(*v)))
            .collect();
        line(&mut o, "SLOs (ms):", slos.join(" "));
        float(&mut o, "Request goodput (req/s):", g.request_goodput);
        float(&mut o, "SLO attainment (%):", g.attainment * 100.0);
        for (m, a) in &g.by_metric {
            float(
                &mut o,
                &format!("{} SLO attainment (%):", m.key().to_uppercase()),
                a * 100.0,
            );
        }
    }
    title(&mut o, "End-to-End Latency", '-');
    stats(&mut o, "E2E Latency", &f.e2e, false);
    title(&mut o, "Time to First Token", '-');
    stats(&mut o, "TTFT", &f.ttft, false);
    title(&mut o, "Time per Output Token (excl. 1st token)", '-');
    stats(&mut o, "TPOT", &f.tpot, false);
    title(&mut o, "Inter-Token Latency", '-');
    stats(&mut o, "ITL", &f.itl, true);
    let _ = writeln!(o, "{}", "=".repeat(50));
    o
}

/// A JSON value, or a number Python writes that JSON has no word for (`Infinity`).
#[derive(Clone, Debug, PartialEq)]
pub enum Field {
    Json(Value),
    Raw(&'static str),
}

fn num(v: f64) -> Field {
    if v.is_finite() {
        Field::Json(json!(v))
    } else if v > 0.0 {
        Field::Raw("Infinity")
    } else if v < 0.0 {
        Field::Raw("-Infinity")
    } else {
        Field::Raw("NaN")
    }
}

/// The JSONL object in SGLang's key order; `details` adds `--output-details`' arrays.
pub fn jsonl_fields(
    run: &SglangRun,
    f: &SglangFigures,
    goodput: Option<&Goodput>,
    details: Option<(&[RequestRecord], &[String])>,
) -> Vec<(String, Field)> {
    let mut m: Vec<(String, Field)> = Vec::new();
    let mut put = |k: &str, v: Field| m.push((k.to_string(), v));
    let j = |v: Value| Field::Json(v);
    put("tag", j(json!(run.tag)));
    put("backend", j(json!(run.backend)));
    put("dataset_name", j(json!(run.dataset_name)));
    put(
        "request_rate",
        run.request_rate.map_or(j(json!("trace")), num),
    );
    put("max_concurrency", j(json!(run.max_concurrency)));
    put("sharegpt_output_len", j(json!(run.sharegpt_output_len)));
    put("random_input_len", j(json!(run.random_input_len)));
    put("random_output_len", j(json!(run.random_output_len)));
    put("random_range_ratio", num(run.random_range_ratio));
    put(
        "server_info",
        j(run.server_info.clone().unwrap_or(Value::Null)),
    );
    put("duration", num(f.duration_s));
    put("completed", j(json!(f.completed)));
    put("total_input_tokens", j(json!(f.total_input)));
    put("total_input_text_tokens", j(json!(f.total_input)));
    put("total_input_vision_tokens", j(json!(0)));
    put("total_output_tokens", j(json!(f.total_output)));
    put(
        "total_output_tokens_retokenized",
        j(json!(f.total_output_retokenized)),
    );
    put("request_throughput", num(f.request_throughput));
    put("input_throughput", num(f.input_throughput));
    put("output_throughput", num(f.output_throughput));
    put("total_throughput", num(f.total_throughput));
    for (name, s) in [
        ("e2e_latency", &f.e2e),
        ("ttft", &f.ttft),
        ("tpot", &f.tpot),
        ("itl", &f.itl),
    ] {
        put(&format!("mean_{name}_ms"), num(s.mean));
        put(&format!("median_{name}_ms"), num(s.median));
        put(&format!("std_{name}_ms"), num(s.std));
        put(&format!("p90_{name}_ms"), num(s.p90));
        put(&format!("p95_{name}_ms"), num(s.p95));
        put(&format!("p99_{name}_ms"), num(s.p99));
    }
    put("concurrency", num(f.concurrency));
    put("accept_length", j(json!(f.accept_length)));
    put("max_output_tokens_per_s", num(f.max_output_tokens_per_s));
    put(
        "max_concurrent_requests",
        j(json!(f.max_concurrent_requests)),
    );
    if let Some(g) = goodput.filter(|g| !g.slos.0.is_empty()) {
        let slos: serde_json::Map<String, Value> = g
            .slos
            .0
            .iter()
            .map(|(k, v)| (k.key().into(), json!(v)))
            .collect();
        put("goodput_slos_ms", j(Value::Object(slos)));
        put("request_goodput", num(g.request_goodput));
        put("slo_attainment", num(g.attainment));
        let by: serde_json::Map<String, Value> = g
            .by_metric
            .iter()
            .map(|(k, v)| (k.key().into(), json!(v)))
            .collect();
        put("slo_attainment_by_metric", j(Value::Object(by)));
    }
    if let Some((records, texts)) = details {
        let secs = |ns: u64| ns as f64 / 1e9;
        let col = |f: &dyn Fn(&RequestRecord) -> Value| {
            Field::Json(Value::Array(records.iter().map(f).collect()))
        };
        put("input_lens", col(&|r| json!(r.prompt_len)));
        put(
            "output_lens",
            col(&|r| json!(if r.success { r.output_tokens } else { 0 })),
        );
        put("ttfts", col(&|r| json!(secs(r.ttft_ns))));
        put(
            "itls",
            col(&|r| Value::Array(r.itl_ns.iter().map(|&g| json!(secs(g))).collect())),
        );
        put("generated_texts", j(json!(texts)));
        put("errors", col(&|r| json!(r.error.as_deref().unwrap_or(""))));
    }
    m
}

/// One line as Python's `json.dumps` writes it (no newline).
pub fn to_line(fields: &[(String, Field)]) -> String {
    let mut s = String::from("{");
    for (i, (k, v)) in fields.iter().enumerate() {
        if i > 0 {
            s.push_str(", ");
        }
        s.push_str(&to_python_json(&Value::String(k.clone())));
        s.push_str(": ");
        match v {
            Field::Json(v) => s.push_str(&to_python_json(v)),
            Field::Raw(r) => s.push_str(r),
        }
    }
    s.push('}');
    s
}

/// SGLang's default file name: `{backend}_{MMDD}_{num_prompts}_{in}_{out}.jsonl` for random
/// datasets, else `{backend}_{MMDD}_{num_prompts}_{dataset}.jsonl`.
pub fn default_file_name(run: &SglangRun, num_prompts: usize, mmdd: &str) -> PathBuf {
    let b = &run.backend;
    PathBuf::from(if run.dataset_name.starts_with("random") {
        format!(
            "{b}_{mmdd}_{num_prompts}_{}_{}.jsonl",
            run.random_input_len, run.random_output_len
        )
    } else {
        format!("{b}_{mmdd}_{num_prompts}_{}.jsonl", run.dataset_name)
    })
}

/// Append the line and a newline (SGLang opens the file with "a").
pub fn append(path: &Path, line: &str) -> io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    f.write_all(format!("{}\n", crate::secrets::scrub(line)).as_bytes())?;
    f.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_token_itl_spreads_extra_tokens_over_the_gaps() {
        let r = RequestRecord {
            itl_ns: vec![30, 10],
            output_tokens: 6, // 5 tokens after the first over 2 gaps: 3 + 2
            ..Default::default()
        };
        assert_eq!(itl_samples(&r, ItlDefinition::PerEvent), vec![30.0, 10.0]);
        assert_eq!(
            itl_samples(&r, ItlDefinition::PerToken),
            vec![10.0, 10.0, 10.0, 5.0, 5.0]
        );
        let one_per_event = RequestRecord {
            itl_ns: vec![30, 10],
            output_tokens: 3,
            ..Default::default()
        };
        assert_eq!(
            itl_samples(&one_per_event, ItlDefinition::PerToken),
            vec![30.0, 10.0]
        );
    }

    #[test]
    fn infinity_is_written_bare_like_python() {
        let run = SglangRun {
            backend: "sglang".into(),
            dataset_name: "random".into(),
            request_rate: Some(f64::INFINITY),
            ..Default::default()
        };
        let f = figures(&[], &[], 1.0, (0.0, 0), None);
        let line = to_line(&jsonl_fields(&run, &f, None, None));
        assert!(line.starts_with(r#"{"tag": null, "backend": "sglang", "dataset_name": "random", "request_rate": Infinity, "#), "{line}");
        let trace = SglangRun {
            request_rate: None,
            ..run
        };
        assert!(
            to_line(&jsonl_fields(&trace, &f, None, None)).contains(r#""request_rate": "trace""#)
        );
    }
}

//! Every summary figure recomputed independently from the per-request records of a fixture and
//! compared with the report; the result files' keys and order against the anchors' lists.

use rand::{Rng, SeedableRng};

use servebench::record::{Metrics, RequestRecord};
use servebench::report::{self, console, goodput, health, result_json, sglang, MetricKey, RunInfo};

const MS: u64 = 1_000_000;

/// A run's worth of records: mixed lengths, a few failures, one-token replies.
fn fixture() -> Vec<RequestRecord> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    (0..400)
        .map(|i| {
            let arrival = i * 5 * MS;
            let start = arrival + rng.gen_range(0..200_000);
            if i % 37 == 5 {
                return RequestRecord {
                    success: false,
                    arrival_ns: arrival,
                    start_ns: start,
                    prompt_len: 100,
                    error: Some("boom".into()),
                    ..Default::default()
                };
            }
            let n_out: u32 = if i % 50 == 7 { 1 } else { rng.gen_range(2..40) };
            let itl: Vec<u64> = (1..n_out).map(|_| rng.gen_range(5 * MS..15 * MS)).collect();
            let ttft = rng.gen_range(20 * MS..300 * MS);
            RequestRecord {
                success: true,
                arrival_ns: arrival,
                start_ns: start,
                ttft_ns: ttft,
                latency_ns: ttft + itl.iter().sum::<u64>(),
                itl_ns: itl,
                prompt_len: rng.gen_range(50..500),
                usage_output_tokens: Some(n_out),
                output_tokens: n_out,
                new_connection: i < 8,
                ..Default::default()
            }
        })
        .collect()
}

fn info() -> RunInfo {
    RunInfo {
        backend: "vllm".into(),
        label: None,
        model_id: "org/model".into(),
        tokenizer_id: "org/model".into(),
        num_prompts: 400,
        metadata: vec![],
        request_rate: 200.0,
        burstiness: 1.0,
        max_concurrency: None,
        percentile_metrics: vec![
            MetricKey::Ttft,
            MetricKey::Tpot,
            MetricKey::Itl,
            MetricKey::E2el,
        ],
        percentiles: vec![50.0, 99.0],
        ramp_up: None,
        tokenizer_extra: Default::default(),
    }
}

fn sorted_ms(v: impl Iterator<Item = f64>) -> Vec<f64> {
    let mut v: Vec<f64> = v.collect();
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v
}

/// numpy.percentile (linear), written out again here on purpose.
fn pct(s: &[f64], p: f64) -> f64 {
    let rank = p / 100.0 * (s.len() - 1) as f64;
    let (lo, hi) = (rank.floor() as usize, rank.ceil() as usize);
    s[lo] + (s[hi] - s[lo]) * (rank - lo as f64)
}

fn mean(s: &[f64]) -> f64 {
    s.iter().sum::<f64>() / s.len() as f64
}

fn close(a: f64, b: f64, rel: f64, what: &str) {
    assert!(
        (a - b).abs() <= b.abs() * rel + 1e-9,
        "{what}: report {a}, recomputed {b}"
    );
}

#[test]
fn every_summary_figure_matches_a_recomputation_from_the_records() {
    let records = fixture();
    let mut metrics = Metrics::default();
    records
        .iter()
        .filter(|r| r.success)
        .for_each(|r| metrics.record_request(r));
    let duration_ns = records
        .iter()
        .map(|r| r.start_ns + r.latency_ns)
        .max()
        .unwrap();
    let dur = duration_ns as f64 / 1e9;
    let mut f = report::figures(&info(), &records, &metrics, duration_ns);
    let slos = goodput::parse(&["ttft:200".into(), "tpot:10".into()]).unwrap();
    f.goodput = Some(goodput::evaluate(&slos, &records, f.duration_s));

    let ok: Vec<&RequestRecord> = records.iter().filter(|r| r.success).collect();
    let ms = |ns: u64| ns as f64 / 1e6;
    let tin: u64 = ok.iter().map(|r| r.prompt_len as u64).sum();
    let tout: u64 = ok.iter().map(|r| r.output_tokens as u64).sum();
    assert_eq!(f.completed, ok.len() as u64);
    assert_eq!(f.failed, (records.len() - ok.len()) as u64);
    assert_eq!((f.total_input, f.total_output), (tin, tout));
    close(f.request_throughput, ok.len() as f64 / dur, 1e-12, "req/s");
    close(f.output_throughput, tout as f64 / dur, 1e-12, "tok/s");
    close(
        f.total_token_throughput,
        (tin + tout) as f64 / dur,
        1e-12,
        "total tok/s",
    );

    // Goodput: successful, TTFT ≤ 200 ms and TPOT (0 for one token) ≤ 10 ms.
    let good = ok
        .iter()
        .filter(|r| {
            let tpot = if r.output_tokens > 1 {
                ms(r.latency_ns - r.ttft_ns) / (r.output_tokens - 1) as f64
            } else {
                0.0
            };
            ms(r.ttft_ns) <= 200.0 && tpot <= 10.0
        })
        .count();
    let g = f.goodput.as_ref().unwrap();
    assert!(
        good > 0 && good < ok.len(),
        "the fixture must split good and bad"
    );
    assert_eq!(g.good, good as u64);
    close(g.request_goodput, good as f64 / dur, 1e-12, "goodput");
    close(
        g.attainment,
        good as f64 / records.len() as f64,
        1e-12,
        "attainment",
    );

    // vLLM's percentiles come from histograms (3 significant digits).
    let ttft = sorted_ms(ok.iter().map(|r| ms(r.ttft_ns)));
    let tpot = sorted_ms(
        ok.iter()
            .filter(|r| r.output_tokens > 1)
            .map(|r| ms((r.latency_ns - r.ttft_ns) / (r.output_tokens as u64 - 1))),
    );
    let itl = sorted_ms(ok.iter().flat_map(|r| r.itl_ns.iter().map(|&g| ms(g))));
    let e2el = sorted_ms(ok.iter().map(|r| ms(r.latency_ns)));
    for b in &f.blocks {
        let s = match b.key {
            MetricKey::Ttft => &ttft,
            MetricKey::Tpot => &tpot,
            MetricKey::Itl => &itl,
            MetricKey::E2el => &e2el,
            other => panic!("unexpected block {other:?}"),
        };
        close(b.summary.mean_ms, mean(s), 1e-9, "mean");
        close(b.summary.median_ms, pct(s, 50.0), 1e-3, "median");
        close(b.summary.percentiles_ms[1].1, pct(s, 99.0), 1e-3, "p99");
    }

    // SGLang's figures are exact.
    let retok: Vec<u32> = records.iter().map(|r| r.output_tokens + 1).collect();
    let sg = sglang::figures(
        &records,
        &retok,
        dur,
        (f.max_output_tokens_per_s, 3),
        Some(2.5),
    );
    assert_eq!(sg.total_output_retokenized, tout + ok.len() as u64);
    close(sg.input_throughput, tin as f64 / dur, 1e-12, "input tok/s");
    close(
        sg.concurrency,
        e2el.iter().sum::<f64>() / 1e3 / dur,
        1e-12,
        "concurrency",
    );
    let sg_tpot = sorted_ms(
        ok.iter()
            .filter(|r| r.output_tokens > 1)
            .map(|r| ms(r.latency_ns - r.ttft_ns) / (r.output_tokens - 1) as f64),
    );
    for (name, got, s) in [
        ("e2e", &sg.e2e, &e2el),
        ("ttft", &sg.ttft, &ttft),
        ("tpot", &sg.tpot, &sg_tpot),
        ("itl", &sg.itl, &itl),
    ] {
        let m = mean(s);
        let std = (s.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / s.len() as f64).sqrt();
        close(got.mean, m, 1e-12, name);
        close(got.std, std, 1e-9, name);
        close(got.median, pct(s, 50.0), 1e-12, name);
        close(got.p90, pct(s, 90.0), 1e-12, name);
        close(got.p95, pct(s, 95.0), 1e-12, name);
        close(got.p99, pct(s, 99.0), 1e-12, name);
    }
    assert_eq!(sg.itl.max, *itl.last().unwrap());

    // Client health: no cap, so lag is start − arrival.
    let h = health::evaluate(
        &records,
        health::Layout {
            num_shards: 2,
            max_concurrency: None,
        },
    );
    let lag = sorted_ms(records.iter().map(|r| ms(r.start_ns - r.arrival_ns)));
    close(h.send_lag.p50_ms, pct(&lag, 50.0), 1e-12, "lag p50");
    close(h.send_lag.p99_ms, pct(&lag, 99.0), 1e-12, "lag p99");
    assert_eq!(h.send_lag.max_ms, *lag.last().unwrap());
    let from_plan = sorted_ms(ok.iter().map(|r| ms(r.start_ns - r.arrival_ns + r.ttft_ns)));
    close(
        h.ttft_from_plan.mean_ms,
        mean(&from_plan),
        1e-12,
        "ttft from plan",
    );
    let fresh = records.iter().filter(|r| r.new_connection).count() as u64;
    assert_eq!(h.new_connections, fresh);
    assert_eq!(h.reused_connections, records.len() as u64 - fresh);
    assert!(h.warning.is_none(), "lag under 0.2 ms must not warn");
}

/// `vllm bench serve --save-result` keys for `--goodput ... --percentile-metrics
/// ttft,tpot,itl,e2el --metric-percentiles 50,99 --save-detailed`, in vLLM's insertion order
/// (vllm/benchmarks/serve.py: the config keys from `main`, then `benchmark()`'s result dict,
/// then each selected metric's stats).
const VLLM_KEYS: &[&str] = &[
    "date",
    "endpoint_type",
    "backend",
    "label",
    "model_id",
    "tokenizer_id",
    "num_prompts",
    "request_rate",
    "burstiness",
    "max_concurrency",
    "duration",
    "completed",
    "failed",
    "total_input_tokens",
    "total_output_tokens",
    "request_throughput",
    "request_goodput",
    "output_throughput",
    "total_token_throughput",
    "input_lens",
    "output_lens",
    "ttfts",
    "itls",
    "latencies",
    "start_times",
    "queue_times",
    "generated_texts",
    "errors",
    "max_output_tokens_per_s",
    "max_concurrent_requests",
    "rtfx",
    "mean_ttft_ms",
    "median_ttft_ms",
    "std_ttft_ms",
    "p50_ttft_ms",
    "p99_ttft_ms",
    "mean_tpot_ms",
    "median_tpot_ms",
    "std_tpot_ms",
    "p50_tpot_ms",
    "p99_tpot_ms",
    "mean_itl_ms",
    "median_itl_ms",
    "std_itl_ms",
    "p50_itl_ms",
    "p99_itl_ms",
    "mean_e2el_ms",
    "median_e2el_ms",
    "std_e2el_ms",
    "p50_e2el_ms",
    "p99_e2el_ms",
];

#[test]
fn result_json_keys_keep_vllms_order_with_goodput() {
    let records = fixture();
    let mut metrics = Metrics::default();
    records
        .iter()
        .filter(|r| r.success)
        .for_each(|r| metrics.record_request(r));
    let mut f = report::figures(&info(), &records, &metrics, 2_000_000_000);
    let texts = vec![String::new(); records.len()];
    let without = result_json::build(&info(), &f, &records, &texts, "d", 0.0, true);
    assert!(without["request_goodput"].is_null());
    let slos = goodput::parse(&["e2el:500".into()]).unwrap();
    f.goodput = Some(goodput::evaluate(&slos, &records, f.duration_s));
    let m = result_json::build(&info(), &f, &records, &texts, "d", 0.0, true);
    let keys: Vec<&str> = m.keys().map(String::as_str).collect();
    // vLLM's keys in vLLM's order, then servebench's own (failure causes, the HTML report's
    // arrivals).
    assert_eq!(&keys[..VLLM_KEYS.len()], VLLM_KEYS);
    assert_eq!(
        keys[VLLM_KEYS.len()..],
        [
            "failures_by_category",
            "first_errors",
            "servebench_arrivals"
        ]
    );
    let g = m["request_goodput"].as_f64().unwrap();
    assert_eq!(g, f.goodput.as_ref().unwrap().request_goodput);
    let out = console::render(&info(), &f);
    let lines: Vec<&str> = out.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.starts_with("Request throughput (req/s):"))
        .unwrap();
    assert!(
        lines[at + 1].starts_with("Request goodput (req/s):"),
        "{out}"
    );
}

/// SGLang's JSONL keys, in order, from `python/sglang/benchmark/serving.py` (`result` in
/// `benchmark()`, then `_goodput_result_fields` with --goodput, then `result_details` with
/// --output-details).
const SGLANG_KEYS: &[&str] = &[
    "tag",
    "backend",
    "dataset_name",
    "request_rate",
    "max_concurrency",
    "sharegpt_output_len",
    "random_input_len",
    "random_output_len",
    "random_range_ratio",
    "server_info",
    "duration",
    "completed",
    "total_input_tokens",
    "total_input_text_tokens",
    "total_input_vision_tokens",
    "total_output_tokens",
    "total_output_tokens_retokenized",
    "request_throughput",
    "input_throughput",
    "output_throughput",
    "total_throughput",
    "mean_e2e_latency_ms",
    "median_e2e_latency_ms",
    "std_e2e_latency_ms",
    "p90_e2e_latency_ms",
    "p95_e2e_latency_ms",
    "p99_e2e_latency_ms",
    "mean_ttft_ms",
    "median_ttft_ms",
    "std_ttft_ms",
    "p90_ttft_ms",
    "p95_ttft_ms",
    "p99_ttft_ms",
    "mean_tpot_ms",
    "median_tpot_ms",
    "std_tpot_ms",
    "p90_tpot_ms",
    "p95_tpot_ms",
    "p99_tpot_ms",
    "mean_itl_ms",
    "median_itl_ms",
    "std_itl_ms",
    "p90_itl_ms",
    "p95_itl_ms",
    "p99_itl_ms",
    "concurrency",
    "accept_length",
    "max_output_tokens_per_s",
    "max_concurrent_requests",
    "goodput_slos_ms",
    "request_goodput",
    "slo_attainment",
    "slo_attainment_by_metric",
    "input_lens",
    "output_lens",
    "ttfts",
    "itls",
    "generated_texts",
    "errors",
];

/// The labels of SGLang's block, from the same file's prints (with --goodput ttft,e2el; no
/// accept length, no cache report, not an image dataset).
const SGLANG_LABELS: &[&str] = &[
    "",
    "============ Serving Benchmark Result ============",
    "Backend:",
    "Traffic request rate:",
    "Max request concurrency:",
    "Successful requests:",
    "Benchmark duration (s):",
    "Total input tokens:",
    "Total input text tokens:",
    "Total generated tokens:",
    "Total generated tokens (retokenized):",
    "Request throughput (req/s):",
    "Input token throughput (tok/s):",
    "Output token throughput (tok/s):",
    "Peak output token throughput (tok/s):",
    "Peak concurrent requests:",
    "Total token throughput (tok/s):",
    "Concurrency:",
    "---------------------Goodput----------------------",
    "SLOs (ms):",
    "Request goodput (req/s):",
    "SLO attainment (%):",
    "TTFT SLO attainment (%):",
    "E2EL SLO attainment (%):",
    "----------------End-to-End Latency----------------",
    "Mean E2E Latency (ms):",
    "Median E2E Latency (ms):",
    "P90 E2E Latency (ms):",
    "P95 E2E Latency (ms):",
    "P99 E2E Latency (ms):",
    "---------------Time to First Token----------------",
    "Mean TTFT (ms):",
    "Median TTFT (ms):",
    "P90 TTFT (ms):",
    "P95 TTFT (ms):",
    "P99 TTFT (ms):",
    "-----Time per Output Token (excl. 1st token)------",
    "Mean TPOT (ms):",
    "Median TPOT (ms):",
    "P90 TPOT (ms):",
    "P95 TPOT (ms):",
    "P99 TPOT (ms):",
    "---------------Inter-Token Latency----------------",
    "Mean ITL (ms):",
    "Median ITL (ms):",
    "P90 ITL (ms):",
    "P95 ITL (ms):",
    "P99 ITL (ms):",
    "Max ITL (ms):",
    "==================================================",
];

#[test]
fn sglang_jsonl_and_block_match_sglangs_keys_and_titles() {
    let records = fixture();
    let texts = vec!["x".to_string(); records.len()];
    let sg = sglang::figures(&records, &vec![1; records.len()], 2.0, (10.0, 4), None);
    let run = sglang::SglangRun {
        backend: "sglang-oai".into(),
        dataset_name: "random".into(),
        request_rate: Some(16.0),
        random_input_len: 1024,
        random_output_len: 1024,
        ..Default::default()
    };
    let slos = goodput::parse(&["ttft:200".into(), "e2el:300.5".into()]).unwrap();
    let g = goodput::evaluate(&slos, &records, 2.0);
    let fields = sglang::jsonl_fields(&run, &sg, Some(&g), Some((&records, &texts)));
    let keys: Vec<&str> = fields.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, SGLANG_KEYS);
    // Without the flags, the optional groups go.
    let plain = sglang::jsonl_fields(&run, &sg, None, None);
    assert_eq!(
        plain.len(),
        SGLANG_KEYS
            .iter()
            .position(|&k| k == "goodput_slos_ms")
            .unwrap()
    );
    let line = sglang::to_line(&fields);
    let v: serde_json::Value = serde_json::from_str(&line).expect("finite rate: strict JSON");
    assert_eq!(v["request_rate"], 16.0);
    assert_eq!(v["goodput_slos_ms"]["e2el"], 300.5);
    assert_eq!(v["slo_attainment"], g.attainment);
    assert_eq!(v["itls"].as_array().unwrap().len(), records.len());

    let block = sglang::render(&run, &sg, Some(&g));
    let labels: Vec<String> = block
        .lines()
        .map(|l| match l.find(":  ") {
            Some(i) if !l.starts_with('-') && !l.starts_with('=') => l[..=i].to_string(),
            _ => l.trim_end().to_string(),
        })
        .collect();
    assert_eq!(labels, SGLANG_LABELS);
    assert!(block.contains("SLOs (ms):                               ttft:200 e2el:300.5\n"));
    assert!(block.contains("Max request concurrency:                 not set   \n"));
}

//! `servebench merge`: one result from the result files of a multi-host run.
//!
//! Rules: every file must come from the same plan (fingerprint, servebench version, host
//! count) and each host index must appear exactly once. Counts and tokens are summed; rates
//! are over the common window (earliest host t0 to latest host end, wall clock). Percentiles
//! come from the merged per-request records when every file has them (`--save-detailed`:
//! the same figures a single run computes), else from the merged histograms (then the peaks
//! and `e2el_including_client_queue`, which need records, are left out).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use serde_json::{json, Map, Value};

use super::{HOST_KEY, PLAN_INDEX_KEY};
use crate::record::{Metrics, RequestRecord};
use crate::report::{self, console, result_json, MetricKey, RunInfo};
use crate::stats::Distribution;

/// One host's result file.
pub struct HostFile {
    pub path: String,
    pub result: Map<String, Value>,
    pub host: Map<String, Value>,
}

impl HostFile {
    fn u64(&self, key: &str) -> anyhow::Result<u64> {
        self.host
            .get(key)
            .and_then(Value::as_u64)
            .with_context(|| format!("{}: {HOST_KEY}.{key} is missing or not a count", self.path))
    }

    fn str(&self, key: &str) -> String {
        self.host
            .get(key)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    }

    fn end_ns(&self) -> anyhow::Result<u64> {
        Ok(self.u64("t0_unix_ns")? + self.u64("duration_ns")?)
    }
}

/// The files named, or every `*.json` with a host object in the one directory named.
pub fn read_inputs(inputs: &[PathBuf]) -> anyhow::Result<Vec<HostFile>> {
    let mut files = Vec::new();
    if let [dir] = inputs {
        if dir.is_dir() {
            let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
                .with_context(|| format!("cannot read the directory {}", dir.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == "json"))
                .collect();
            paths.sort();
            for p in paths {
                if let Some(f) = read_one(&p, false)? {
                    files.push(f);
                }
            }
            if files.is_empty() {
                bail!(
                    "{} holds no result file with a `{HOST_KEY}` object (run the hosts with \
                     --save-result)",
                    dir.display()
                );
            }
            return Ok(files);
        }
    }
    for p in inputs {
        if let Some(f) = read_one(p, true)? {
            files.push(f);
        }
    }
    Ok(files)
}

fn read_one(path: &Path, required: bool) -> anyhow::Result<Option<HostFile>> {
    let results = report::compare::read_results(path)?;
    let mut out = None;
    for (name, result) in results {
        let Some(Value::Object(host)) = result.get(HOST_KEY).cloned() else {
            if required {
                bail!("{name} is not a multi-host result: it has no `{HOST_KEY}` object");
            }
            continue;
        };
        if out.is_some() {
            bail!(
                "{} holds more than one host result; give one result per file",
                path.display()
            );
        }
        out = Some(HostFile {
            path: name,
            result,
            host,
        });
    }
    Ok(out)
}

/// Refuses files that are not the hosts of one run, naming them.
pub fn check(files: &[HostFile]) -> anyhow::Result<()> {
    let Some(first) = files.first() else {
        bail!("no result files to merge");
    };
    for key in ["plan_fingerprint", "servebench_version"] {
        if let Some(f) = files.iter().find(|f| f.str(key) != first.str(key)) {
            bail!(
                "{} and {} are not from the same plan: {key} {:?} vs {:?} (same seed, dataset, \
                 rates and servebench version on every host?)",
                first.path,
                f.path,
                first.str(key),
                f.str(key)
            );
        }
    }
    let n = first.u64("num_hosts")?;
    if let Some(f) = files.iter().find(|f| f.u64("num_hosts").ok() != Some(n)) {
        bail!(
            "{} says {n} hosts but {} says {:?}",
            first.path,
            f.path,
            f.host.get("num_hosts")
        );
    }
    let mut by_index: Vec<Option<&str>> = vec![None; n as usize];
    for f in files {
        let i = f.u64("host_index")?;
        match by_index.get_mut(i as usize) {
            None => bail!("{}: host index {i} is not below {n} hosts", f.path),
            Some(Some(other)) => bail!("{other} and {} are both host {i}", f.path),
            Some(slot) => *slot = Some(&f.path),
        }
    }
    let missing: Vec<String> = by_index
        .iter()
        .enumerate()
        .filter(|(_, p)| p.is_none())
        .map(|(i, _)| i.to_string())
        .collect();
    if !missing.is_empty() {
        bail!(
            "host(s) {} of {n} are missing (given: {})",
            missing.join(", "),
            files
                .iter()
                .map(|f| f.path.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    Ok(())
}

/// The merged result: the console block and the result object.
pub struct Merged {
    pub console: String,
    pub result: Map<String, Value>,
    /// Whether percentiles came from the per-request records (else the histograms).
    pub from_records: bool,
}

pub fn merge(files: &[HostFile]) -> anyhow::Result<Merged> {
    check(files)?;
    let first = &files[0];
    let start = files
        .iter()
        .map(|f| f.u64("t0_unix_ns"))
        .collect::<anyhow::Result<Vec<_>>>()?
        .into_iter()
        .min()
        .unwrap_or(0);
    let end = files
        .iter()
        .map(HostFile::end_ns)
        .collect::<anyhow::Result<Vec<_>>>()?
        .into_iter()
        .max()
        .unwrap_or(0);
    let duration_ns = end.saturating_sub(start);
    let info = run_info(files)?;
    let detailed = files.iter().all(|f| f.result.contains_key(PLAN_INDEX_KEY));

    let (figures, records, texts) = if detailed {
        let (records, texts) = merged_records(files, start)?;
        let mut metrics = Metrics::default();
        for r in records.iter().filter(|r| r.success) {
            metrics.record_request(r);
        }
        let f = report::figures(&info, &records, &metrics, duration_ns);
        (f, records, texts)
    } else {
        let mut metrics = Metrics::default();
        for f in files {
            let h = f
                .host
                .get("histograms")
                .with_context(|| format!("{}: {HOST_KEY} has no histograms", f.path))?;
            for (name, dist) in [
                ("ttft", &mut metrics.ttft),
                ("tpot", &mut metrics.tpot),
                ("itl", &mut metrics.itl),
                ("e2el", &mut metrics.e2el),
                ("queue", &mut metrics.queue),
            ] {
                let v = h
                    .get(name)
                    .with_context(|| format!("{}: no {name} histogram", f.path))?;
                let d = Distribution::from_json(v)
                    .map_err(|e| anyhow::anyhow!("{}: {name} histogram: {e}", f.path))?;
                dist.merge(&d);
            }
        }
        let mut fig = report::figures(&info, &[], &metrics, duration_ns);
        let sum = |k: &str| -> u64 {
            files
                .iter()
                .map(|f| f.result.get(k).and_then(Value::as_u64).unwrap_or(0))
                .sum()
        };
        fig.completed = sum("completed");
        fig.failed = sum("failed");
        fig.total_input = sum("total_input_tokens");
        fig.total_output = sum("total_output_tokens");
        let dur = duration_ns as f64 / 1e9;
        let rate = |x: u64| if dur > 0.0 { x as f64 / dur } else { 0.0 };
        fig.request_throughput = rate(fig.completed);
        fig.output_throughput = rate(fig.total_output);
        fig.total_token_throughput = rate(fig.total_input + fig.total_output);
        (fig, Vec::new(), Vec::new())
    };

    let date = first
        .result
        .get("date")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let mut m = result_json::build(&info, &figures, &records, &texts, &date, 0.0, detailed);
    if !detailed {
        for k in ["latencies", "queue_times"] {
            m.shift_remove(k);
        }
        m.insert("max_output_tokens_per_s".into(), Value::Null);
        m.insert("max_concurrent_requests".into(), Value::Null);
    }
    // Keys a host file has that the merge does not compute (tokenizer provenance, ramp-up,
    // metadata) come from host 0 where the merged object lacks them.
    for (k, v) in &first.result {
        if !m.contains_key(k) && k != HOST_KEY && k != PLAN_INDEX_KEY && k != "client_resources" {
            m.insert(k.clone(), v.clone());
        }
    }
    m.insert("failures_by_category".into(), summed_failures(files));
    let first_errors: Vec<Value> = files
        .iter()
        .filter_map(|f| f.result.get("first_errors").and_then(Value::as_array))
        .flatten()
        .take(10)
        .cloned()
        .collect();
    m.insert("first_errors".into(), Value::Array(first_errors));
    m.insert(
        "merged".into(),
        json!({
            "num_hosts": files.len(),
            "plan_fingerprint": first.str("plan_fingerprint"),
            "percentiles_from": if detailed { "records" } else { "histograms" },
            "t0_unix_ns": start,
            "end_unix_ns": end,
        }),
    );
    m.insert("hosts".into(), hosts_json(files, start)?);
    Ok(Merged {
        console: console::render(&info, &figures),
        result: m,
        from_records: detailed,
    })
}

fn run_info(files: &[HostFile]) -> anyhow::Result<RunInfo> {
    let r = &files[0].result;
    let h = &files[0];
    let s = |k: &str| r.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let percentile_metrics = MetricKey::parse_list(&h.str("percentile_metrics"))
        .map_err(|e| anyhow::anyhow!("{}: {e}", h.path))?;
    let percentiles = h
        .host
        .get("percentiles")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_f64).collect())
        .unwrap_or_else(|| vec![99.0]);
    let request_rate = match r.get("request_rate") {
        Some(Value::Number(n)) => n.as_f64().unwrap_or(f64::INFINITY),
        _ => f64::INFINITY,
    };
    let num_prompts = files
        .iter()
        .map(|f| {
            f.result
                .get("num_prompts")
                .and_then(Value::as_u64)
                .unwrap_or(0)
        })
        .sum::<u64>() as usize;
    Ok(RunInfo {
        backend: s("backend"),
        label: r.get("label").and_then(Value::as_str).map(String::from),
        model_id: s("model_id"),
        tokenizer_id: s("tokenizer_id"),
        tokenizer_extra: Map::new(),
        num_prompts,
        metadata: Vec::new(),
        request_rate,
        burstiness: r.get("burstiness").and_then(Value::as_f64).unwrap_or(1.0),
        max_concurrency: h
            .host
            .get("max_concurrency_total")
            .and_then(Value::as_u64)
            .map(|c| c as usize),
        percentile_metrics,
        percentiles,
        ramp_up: None,
    })
}

/// Every host's records on the common time base (ns from the earliest t0), in global plan
/// order, with their texts.
fn merged_records(
    files: &[HostFile],
    start: u64,
) -> anyhow::Result<(Vec<RequestRecord>, Vec<String>)> {
    let mut all: Vec<(u64, RequestRecord, String)> = Vec::new();
    for f in files {
        let offset = f.u64("t0_unix_ns")? - start;
        let t0_mono_s = f
            .host
            .get("t0_mono_s")
            .and_then(Value::as_f64)
            .unwrap_or(0.0);
        let arr = |k: &str| -> anyhow::Result<&Vec<Value>> {
            f.result
                .get(k)
                .and_then(Value::as_array)
                .with_context(|| format!("{}: `{k}` is missing (run with --save-detailed)", f.path))
        };
        let index = arr(PLAN_INDEX_KEY)?;
        let n = index.len();
        let cols = [
            "input_lens",
            "output_lens",
            "ttfts",
            "itls",
            "latencies",
            "start_times",
            "errors",
            "generated_texts",
            report::html::ARRIVALS_KEY,
        ];
        for k in cols {
            if arr(k)?.len() != n {
                bail!(
                    "{}: `{k}` has {} entries, `{PLAN_INDEX_KEY}` {n}",
                    f.path,
                    arr(k)?.len()
                );
            }
        }
        let secs = |v: &Value| v.as_f64().unwrap_or(0.0);
        let ns = |s: f64| (s * 1e9).round().max(0.0) as u64;
        let on_base = |mono_s: f64| ns(mono_s - t0_mono_s) + offset;
        let (errors, outputs, arrivals) = (
            arr("errors")?,
            arr("output_lens")?,
            arr(report::html::ARRIVALS_KEY)?,
        );
        let (starts, ttfts, latencies, itls) = (
            arr("start_times")?,
            arr("ttfts")?,
            arr("latencies")?,
            arr("itls")?,
        );
        let (inputs, texts) = (arr("input_lens")?, arr("generated_texts")?);
        for (j, g) in index.iter().enumerate() {
            let error = errors[j].as_str().unwrap_or("").to_string();
            let success = error.is_empty();
            let output = outputs[j].as_u64().unwrap_or(0) as u32;
            let r = RequestRecord {
                success,
                arrival_ns: on_base(secs(&arrivals[j])),
                start_ns: on_base(secs(&starts[j])),
                ttft_ns: ns(secs(&ttfts[j])),
                latency_ns: ns(secs(&latencies[j])),
                itl_ns: itls[j]
                    .as_array()
                    .map(|a| a.iter().map(|g| ns(secs(g))).collect())
                    .unwrap_or_default(),
                prompt_len: inputs[j].as_u64().unwrap_or(0) as u32,
                usage_output_tokens: success.then_some(output),
                output_tokens: output,
                error: (!success).then_some(error),
                ..Default::default()
            };
            let text = texts[j].as_str().unwrap_or("").to_string();
            let g = g
                .as_u64()
                .with_context(|| format!("{}: `{PLAN_INDEX_KEY}` holds a non-index", f.path))?;
            all.push((g, r, text));
        }
    }
    all.sort_by_key(|(g, _, _)| *g);
    Ok(all.into_iter().map(|(_, r, t)| (r, t)).unzip())
}

fn summed_failures(files: &[HostFile]) -> Value {
    let mut m = Map::new();
    for f in files {
        if let Some(Value::Object(c)) = f.result.get("failures_by_category") {
            for (k, v) in c {
                let n = m.get(k).and_then(Value::as_u64).unwrap_or(0) + v.as_u64().unwrap_or(0);
                m.insert(k.clone(), json!(n));
            }
        }
    }
    Value::Object(m)
}

fn hosts_json(files: &[HostFile], start: u64) -> anyhow::Result<Value> {
    let mut sorted: Vec<&HostFile> = files.iter().collect();
    sorted.sort_by_key(|f| f.u64("host_index").unwrap_or(0));
    let mut out = Vec::new();
    for f in sorted {
        let lag_p99_ms = f
            .host
            .get("histograms")
            .and_then(|h| h.get("send_lag"))
            .and_then(|v| Distribution::from_json(v).ok())
            .map(|d| d.percentile_ns(99.0) / 1e6);
        let get = |k: &str| f.result.get(k).cloned().unwrap_or(Value::Null);
        out.push(json!({
            "host": f.u64("host_index")?,
            "hostname": f.str("hostname"),
            "file": f.path,
            "requests": get("num_prompts"),
            "completed": get("completed"),
            "failed": get("failed"),
            "send_lag_p99_ms": lag_p99_ms,
            "t0_offset_ms": (f.u64("t0_unix_ns")? - start) as f64 / 1e6,
            "t0_lateness_ms": f.host.get("t0_lateness_ns").and_then(Value::as_i64).map(|n| n as f64 / 1e6),
            "clock": f.host.get("clock").cloned().unwrap_or(Value::Null),
        }));
    }
    Ok(Value::Array(out))
}

/// The subcommand.
pub fn run(args: &crate::cli::MergeArgs) -> anyhow::Result<()> {
    let files = read_inputs(&args.inputs)?;
    let merged = merge(&files)?;
    eprintln!(
        "Merged {} host results (percentiles from the {})",
        files.len(),
        if merged.from_records {
            "per-request records"
        } else {
            "histograms; peak throughput and concurrency need --save-detailed and are left out"
        }
    );
    print!("{}", merged.console);
    if let Some(path) = &args.output {
        result_json::write(path, &Value::Object(merged.result), false)
            .with_context(|| format!("cannot write {}", path.display()))?;
        eprintln!("Merged result saved to {}", path.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::multihost::{host_json, ClockState, HostRun, Hosts};

    /// A host file without per-request records: `ttfts_ms` successful requests.
    fn host_file(index: usize, n: usize, t0: u64, ttfts_ms: &[u64], print: &str) -> HostFile {
        let mut metrics = Metrics::default();
        let records: Vec<RequestRecord> = ttfts_ms
            .iter()
            .map(|&t| RequestRecord {
                success: true,
                ttft_ns: t * 1_000_000,
                latency_ns: t * 1_000_000 + 5_000_000,
                itl_ns: vec![5_000_000],
                output_tokens: 2,
                usage_output_tokens: Some(2),
                ..Default::default()
            })
            .collect();
        records.iter().for_each(|r| metrics.record_request(r));
        let run = HostRun {
            hosts: Hosts {
                num_hosts: n,
                host_index: index,
                count_source: "--num-hosts".into(),
                index_source: "--host-index".into(),
            },
            fingerprint: print.into(),
            max_concurrency_total: None,
            num_prompts_total: 0,
            t0_unix_ns: t0,
            t0_mono_s: 0.0,
            duration_ns: 1_000_000_000,
            start_at_unix_ns: None,
            clock: ClockState::default(),
            percentile_metrics: "ttft,tpot,itl".into(),
            percentiles: vec![50.0, 99.0],
        };
        let Value::Object(host) = host_json(&run, &metrics, &records) else {
            unreachable!()
        };
        let result = json!({
            "date": "20261123-030000", "backend": "vllm", "model_id": "m", "tokenizer_id": "m",
            "num_prompts": records.len(), "request_rate": "inf", "burstiness": 1.0,
            "completed": records.len(), "failed": 0,
            "total_input_tokens": 10 * records.len(), "total_output_tokens": 2 * records.len(),
        });
        let Value::Object(result) = result else {
            unreachable!()
        };
        HostFile {
            path: format!("host{index}.json"),
            result,
            host,
        }
    }

    #[test]
    fn histograms_merge_over_the_common_window() {
        let files = [
            host_file(0, 2, 1_000_000_000, &[10, 20, 30], "abc"),
            host_file(1, 2, 1_500_000_000, &[40, 50], "abc"),
        ];
        let m = merge(&files).unwrap();
        assert!(!m.from_records);
        let r = &m.result;
        assert_eq!(r["completed"], 5);
        assert_eq!(r["total_output_tokens"], 10);
        // Earliest t0 (1.0 s) to latest end (1.5 s + 1 s).
        assert_eq!(r["duration"], 1.5);
        assert!((r["request_throughput"].as_f64().unwrap() - 5.0 / 1.5).abs() < 1e-9);
        assert_eq!(r["mean_ttft_ms"], 30.0);
        let median = r["median_ttft_ms"].as_f64().unwrap();
        assert!((median - 30.0).abs() < 0.05, "{median}");
        assert_eq!(r["hosts"].as_array().unwrap().len(), 2);
        assert_eq!(r["hosts"][1]["t0_offset_ms"], 500.0);
        assert!(m.console.contains("Successful requests:"));
    }

    #[test]
    fn one_host_merges_to_its_own_figures() {
        let one = [host_file(0, 1, 7, &[10, 20, 30, 45], "abc")];
        let r = merge(&one).unwrap().result;
        assert_eq!(r["completed"], 4);
        assert_eq!(r["duration"], 1.0);
        assert_eq!(r["mean_ttft_ms"], 26.25);
    }

    #[test]
    fn files_of_other_runs_are_refused_by_name() {
        let other_plan = [
            host_file(0, 2, 0, &[1], "abc"),
            host_file(1, 2, 0, &[1], "xyz"),
        ];
        let e = merge(&other_plan).err().unwrap().to_string();
        assert!(
            e.contains("host0.json") && e.contains("host1.json") && e.contains("plan"),
            "{e}"
        );
        let twice = [
            host_file(0, 2, 0, &[1], "abc"),
            host_file(0, 2, 0, &[1], "abc"),
        ];
        assert!(merge(&twice)
            .err()
            .unwrap()
            .to_string()
            .contains("both host 0"));
        let missing = [
            host_file(0, 3, 0, &[1], "abc"),
            host_file(2, 3, 0, &[1], "abc"),
        ];
        let e = merge(&missing).err().unwrap().to_string();
        assert!(e.contains("host(s) 1 of 3 are missing"), "{e}");
        let counts = [
            host_file(0, 2, 0, &[1], "abc"),
            host_file(1, 3, 0, &[1], "abc"),
        ];
        assert!(merge(&counts).err().unwrap().to_string().contains("hosts"));
    }
}

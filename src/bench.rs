//! The benchmark command, start to finish: flags → plan → engine → figures → console and file.

use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context};
use serde_json::{Map, Value};

use crate::backend::Backend;
use crate::cli::BenchArgs;
use crate::engine::{self, control, placement, stop, target::Target, EngineConfig};
use crate::plan::{self, PlanConfig};
use crate::report::{
    self, console, goodput, health, pyfmt::py_float, result_json, sglang, MetricKey, RunInfo,
};
use crate::tokenizer::Tokenizer;
use crate::workload;

/// Everything decided from the flags before anything is sent.
struct Setup {
    info: RunInfo,
    target: Target,
    plan_cfg: PlanConfig,
    tokenizer: Tokenizer,
    slos: goodput::Slos,
}

pub fn run(args: &BenchArgs) -> anyhow::Result<()> {
    run_measured(args).map(|_| ())
}

/// [`run`], returning the result object (as `--save-result` writes it, without the
/// per-request arrays) for callers that go on with it (`servebench sweep`).
pub fn run_measured(args: &BenchArgs) -> anyhow::Result<Map<String, Value>> {
    run_measured_at(args, None)
}

/// Decides the start instant once the plan is built and the server checked (a multi-host
/// sweep's barrier: every host ready, then one common start).
pub type StartBarrier<'a> = &'a mut dyn FnMut() -> anyhow::Result<std::time::SystemTime>;

/// [`run_measured`], with the start from `barrier` when given (never before `--start-at`).
pub fn run_measured_at(
    args: &BenchArgs,
    barrier: Option<StartBarrier>,
) -> anyhow::Result<Map<String, Value>> {
    // Both engines run on io_uring: where it is blocked, say why before any work.
    engine::uring_check::probe()?;
    let setup = prepare(args)?;
    let Setup {
        mut info,
        target,
        plan_cfg,
        tokenizer,
        slos,
    } = setup;
    // Multi-host (issue 7): which host this is, and the common start, settled before the plan.
    let hosts =
        crate::multihost::resolve(args.num_hosts, args.host_index, &|k| std::env::var(k).ok())?;
    let mut start_at = args
        .start_at
        .as_deref()
        .map(|t| crate::multihost::parse_start_at(t, std::time::SystemTime::now()))
        .transpose()
        .map_err(|e| anyhow::anyhow!(e))?;
    let multihost =
        hosts.count_source != "default" || hosts.index_source != "default" || start_at.is_some();
    if hosts.num_hosts > 1 || hosts.index_source != "default" {
        eprintln!("{}", hosts.describe());
    }
    let max_concurrency_total = info.max_concurrency;

    let built = Instant::now();
    let ctx = workload::Ctx {
        num_prompts: planned_count(args),
        seed: args.seed,
        api: plan_cfg.api,
    };
    let mut samples = workload::load(&args.dataset, &ctx, &tokenizer)?;
    // Tokenizer (issue 10): random-style prompts recounted by the server's /tokenize.
    if !args.skip_server_alignment
        && crate::tokenizer::server::applies_to(&args.dataset.dataset_name)
    {
        let outcome = crate::tokenizer::server::align(
            &mut samples,
            &target,
            &plan_cfg.model,
            &target.base_url,
        );
        info.tokenizer_extra
            .insert("server_alignment".into(), outcome.to_json());
    }
    print!(
        "{}",
        workload::stats::render(&args.dataset.dataset_name, &workload::stats::of(&samples))
    );
    let plan = plan::build_from(&plan_cfg, samples, &tokenizer)?;
    let fingerprint = crate::multihost::fingerprint(&crate::multihost::FingerprintInput {
        seed: args.seed,
        dataset_name: &args.dataset.dataset_name,
        num_prompts: plan.requests.len(),
        request_rate: info.request_rate,
        burstiness: info.burstiness,
        max_concurrency: max_concurrency_total,
        plan: &plan,
    });
    let num_prompts_total = plan.requests.len();
    // This host's share: request i when i mod N is its index, global arrivals kept.
    let (plan, plan_index) = if hosts.num_hosts > 1 {
        let (mine, index) = crate::multihost::split(plan, &hosts)?;
        info.max_concurrency = crate::multihost::concurrency_share(info.max_concurrency, &hosts)?;
        eprintln!(
            "This host sends {} of the plan's {num_prompts_total} requests",
            mine.requests.len()
        );
        (mine, index)
    } else {
        let n = plan.requests.len();
        (plan, (0..n).collect())
    };
    let plan = Arc::new(plan);
    eprintln!(
        "Built the plan: {} requests in {:.2} s",
        plan.requests.len(),
        built.elapsed().as_secs_f64()
    );
    if plan.length_mismatch_tokens != 0 {
        let (n, more) = (
            plan.length_mismatch_tokens.abs(),
            plan.length_mismatch_tokens > 0,
        );
        eprintln!(
            "WARNING: the prompts have {n} {} tokens in total than asked for (the tokenizer could not hit every length exactly)",
            if more { "more" } else { "fewer" }
        );
    }

    println!("Starting initial single prompt test run...");
    if args.ready_check_timeout_sec == 0 {
        println!("Skipping endpoint ready check.");
    } else {
        let probe = ReadyProbe {
            url: format!("{}{}", target.base_url, plan_cfg.path),
            host_port: target.host_header.clone(),
            model: plan_cfg.model.clone(),
        };
        ready_check(&plan, &target, &probe, args.ready_check_timeout_sec)?;
    }
    let num_warmups = args.warmup_requests.unwrap_or(args.num_warmups);
    if num_warmups > 0 {
        println!("Warming up with {num_warmups} requests...");
    }
    println!("Starting main benchmark run...");
    match (&plan_cfg.ramp_up, plan_cfg.replay_timestamps) {
        (_, true) => println!("Traffic: replaying the dataset's trace timestamps"),
        (Some(r), _) => {
            println!("Traffic ramp-up strategy: {}.", r.strategy_name());
            println!(
                "Will increase RPS from {} to {} RPS over the duration of the benchmark.",
                py_float(r.start_rps),
                py_float(r.end_rps)
            );
        }
        (None, false) => println!("Traffic request rate: {}", py_float(info.request_rate)),
    }
    let shape = if info.burstiness == 1.0 {
        "Poisson process"
    } else {
        "Gamma distribution"
    };
    println!("Burstiness factor: {} ({shape})", py_float(info.burstiness));
    println!(
        "Maximum request concurrency: {}",
        info.max_concurrency
            .map_or("None".to_string(), |c| c.to_string())
    );

    let cpus = placement::allowed_cpus();
    let cfg = EngineConfig {
        addr: target.addr,
        num_shards: args.num_shards.unwrap_or(cpus.len()).max(1),
        cpus,
        max_concurrency: info.max_concurrency,
        num_warmups,
        show_progress: !args.disable_tqdm,
        busy_poll: std::time::Duration::from_micros(args.busy_poll_us),
        io_engine: args.io_engine,
        duration: args.duration.map(std::time::Duration::from_secs_f64),
        timeouts: args.timeouts(),
        tls: target.tls.clone(),
        stop_on_saturation: args.stop_on_saturation.then(|| engine::saturation::Config {
            min_seconds: args.saturation_min_seconds,
            marker: args.saturation_marker.clone(),
        }),
    };
    if args.flush_cache {
        // SGLang's servers flush at /flush_cache, vLLM's reset at /reset_prefix_cache.
        let path = if args.backend.starts_with("sglang") {
            "/flush_cache"
        } else {
            "/reset_prefix_cache"
        };
        match control::post(&target, path, "{}") {
            Ok(_) => println!("Flushed the server's prefix cache ({path})."),
            Err(e) => eprintln!("WARNING: --flush-cache: {e:#}; the run goes on with a warm cache"),
        }
    }
    let profiling = args.profile
        && match control::post(&target, "/start_profile", "{}") {
            Ok(_) => {
                println!("Profiler started");
                true
            }
            Err(e) => {
                eprintln!("WARNING: --profile: {e:#}; the run goes on without profiling");
                false
            }
        };
    // vLLM reads the speculative-decoding counters before and after; servers without them
    // (or without /metrics) simply get no such section.
    let spec_before = spec_counters(&target);
    if let Some(barrier) = barrier {
        let at = barrier()?;
        start_at = Some(start_at.map_or(at, |s| s.max(at)));
    }
    // From here a Ctrl-C stops the run and still reports it; before, it simply exits. The
    // handler stays until the files are written (a third signal ends the process at once).
    if let Err(e) = stop::install(std::time::Duration::from_secs_f64(args.shutdown_grace)) {
        eprintln!(
            "WARNING: cannot catch SIGINT/SIGTERM ({e}): Ctrl-C ends the run without a report"
        );
    }
    let _signals = SignalGuard;
    let resources_before = crate::procstat::Resources::now();
    let clock_state = crate::multihost::ClockState::now();
    let run = engine::run_at(plan.clone(), &cfg, start_at);
    let resources_after = crate::procstat::Resources::now();
    if profiling {
        println!("Stopping profiler...");
        if let Err(e) = control::post(&target, "/stop_profile", "{}") {
            eprintln!("WARNING: --profile: {e:#}");
        }
    }
    let mut out = run?;
    // t0 on the wall clock, for merging hosts' results on one time base.
    let t0_unix_ns = {
        let (wall, now) = (std::time::SystemTime::now(), Instant::now());
        crate::multihost::unix_ns(wall)
            .saturating_sub(now.saturating_duration_since(out.t0).as_nanos() as u64)
            + out.t0.saturating_duration_since(now).as_nanos() as u64
    };
    if let Some(at) = start_at {
        let late = t0_unix_ns as i64 - crate::multihost::unix_ns(at) as i64;
        eprintln!(
            "--start-at: t0 {:.3} ms after the requested instant; clock {} (estimated error {} µs, max {} µs)",
            late as f64 / 1e6,
            if clock_state.synchronized { "synchronized" } else { "NOT synchronized" },
            clock_state.esterror_us,
            clock_state.maxerror_us
        );
    }
    let plan_index: Vec<usize> = plan_index
        .iter()
        .zip(&out.records)
        .filter(|(_, r)| !r.not_sent)
        .map(|(&g, _)| g)
        .collect();
    let stopped = stop::stopped_by();
    // --stop-on-saturation (issue 8): stopped by the check, not by a signal.
    let saturated = out.saturation.clone().filter(|_| stopped.is_none());
    let stopped_name = stopped
        .map(|s| s.name())
        .or(saturated.as_ref().map(|_| "saturation"));
    let partial = stopped_name.map(|name| {
        let aborted = out
            .records
            .iter()
            .filter(|r| r.failure == Some(crate::record::FailureKind::Aborted))
            .count();
        let unsent = out.records.iter().filter(|r| r.not_sent).count();
        let by = match &saturated {
            Some(v) => format!("the saturation check ({})", v.describe()),
            None => name.to_string(),
        };
        format!(
            "PARTIAL RESULTS: {by} stopped the run; {unsent} planned requests were not sent, \
             {aborted} in flight were aborted"
        )
    });
    if let Some(line) = &partial {
        println!("{line}");
    }
    // Each record's conversation turn, for the per-turn figures (None: no conversations).
    let mut turns: Option<Vec<u32>> = plan
        .has_conversations()
        .then(|| plan.requests.iter().map(|r| r.turn).collect());
    // Before the unsent records go: the plan index says which shard ran a request.
    let health = health::evaluate(
        &out.records,
        health::Layout {
            num_shards: out.num_shards,
            max_concurrency: info.max_concurrency,
        },
    );
    let unsent = out.records.iter().filter(|r| r.not_sent).count();
    if unsent > 0 {
        if let Some(t) = turns.as_mut() {
            let mut sent = out.records.iter().map(|r| !r.not_sent);
            t.retain(|_| sent.next().unwrap_or(false));
        }
        out.records.retain(|r| !r.not_sent);
        match stopped {
            Some(sig) => println!(
                "{} stopped the run: {unsent} planned requests were not sent and are left out",
                sig.name()
            ),
            None if saturated.is_some() => println!(
                "The saturation check stopped the run: {unsent} planned requests were not sent and are left out"
            ),
            None => println!(
                "--duration {} s ended the run: {unsent} planned requests were not sent and are left out",
                py_float(args.duration.unwrap_or(0.0))
            ),
        }
    } else if let (Some(d), None) = (args.duration, stopped_name) {
        eprintln!(
            "WARNING: every planned request was sent before --duration {} s ended; raise --num-prompts to fill the duration",
            py_float(d)
        );
    }
    let info = RunInfo {
        num_prompts: out.records.len(),
        ..info
    };
    // CLOCK_MONOTONIC is what Python's perf_counter reads on Linux.
    let t0_mono_s = crate::clock::MonoAnchor::now().to_ns(out.t0) as f64 / 1e9;

    // After the clock: unescape the texts and count output tokens the way vLLM does (usage,
    // else the tokenizer on the generated text).
    let mut texts = Vec::with_capacity(out.records.len());
    for r in out.records.iter_mut() {
        let mut text = String::new();
        if let Err(e) = crate::proto::unescape_into(&r.text_raw, &mut text) {
            if r.success {
                r.success = false;
                r.error = Some(format!(
                    "generated text is not valid JSON string content: {e}"
                ));
            }
        }
        if r.success && r.usage_output_tokens.is_none() {
            r.output_tokens = if args.skip_tokenizer_init {
                1
            } else {
                tokenizer.count(&text).unwrap_or(0) as u32
            };
            out.metrics.record_tpot(r);
        }
        texts.push(text);
    }

    let failed: Vec<&str> = out
        .records
        .iter()
        .filter(|r| !r.success)
        .map(|r| r.error.as_deref().unwrap_or("unknown error"))
        .collect();
    if !failed.is_empty() {
        println!("Failed requests during benchmark run detected (capping to 10):");
        for (i, e) in failed.iter().take(10).enumerate() {
            println!("Error {i}: {}", crate::secrets::scrub(e));
        }
    }

    let mut figures = report::figures(&info, &out.records, &out.metrics, out.duration_ns);
    if let (Some(before), Some(after)) = (spec_before, spec_counters(&target)) {
        figures.spec_decode = report::spec_decode::figures(&before, &after);
    }
    if !slos.0.is_empty() {
        figures.goodput = Some(goodput::evaluate(&slos, &out.records, figures.duration_s));
    }
    let (vllm_block, sglang_block) = args.report_style.blocks(&args.backend);
    if vllm_block {
        print!("{}", console::render(&info, &figures));
    }
    let sglang_file = args.output_file.is_some() || args.output_details;
    let sglang_out = (sglang_block || sglang_file).then(|| {
        let retokenized: Vec<u32> = out
            .records
            .iter()
            .zip(&texts)
            .map(|(r, t)| match r.success {
                true => tokenizer.count(t).unwrap_or(0) as u32,
                false => 0,
            })
            .collect();
        let server_info = control::get_text(&target, "/server_info")
            .ok()
            .and_then(|t| serde_json::from_str::<Value>(&t).ok());
        let accept_length = server_info
            .as_ref()
            .and_then(sglang_accept_length)
            .or(figures.spec_decode.as_ref().map(|s| s.acceptance_length));
        let run = sglang::SglangRun {
            tag: args.tag.clone(),
            backend: args.backend.clone(),
            dataset_name: args.dataset.dataset_name.clone(),
            request_rate: (!plan_cfg.replay_timestamps).then_some(args.request_rate),
            max_concurrency: info.max_concurrency,
            sharegpt_output_len: args.dataset.sharegpt_output_len,
            random_input_len: args.dataset.random_input_len(),
            random_output_len: args.dataset.random_output_len(),
            random_range_ratio: args.dataset.random_range_ratio,
            server_info,
        };
        let f = sglang::figures(
            &out.records,
            &retokenized,
            figures.duration_s,
            (
                figures.max_output_tokens_per_s,
                figures.max_concurrent_requests,
            ),
            accept_length,
        );
        (run, f)
    });
    if let (true, Some((run, f))) = (sglang_block, &sglang_out) {
        print!("{}", sglang::render(run, f, figures.goodput.as_ref()));
    }
    let per_turn = turns
        .as_deref()
        .map(|t| report::turns::per_turn(&out.records, t));
    if let Some(per_turn) = &per_turn {
        print!("{}", report::turns::render(per_turn));
    }
    print!(
        "{}",
        health::render(
            &health,
            info.max_concurrency.is_some(),
            Some(out.connections_opened),
            sglang_block
                .then(|| health::ItlPair::of(&out.records))
                .as_ref(),
        )
    );
    if let Some(w) = &health.warning {
        eprintln!("WARNING: {w}");
    }
    print!(
        "{}",
        report::failures::render(
            &report::failures::Failures::of(&out.records),
            out.keepalive_retries
        )
    );
    let events: u64 = out
        .records
        .iter()
        .filter(|r| r.success)
        .map(|r| 1 + r.itl_ns.len() as u64)
        .sum();
    let cpu_us = out.shard_cpu_ns as f64 / 1e3;
    eprintln!(
        "servebench: {} shards, {} connections opened; client CPU while sending {:.2} s \
         ({:.1} µs per request, {:.2} µs per streamed event)",
        out.num_shards,
        out.connections_opened,
        cpu_us / 1e6,
        cpu_us / out.records.len().max(1) as f64,
        cpu_us / events.max(1) as f64,
    );
    eprintln!(
        "{}",
        crate::procstat::render(&resources_before, &resources_after)
    );

    // The report above is printed whatever happens to the files: a write error (a full disk)
    // is reported for each file, after the others have been tried.
    let mut write_errors: Vec<String> = Vec::new();
    if let (true, Some((run, f))) = (sglang_file, &sglang_out) {
        let details = args
            .output_details
            .then_some((out.records.as_slice(), texts.as_slice()));
        let mut fields = sglang::jsonl_fields(run, f, figures.goodput.as_ref(), details);
        if let Some(name) = stopped_name {
            fields.push(("partial".into(), sglang::Field::Json(Value::Bool(true))));
            fields.push(("stopped_by".into(), sglang::Field::Json(Value::from(name))));
        }
        let line = sglang::to_line(&fields);
        let path = match &args.output_file {
            Some(p) => std::path::PathBuf::from(p),
            None => {
                let mmdd = chrono::Local::now().format("%m%d").to_string();
                sglang::default_file_name(run, info.num_prompts, &mmdd)
            }
        };
        match sglang::append(&path, &line) {
            Ok(()) => eprintln!("Appended the result to {}", path.display()),
            Err(e) => write_errors.push(format!(
                "cannot write the output file {}: {e}",
                path.display()
            )),
        }
    }
    let date = chrono::Local::now().format("%Y%m%d-%H%M%S").to_string();
    let result_object = |detailed: bool| {
        let mut obj = result_json::build(
            &info,
            &figures,
            &out.records,
            &texts,
            &date,
            t0_mono_s,
            detailed,
        );
        if let Some(per_turn) = &per_turn {
            obj.insert("per_turn".into(), report::turns::to_json(per_turn));
        }
        obj.insert("keepalive_retries".into(), out.keepalive_retries.into());
        if multihost {
            let host = crate::multihost::HostRun {
                hosts: hosts.clone(),
                fingerprint: fingerprint.clone(),
                max_concurrency_total,
                num_prompts_total,
                t0_unix_ns,
                t0_mono_s,
                duration_ns: out.duration_ns,
                start_at_unix_ns: start_at.map(crate::multihost::unix_ns),
                clock: clock_state,
                percentile_metrics: info
                    .percentile_metrics
                    .iter()
                    .map(|k| k.key())
                    .collect::<Vec<_>>()
                    .join(","),
                percentiles: info.percentiles.clone(),
            };
            obj.insert(
                crate::multihost::HOST_KEY.into(),
                crate::multihost::host_json(&host, &out.metrics, &out.records),
            );
            if detailed {
                obj.insert(
                    crate::multihost::PLAN_INDEX_KEY.into(),
                    plan_index.clone().into(),
                );
            }
        }
        obj.insert(
            "client_resources".into(),
            crate::procstat::to_json(&resources_before, &resources_after),
        );
        if let Some(name) = stopped_name {
            obj.insert("partial".into(), Value::Bool(true));
            obj.insert("stopped_by".into(), Value::from(name));
        }
        if let Some(v) = &saturated {
            obj.insert("saturation".into(), v.to_json());
        }
        obj
    };
    if args.save_result || args.append_result {
        let path = result_json::file_name(
            &info,
            args.result_filename.as_deref(),
            args.result_dir.as_deref(),
            &date,
        );
        let obj = Value::Object(result_object(args.save_detailed));
        match result_json::write(&path, &obj, args.append_result) {
            Ok(()) => eprintln!("Result saved to {}", path.display()),
            Err(e) => write_errors.push(format!(
                "cannot write the result file {}: {e}",
                path.display()
            )),
        }
    }
    // HTML report (issue 5): the page draws from the detailed result object, built here
    // even when the saved file leaves the per-request arrays out.
    if let Some(path) = &args.html_report {
        // Drawn from the object as a file would hold it (the parser may round a float's
        // last bit), so `servebench report` on a saved file makes this very page.
        let text = result_json::to_python_json(&Value::Object(result_object(true)));
        let obj: Map<String, Value> = serde_json::from_str(&text)?;
        let path = std::path::Path::new(path);
        match report::html::write(path, &report::html::render(&obj)) {
            Ok(()) => eprintln!("HTML report saved to {}", path.display()),
            Err(e) => write_errors.push(format!("{e:#}")),
        }
    }
    if let Some(line) = &partial {
        println!("{line}");
    }
    if !write_errors.is_empty() {
        bail!(
            "the results were measured and printed above, but {}",
            write_errors.join("; ")
        );
    }
    Ok(result_object(false))
}

/// Gives SIGINT/SIGTERM their default action back when the run is over.
struct SignalGuard;

impl Drop for SignalGuard {
    fn drop(&mut self) {
        stop::uninstall();
    }
}

fn prepare(args: &BenchArgs) -> anyhow::Result<Setup> {
    let backend = Backend::resolve(&args.backend, &args.endpoint)?;
    let names_adapters =
        backend.is_openai_compatible() || backend.api == crate::backend::Api::SglangGenerate;
    if !args.lora_modules.is_empty() && !names_adapters {
        bail!(
            "--lora-modules: --backend {} has no way to name an adapter; use an OpenAI or SGLang backend",
            backend.name
        );
    }
    if args.tokenize_prompt && backend.api != crate::backend::Api::SglangGenerate {
        bail!(
            "--tokenize-prompt sends SGLang's input_ids: use --backend sglang (got {})",
            backend.name
        );
    }
    if args.disable_stream && !backend.api.can_disable_stream() {
        bail!(
            "--disable-stream: --backend {} always streams (or never does); drop the flag",
            backend.name
        );
    }
    args.dataset.check()?;
    if args.max_concurrency == Some(0) {
        bail!("--max-concurrency must be greater than 0");
    }
    if args.num_prompts == 0 {
        bail!("--num-prompts must be at least 1");
    }
    if args.warmup_requests.is_some() && args.num_warmups > 0 {
        bail!("--num-warmups (vLLM) and --warmup-requests (SGLang) both ask for warmups: give one");
    }
    let ramp_up = ramp_up(args)?;
    if let Some(d) = args.duration {
        if d.is_nan() || d <= 0.0 || d > 1e7 {
            bail!("--duration {d}: must be a positive number of seconds");
        }
    }
    let replay_timestamps = match args.dataset.dataset_name.as_str() {
        "timed_trace" | "timed-trace" => !args.no_self_timed,
        "mooncake" => args.dataset.use_trace_timestamps,
        "burstgpt" => args.dataset.burstgpt_replay_timestamps,
        _ => false,
    };
    if replay_timestamps && (ramp_up.is_some() || args.request_rate.is_finite()) {
        bail!(
            "--dataset-name {} replays its trace timestamps, so --request-rate and \
             --ramp-up-* do not apply; drop them, or turn replay off (--no-self-timed for \
             timed_trace; without --use-trace-timestamps / --burstgpt-replay-timestamps)",
            args.dataset.dataset_name
        );
    }
    if args.burstiness.is_nan() || args.burstiness <= 0.0 {
        bail!("--burstiness {}: must be positive", args.burstiness);
    }
    let percentile_metrics = MetricKey::parse_list(
        args.percentile_metrics
            .as_deref()
            .unwrap_or("ttft,tpot,itl"),
    )
    .map_err(anyhow::Error::msg)?;
    let percentiles =
        report::parse_percentiles(&args.metric_percentiles).map_err(anyhow::Error::msg)?;
    let slos = goodput::parse(&args.goodput).map_err(anyhow::Error::msg)?;
    let mut headers = parse_pairs(&args.header, "--header")?;
    let metadata = parse_pairs(&args.metadata, "--metadata")?;
    let extra_body = request_extras(args, &backend)?;

    let target = tls_target(args)?;
    let (model_id, model_name) = match &args.model {
        Some(m) => (m.clone(), args.served_model_name.clone()),
        None => {
            println!("Model not specified, fetching first model from server...");
            let (name, id) = control::first_model(&target)?;
            println!("First model name: {name}, first model id: {id}");
            (id, Some(name))
        }
    };
    let tokenizer = load_tokenizer(args, &model_id)?;

    // vLLM's order: Authorization from OPENAI_API_KEY, then --header (which may override it).
    if let Ok(key) = std::env::var("OPENAI_API_KEY") {
        if !key.is_empty()
            && !headers
                .iter()
                .any(|(k, _)| k.eq_ignore_ascii_case("authorization"))
        {
            headers.insert(0, ("Authorization".into(), format!("Bearer {key}")));
        }
    }
    crate::secrets::register_headers(&headers);
    let request_id_prefix = args
        .request_id_prefix
        .clone()
        .unwrap_or_else(|| format!("bench-{:08x}-", rand::random::<u32>()));

    let plan_cfg = PlanConfig {
        api: backend.api,
        stream: !args.disable_stream,
        lora_modules: args.lora_modules.clone(),
        lora_round_robin: args.lora_assignment == "round-robin",
        tokenize_prompt: args.tokenize_prompt,
        model: model_name.clone().unwrap_or_else(|| model_id.clone()),
        host_header: target.host_header.clone(),
        path: target.path(&backend.endpoint),
        headers,
        request_id_prefix,
        num_prompts: args.num_prompts,
        input_len: args.dataset.random_input_len(),
        output_len: args.dataset.random_output_len(),
        range_ratio: args.dataset.random_range_ratio,
        prefix_len: args.dataset.random_prefix_len,
        request_rate: args.request_rate,
        burstiness: args.burstiness,
        seed: args.seed,
        // vLLM forces ignore_eos for the random dataset on OpenAI-compatible backends.
        ignore_eos: true,
        extra_body,
        ramp_up,
        replay_timestamps,
        warmup_output_cap: args.warmup_requests.map(|_| 32),
    };
    let info = RunInfo {
        backend: args.backend.clone(),
        label: args.label.clone(),
        model_id,
        tokenizer_id: tokenizer.id().to_string(),
        tokenizer_extra: tokenizer_keys(args, &tokenizer),
        num_prompts: args.num_prompts,
        metadata,
        request_rate: args.request_rate,
        burstiness: args.burstiness,
        max_concurrency: args.max_concurrency,
        percentile_metrics,
        percentiles,
        ramp_up,
    };
    check_outputs(args, &info)?;
    Ok(Setup {
        info,
        target,
        plan_cfg,
        tokenizer,
        slos,
    })
}

/// Every file the run will write must be writable before anything is sent: its directory is
/// created if missing (as vLLM does for `--result-dir`) and tested with a temporary file, and
/// an existing file (appended to) must open for appending.
fn check_outputs(args: &BenchArgs, info: &RunInfo) -> anyhow::Result<()> {
    let mut outputs: Vec<(std::path::PathBuf, &str)> = Vec::new();
    if args.save_result || args.append_result {
        let flag = if args.result_dir.is_some() {
            "--result-dir"
        } else {
            "--result-filename"
        };
        let path = result_json::file_name(
            info,
            args.result_filename.as_deref(),
            args.result_dir.as_deref(),
            "date",
        );
        outputs.push((path, flag));
    }
    if let Some(p) = &args.output_file {
        outputs.push((p.into(), "--output-file"));
    }
    if let Some(p) = &args.html_report {
        outputs.push((p.into(), "--html-report"));
    }
    for (path, flag) in outputs {
        check_writable(&path, flag)?;
    }
    Ok(())
}

fn check_writable(path: &std::path::Path, flag: &str) -> anyhow::Result<()> {
    let dir = match path.parent().filter(|d| !d.as_os_str().is_empty()) {
        Some(d) => d,
        None => std::path::Path::new("."),
    };
    std::fs::create_dir_all(dir)
        .with_context(|| format!("{flag}: cannot create the directory {}", dir.display()))?;
    let probe = dir.join(format!(".servebench-write-test-{}", std::process::id()));
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
        .and_then(|_| std::fs::remove_file(&probe))
        .with_context(|| {
            format!(
                "{flag}: the directory {} is not writable; the results could not be saved",
                dir.display()
            )
        })?;
    if path.is_dir() {
        bail!("{flag}: {} is a directory, not a file", path.display());
    }
    if path.exists() {
        std::fs::OpenOptions::new()
            .append(true)
            .open(path)
            .with_context(|| format!("{flag}: cannot write to {}", path.display()))?;
    }
    Ok(())
}

/// How many requests to plan: `--num-prompts`, or with `--duration` and a fixed finite rate
/// enough to last the duration.
fn planned_count(args: &BenchArgs) -> usize {
    match args.duration {
        Some(d) if args.request_rate.is_finite() && args.ramp_up_strategy.is_none() => {
            (args.request_rate * d).ceil().max(1.0) as usize
        }
        _ => args.num_prompts,
    }
}

/// `--ramp-up-strategy` with its rates, checked as vLLM checks them.
fn ramp_up(args: &BenchArgs) -> anyhow::Result<Option<plan::RampUp>> {
    let Some(strategy) = &args.ramp_up_strategy else {
        if args.ramp_up_start_rps.is_some() || args.ramp_up_end_rps.is_some() {
            bail!("--ramp-up-start-rps / --ramp-up-end-rps need --ramp-up-strategy linear|exponential");
        }
        return Ok(None);
    };
    if args.request_rate.is_finite() {
        bail!("--ramp-up-strategy replaces --request-rate: give one or the other");
    }
    let (Some(start_rps), Some(end_rps)) = (args.ramp_up_start_rps, args.ramp_up_end_rps) else {
        bail!("--ramp-up-strategy {strategy} needs both --ramp-up-start-rps and --ramp-up-end-rps");
    };
    let r = plan::RampUp {
        exponential: strategy == "exponential",
        start_rps,
        end_rps,
    };
    r.validate()?;
    Ok(Some(r))
}

fn parse_pairs(items: &[String], flag: &str) -> anyhow::Result<Vec<(String, String)>> {
    items
        .iter()
        .map(|item| match item.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => {
                Ok((k.trim().to_string(), v.trim().to_string()))
            }
            _ => bail!(
                "{flag} {}: expected KEY=VALUE",
                crate::secrets::redact_header_arg(item)
            ),
        })
        .collect()
}

/// SGLang's accept length from `/server_info`: `internal_states[0].avg_spec_accept_length`
/// (under `decode[0]` when prefill and decode are split).
fn sglang_accept_length(info: &Value) -> Option<f64> {
    let info = info.get("decode").and_then(|d| d.get(0)).unwrap_or(info);
    info.get("internal_states")?
        .get(0)?
        .get("avg_spec_accept_length")?
        .as_f64()
}

/// TLS (issue 6): the target with `--ca-cert` / `--insecure`; for `https://`, the warning,
/// the engine note and a handshake now, so a certificate problem is one clear error before
/// anything else is sent.
fn tls_target(args: &BenchArgs) -> anyhow::Result<Target> {
    let opts = engine::tls::TlsOptions {
        ca_cert: args.ca_cert.clone(),
        insecure: args.insecure,
    };
    let target = Target::from_flags_with(args.base_url.as_deref(), &args.host, args.port, &opts)?;
    if target.tls.is_none() {
        if args.ca_cert.is_some() || args.insecure {
            eprintln!("WARNING: --ca-cert and --insecure apply to https:// targets only");
        }
        return Ok(target);
    }
    if args.insecure {
        eprintln!("{}", engine::tls::INSECURE_WARNING);
    }
    if args.io_engine == engine::IoEngine::Uring {
        eprintln!("https: the shards run on the glommio engine (the io_uring engine speaks plain TCP only)");
    }
    control::check_tls(&target)?;
    Ok(target)
}

fn spec_counters(target: &Target) -> Option<report::spec_decode::SpecCounters> {
    let text = control::get_text(target, "/metrics").ok()?;
    report::spec_decode::parse_counters(&text)
}

/// What the ready check's messages name.
struct ReadyProbe {
    url: String,
    host_port: String,
    model: String,
}

/// What a failed test request means: the server may still be starting (retry), or retrying
/// cannot help (fail at once).
#[derive(Debug, PartialEq)]
enum NotReady {
    Retry(String),
    Fatal(String),
}

/// Classify the test request's error text (the engine's: "cannot connect to ...", "HTTP 404
/// Not Found: body", ...).
fn not_ready(error: &str, p: &ReadyProbe) -> NotReady {
    let status = error
        .strip_prefix("HTTP ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse::<u16>().ok());
    let lower = error.to_ascii_lowercase();
    match status {
        // vLLM: "The model `x` does not exist." (404); a missing route names no model.
        Some(404) if !p.model.is_empty() && error.contains(p.model.as_str()) => {
            NotReady::Fatal(format!(
                "the server at {} does not serve the model '{}' ({}); check --model / \
             --served-model-name against its /v1/models",
                p.url, p.model, error
            ))
        }
        Some(404) => NotReady::Fatal(format!(
            "{} answered 404 Not Found: wrong --endpoint or --base-url for --backend? ({error})",
            p.url
        )),
        Some(code @ (401 | 403)) => NotReady::Fatal(format!(
            "{} answered HTTP {code}: the server wants credentials; check --header / \
             OPENAI_API_KEY ({error})",
            p.url
        )),
        _ if lower.contains("connection refused") || error.contains("(os error 111)") => {
            NotReady::Retry(format!(
                "connection refused at {} — is the server running?",
                p.host_port
            ))
        }
        _ => NotReady::Retry(error.to_string()),
    }
}

/// vLLM's ready check: the first planned request, sent alone every 5 s until it succeeds or
/// `timeout_s` has passed. Errors that waiting cannot fix (404, 401/403) fail at once.
fn ready_check(
    plan: &plan::Plan,
    target: &Target,
    probe_info: &ReadyProbe,
    timeout_s: u64,
) -> anyhow::Result<()> {
    let probe = Arc::new(plan::Plan {
        api: plan.api,
        streamed: plan.streamed,
        requests: plan.requests[..1].to_vec(),
        length_mismatch_tokens: 0,
        warmup: None,
    });
    let cfg = EngineConfig {
        addr: target.addr,
        num_shards: 1,
        cpus: placement::allowed_cpus(),
        max_concurrency: Some(1),
        num_warmups: 0,
        show_progress: false,
        busy_poll: std::time::Duration::ZERO,
        io_engine: Default::default(),
        duration: None,
        timeouts: Default::default(),
        tls: target.tls.clone(),
        stop_on_saturation: None,
    };
    let deadline = Instant::now() + std::time::Duration::from_secs(timeout_s);
    loop {
        let why = match engine::run(probe.clone(), &cfg) {
            Ok(out) if out.records[0].success => {
                println!("Initial test run completed.");
                return Ok(());
            }
            Ok(out) => out.records[0]
                .error
                .clone()
                .unwrap_or_else(|| "unknown error".into()),
            Err(e) => format!("{e:#}"),
        };
        let why = match not_ready(&why, probe_info) {
            NotReady::Fatal(msg) => bail!("{msg}"),
            NotReady::Retry(msg) => msg,
        };
        if Instant::now() + std::time::Duration::from_secs(5) > deadline {
            bail!(
                "the endpoint did not serve the test request within {timeout_s} s \
                 (--ready-check-timeout-sec); last error: {why}"
            );
        }
        eprintln!("Endpoint not ready yet ({why}); retrying in 5 s");
        std::thread::sleep(std::time::Duration::from_secs(5));
    }
}

/// What is merged into every body: the sampling flags that were given, `--logprobs`, then
/// `--extra-body` (vLLM's order, so the user's JSON wins).
fn request_extras(args: &BenchArgs, backend: &Backend) -> anyhow::Result<Map<String, Value>> {
    let mut extras = Map::new();
    let float = |v: Option<f64>| v.and_then(serde_json::Number::from_f64).map(Value::Number);
    for (key, value) in [
        ("top_p", float(args.top_p)),
        ("top_k", args.top_k.map(Value::from)),
        ("min_p", float(args.min_p)),
        ("temperature", float(args.temperature)),
        ("frequency_penalty", float(args.frequency_penalty)),
        ("presence_penalty", float(args.presence_penalty)),
        ("repetition_penalty", float(args.repetition_penalty)),
    ] {
        if let Some(v) = value {
            extras.insert(key.into(), v);
        }
    }
    if !extras.is_empty() && !backend.is_openai_compatible() {
        bail!(
            "Sampling parameters are only supported by openai-compatible backends (--backend {} \
             is not); pass them with --extra-body in the format this backend expects",
            backend.name
        );
    }
    if let Some(n) = args.logprobs {
        extras.insert("logprobs".into(), Value::from(n));
    }
    if let Some(s) = &args.extra_body {
        match serde_json::from_str::<Value>(s) {
            Ok(Value::Object(m)) => extras.extend(m),
            _ => {
                bail!("--extra-body must be a JSON object, e.g. '{{\"temperature\": 0}}' (got {s})")
            }
        }
    }
    Ok(extras)
}

/// What the result file says about the tokenizer beyond `tokenizer_id` (`server_alignment`
/// is added once alignment has run).
fn tokenizer_keys(args: &BenchArgs, tok: &Tokenizer) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("tokenizer_revision".into(), Value::from(tok.revision()));
    m.insert("tokenizer_sha256".into(), Value::from(tok.sha256()));
    m.insert(
        "skip_tokenizer_init".into(),
        Value::from(args.skip_tokenizer_init),
    );
    m.insert("server_alignment".into(), Value::Null);
    m
}

/// `--tokenizer` (a path or hub id), else `--model` when it is a local path or an `org/name`
/// hub id that resolves, else the embedded default. `--skip-tokenizer-init` refuses the
/// datasets built from token ids and keeps the embedded tokenizer only for the length
/// estimates of text datasets.
fn load_tokenizer(args: &BenchArgs, model: &str) -> anyhow::Result<Tokenizer> {
    if let Some(mode) = args.tokenizer_mode.as_deref() {
        if !matches!(mode, "auto" | "hf") {
            eprintln!(
                "WARNING: --tokenizer-mode {mode} changes nothing: servebench always runs the \
                 tokenizer.json fast tokenizer (vLLM's auto/hf)"
            );
        }
    }
    if args.trust_remote_code {
        eprintln!(
            "Note: --trust-remote-code changes nothing: a tokenizer.json runs no remote code"
        );
    }
    if args.skip_tokenizer_init {
        let name = args.dataset.dataset_name.as_str();
        if !matches!(name, "sharegpt" | "custom" | "hf") {
            bail!(
                "--skip-tokenizer-init: --dataset-name {name} builds its prompts from token ids \
                 and needs a tokenizer; drop --skip-tokenizer-init, or use a text dataset \
                 (sharegpt, custom, hf)"
            );
        }
        println!(
            "--skip-tokenizer-init: output tokens are counted from the server's usage (1 where \
             a reply has none); input lengths are estimates from the embedded tokenizer"
        );
        return Ok(Tokenizer::embedded_default());
    }
    let hub = crate::tokenizer::HubOptions::from_env(args.tokenizer_revision.as_deref());
    if let Some(t) = args.tokenizer.as_deref() {
        return Tokenizer::load(t, &hub);
    }
    if std::path::Path::new(model).exists() {
        return Tokenizer::from_path(std::path::Path::new(model));
    }
    // A served name ("llama", "servebench-mock") is no hub id worth a download; org/name is.
    let why = if model.contains('/') && crate::tokenizer::hub::looks_like_hub_id(model) {
        match Tokenizer::load(model, &hub) {
            Ok(tok) => return Ok(tok),
            Err(e) => format!("{e:#}"),
        }
    } else {
        format!("--model '{model}' is not a local path or an org/name hub id")
    };
    eprintln!(
        "WARNING: no --tokenizer given and {why}: prompts are built with the embedded default tokenizer (servebench-default). Pass --tokenizer PATH|ORG/NAME for the model's own token counts."
    );
    Ok(Tokenizer::embedded_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::DEFAULT_ENDPOINT;
    use crate::cli::{normalize_args, Cli};
    use clap::Parser;

    fn args(flags: &[&str]) -> BenchArgs {
        let argv = std::iter::once("servebench")
            .chain(flags.iter().copied())
            .map(String::from);
        Cli::try_parse_from(normalize_args(argv)).unwrap().bench
    }

    fn extras(flags: &[&str]) -> anyhow::Result<Map<String, Value>> {
        let a = args(flags);
        let backend = Backend::resolve(&a.backend, DEFAULT_ENDPOINT)?;
        request_extras(&a, &backend)
    }

    #[test]
    fn sampling_flags_are_sent_only_when_given_and_extra_body_wins() {
        assert!(extras(&[]).unwrap().is_empty());
        let m = extras(&[
            "--temperature",
            "0.7",
            "--top_k",
            "5",
            "--logprobs",
            "2",
            "--extra-request-body",
            r#"{"top_k": 9, "seed": 1}"#,
        ])
        .unwrap();
        let keys: Vec<&str> = m.keys().map(String::as_str).collect();
        assert_eq!(keys, ["top_k", "temperature", "logprobs", "seed"]);
        assert_eq!(
            (m["top_k"].as_i64(), m["temperature"].as_f64()),
            (Some(9), Some(0.7))
        );
    }

    #[test]
    fn ready_check_failures_retry_only_what_waiting_can_fix() {
        let p = ReadyProbe {
            url: "http://h:1/v1/completions".into(),
            host_port: "h:1".into(),
            model: "m".into(),
        };
        let refused = not_ready(
            "cannot connect to 1.2.3.4:1: Connection refused (os error 111)",
            &p,
        );
        assert_eq!(
            refused,
            NotReady::Retry("connection refused at h:1 — is the server running?".into())
        );
        let NotReady::Fatal(m) = not_ready(
            r#"HTTP 404 Not Found: {"error": {"message": "The model `m` does not exist."}}"#,
            &p,
        ) else {
            panic!("404 must fail at once")
        };
        assert!(m.contains("does not serve the model 'm'"), "{m}");
        let NotReady::Fatal(m) = not_ready("HTTP 404 Not Found: no such route", &p) else {
            panic!("404 must fail at once")
        };
        assert!(
            m.contains("http://h:1/v1/completions") && m.contains("--endpoint"),
            "{m}"
        );
        for code in ["401 Unauthorized", "403 Forbidden"] {
            let NotReady::Fatal(m) = not_ready(&format!("HTTP {code}: denied"), &p) else {
                panic!("{code} must fail at once")
            };
            assert!(m.contains("OPENAI_API_KEY"), "{m}");
        }
        assert!(matches!(
            not_ready("HTTP 503 Service Unavailable: loading", &p),
            NotReady::Retry(_)
        ));
    }

    #[test]
    fn sampling_flags_are_refused_where_the_api_has_no_such_fields() {
        let e = extras(&["--backend", "tgi", "--top-p", "0.9"]).unwrap_err();
        assert!(e.to_string().contains("openai-compatible"), "{e}");
        assert!(extras(&["--backend", "openai-chat", "--top-p", "0.9"]).is_ok());
        assert!(extras(&["--extra-body", "[1]"]).is_err());
    }
}

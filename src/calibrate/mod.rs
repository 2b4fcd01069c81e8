//! `servebench calibrate`: how far can this host's client be trusted?
//!
//! Runs the built-in mock (a child process on its own CPUs, writing its truth log) and the
//! client (on the other CPUs) over a ladder of concurrent streams with a fixed latency model,
//! then compares what the client measured with what the server did, event by event. A last
//! step against a zero-latency mock finds the request-rate ceiling.

mod compare;
mod mock_child;
mod table;
mod workload;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};

use crate::engine::{self, placement, EngineConfig};
use compare::Summary;
use mock_child::{MockChild, MockSpec};
use workload::Workload;

#[derive(clap::Args, Debug, Clone)]
pub struct CalibrateArgs {
    /// Concurrent streams per step.
    #[arg(long, value_delimiter = ',', default_value = "1,100,1000,10000")]
    pub steps: Vec<usize>,
    /// The mock's time to first token (ms).
    #[arg(long, default_value_t = 50.0)]
    pub ttft_ms: f64,
    /// The mock's time between tokens (ms).
    #[arg(long, default_value_t = 10.0)]
    pub itl_ms: f64,
    /// Tokens per response.
    #[arg(long, default_value_t = 128)]
    pub output_len: u32,
    /// Words in each prompt.
    #[arg(long, default_value_t = 256)]
    pub input_len: usize,
    /// Requests each stream sends in a step.
    #[arg(long, default_value_t = 2)]
    pub waves: usize,
    /// Requests of the ceiling step (zero-latency mock, 16 tokens, all sent at once);
    /// 0 skips it.
    #[arg(long, default_value_t = 30000)]
    pub ceiling_requests: usize,
    /// Concurrent streams of the ceiling step.
    #[arg(long, default_value_t = 512)]
    pub ceiling_concurrency: usize,
    /// Error budget: mean TTFT error, the client's share (ms): the client's TTFT minus the
    /// server's, less the time the request waited in the server's backlog.
    #[arg(long, default_value_t = 0.2)]
    pub budget_ttft_mean_ms: f64,
    /// Error budget: p99 TTFT error, the client's share (ms).
    #[arg(long, default_value_t = 1.0)]
    pub budget_ttft_p99_ms: f64,
    /// Error budget: mean ITL error (ms).
    #[arg(long, default_value_t = 0.05)]
    pub budget_itl_mean_ms: f64,
    /// CPUs for the client (default: the first half of those this process may use).
    #[arg(long, value_delimiter = ',')]
    pub client_cpus: Option<Vec<usize>>,
    /// CPUs for the mock (default: the rest; with one CPU, both share it).
    #[arg(long, value_delimiter = ',')]
    pub mock_cpus: Option<Vec<usize>>,
    /// glommio's spin-before-park for the client's shards (µs).
    #[arg(long, default_value_t = 0)]
    pub busy_poll_us: u64,
    /// The client's shard event loop (as `--io-engine` of the benchmark).
    #[arg(long, value_enum, default_value_t = engine::IoEngine::default())]
    pub io_engine: engine::IoEngine,
    /// Write every figure as JSON to this file.
    #[arg(long)]
    pub output_json: Option<PathBuf>,
    /// Print a Markdown table instead of the console report (for docs/PERFORMANCE.md).
    #[arg(long)]
    pub markdown: bool,
}

/// What one step measured.
#[derive(Debug, Default, serde::Serialize)]
pub struct StepResult {
    pub streams: usize,
    pub requests: usize,
    pub failed: usize,
    pub event_count_mismatches: usize,
    pub events: u64,
    pub duration_s: f64,
    pub events_per_s: f64,
    pub requests_per_s: f64,
    pub ttft_err: Summary,
    /// The server's share of the TTFT error (request sent → request read) and the rest.
    pub server_ingest: Summary,
    pub client_ttft_err: Summary,
    pub itl_err: Summary,
    pub delivery: Summary,
    pub send_lag: Summary,
    pub client_cpu_s: f64,
    pub client_cpu_us_per_request: f64,
    pub client_cpu_us_per_event: f64,
    pub client_cores: usize,
    pub rss_bytes_per_stream: f64,
    pub mock_cpu_s: f64,
    pub mock_cores: usize,
    pub connections_opened: u64,
    pub within_budget: bool,
}

#[derive(Debug, serde::Serialize)]
pub struct Report {
    pub host_cpus: usize,
    pub client_cpus: Vec<usize>,
    pub mock_cpus: Vec<usize>,
    pub ttft_ms: f64,
    pub itl_ms: f64,
    pub output_len: u32,
    pub budget: Budget,
    pub steps: Vec<StepResult>,
    pub ceiling: Option<StepResult>,
    /// Highest step within budget, if any.
    pub max_streams_within_budget: Option<usize>,
}

#[derive(Clone, Copy, Debug, serde::Serialize)]
pub struct Budget {
    pub ttft_mean_ms: f64,
    pub ttft_p99_ms: f64,
    pub itl_mean_ms: f64,
}

pub fn run(args: &CalibrateArgs) -> anyhow::Result<()> {
    let (client_cpus, mock_cpus) = split_cpus(args)?;
    if args.steps.is_empty() || args.steps.contains(&0) {
        bail!("--steps must list stream counts of at least 1");
    }
    if args.output_len == 0 || args.waves == 0 {
        bail!("--output-len and --waves must be at least 1");
    }
    let budget = Budget {
        ttft_mean_ms: args.budget_ttft_mean_ms,
        ttft_p99_ms: args.budget_ttft_p99_ms,
        itl_mean_ms: args.budget_itl_mean_ms,
    };
    let scratch = std::env::temp_dir().join(format!("servebench-calibrate-{}", std::process::id()));
    std::fs::create_dir_all(&scratch)
        .with_context(|| format!("cannot create {}", scratch.display()))?;
    eprintln!(
        "calibrate: client on CPUs {client_cpus:?}, mock on CPUs {mock_cpus:?}; mock TTFT {} ms, ITL {} ms, {} tokens",
        args.ttft_ms, args.itl_ms, args.output_len
    );

    let mut report = Report {
        host_cpus: placement::allowed_cpus().len(),
        client_cpus: client_cpus.clone(),
        mock_cpus: mock_cpus.clone(),
        ttft_ms: args.ttft_ms,
        itl_ms: args.itl_ms,
        output_len: args.output_len,
        budget,
        steps: Vec::new(),
        ceiling: None,
        max_streams_within_budget: None,
    };
    let request_time = Duration::from_secs_f64(
        (args.ttft_ms + args.itl_ms * (args.output_len - 1) as f64) / 1000.0,
    );
    for &streams in &args.steps {
        let step = Step {
            streams,
            waves: args.waves,
            prompt_words: args.input_len,
            output_len: args.output_len,
            ttft_ms: args.ttft_ms,
            itl_ms: args.itl_ms,
            request_time,
            max_concurrency: streams,
        };
        eprintln!("calibrate: {streams} streams ...");
        let mut result = step.run(args, &client_cpus, &mock_cpus, &scratch)?;
        result.within_budget = budget.holds(&result);
        if result.within_budget {
            report.max_streams_within_budget = Some(
                report
                    .max_streams_within_budget
                    .map_or(streams, |m| m.max(streams)),
            );
        }
        report.steps.push(result);
    }
    if args.ceiling_requests > 0 {
        let concurrency = args.ceiling_concurrency.max(1);
        let step = Step {
            streams: concurrency,
            waves: args.ceiling_requests.div_ceil(concurrency),
            prompt_words: 16,
            output_len: 16,
            ttft_ms: 0.0,
            itl_ms: 0.0,
            request_time: Duration::ZERO,
            max_concurrency: concurrency,
        };
        eprintln!("calibrate: request-rate ceiling ...");
        report.ceiling = Some(step.run(args, &client_cpus, &mock_cpus, &scratch)?);
    }
    let _ = std::fs::remove_dir_all(&scratch);

    if args.markdown {
        print!("{}", table::markdown(&report));
    } else {
        print!("{}", table::render(&report));
    }
    if let Some(path) = &args.output_json {
        let json = serde_json::to_string_pretty(&report)?;
        std::fs::write(path, json + "\n")
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

impl Budget {
    fn holds(&self, r: &StepResult) -> bool {
        r.failed == 0
            && r.event_count_mismatches == 0
            && r.client_ttft_err.mean_ns <= self.ttft_mean_ms * 1e6
            && r.client_ttft_err.p99_ns <= self.ttft_p99_ms * 1e6
            && r.itl_err.mean_ns.abs() <= self.itl_mean_ms * 1e6
    }
}

struct Step {
    streams: usize,
    waves: usize,
    prompt_words: usize,
    output_len: u32,
    ttft_ms: f64,
    itl_ms: f64,
    request_time: Duration,
    max_concurrency: usize,
}

impl Step {
    fn run(
        &self,
        args: &CalibrateArgs,
        client_cpus: &[usize],
        mock_cpus: &[usize],
        scratch: &std::path::Path,
    ) -> anyhow::Result<StepResult> {
        let truth_log = scratch.join(format!("truth-{}.jsonl", self.streams));
        let mock = MockChild::start(&MockSpec {
            cpus: mock_cpus,
            ttft_ms: self.ttft_ms,
            itl_ms: self.itl_ms,
            truth_log: &truth_log,
        })?;
        let prefix = format!("calib-{}-", self.streams);
        let workload = Workload {
            streams: self.streams,
            waves: self.waves,
            prompt_words: self.prompt_words,
            output_len: self.output_len,
            request_time: self.request_time,
            host_header: mock.addr.to_string(),
            request_id_prefix: prefix.clone(),
        };
        let plan = Arc::new(workload.build()?);
        let cfg = EngineConfig {
            addr: mock.addr,
            num_shards: client_cpus.len(),
            cpus: client_cpus.to_vec(),
            max_concurrency: Some(self.max_concurrency),
            num_warmups: 0,
            show_progress: false,
            busy_poll: Duration::from_micros(args.busy_poll_us),
            io_engine: args.io_engine,
            duration: None,
            timeouts: Default::default(),
            tls: None,
            stop_on_saturation: None,
        };

        let rss = RssSampler::start(mock_cpus);
        let mock_cpu_before = mock.cpu_ns();
        // The engine has no request timeout yet: if the server stops answering, give up on
        // the step (and take the mock down) rather than wait forever.
        let planned = Duration::from_nanos(plan.requests.last().map_or(0, |r| r.arrival_ns))
            + self.request_time;
        let watchdog = Watchdog::start(
            planned * 3 + Duration::from_secs(30),
            self.streams,
            mock.pid(),
        );
        let out = engine::run(plan, &cfg)?;
        watchdog.disarm();
        let mock_cpu_ns = mock.cpu_ns().saturating_sub(mock_cpu_before);
        let rss_peak_growth = rss.stop();
        let t0_mono = crate::clock::MonoAnchor::now().to_ns(out.t0);
        let truth_path = mock.truth_log.clone();
        mock.stop()?;
        let truth = compare::read_truth(&truth_path)?;
        let _ = std::fs::remove_file(&truth_path);
        let mut c = compare::compare(&out.records, t0_mono, &prefix, &truth)?;

        let duration_s = out.duration_ns as f64 / 1e9;
        let cpu_us = out.shard_cpu_ns as f64 / 1e3;
        Ok(StepResult {
            streams: self.streams,
            requests: out.records.len(),
            failed: c.failed,
            event_count_mismatches: c.event_count_mismatches,
            events: c.events,
            duration_s,
            events_per_s: c.events as f64 / duration_s.max(1e-9),
            requests_per_s: c.matched as f64 / duration_s.max(1e-9),
            ttft_err: compare::summarize(&mut c.ttft_err),
            server_ingest: compare::summarize(&mut c.server_ingest),
            client_ttft_err: compare::summarize(&mut c.client_ttft_err),
            itl_err: compare::summarize(&mut c.itl_err),
            delivery: compare::summarize(&mut c.delivery),
            send_lag: compare::summarize(&mut c.send_lag),
            client_cpu_s: cpu_us / 1e6,
            client_cpu_us_per_request: cpu_us / out.records.len().max(1) as f64,
            client_cpu_us_per_event: cpu_us / c.events.max(1) as f64,
            client_cores: out.num_shards,
            rss_bytes_per_stream: rss_peak_growth as f64 / self.streams as f64,
            mock_cpu_s: mock_cpu_ns as f64 / 1e9,
            mock_cores: mock_cpus.len(),
            connections_opened: out.connections_opened,
            within_budget: false,
        })
    }
}

/// Client CPUs and mock CPUs: the flags, else halves of the CPUs this process may use.
fn split_cpus(args: &CalibrateArgs) -> anyhow::Result<(Vec<usize>, Vec<usize>)> {
    let allowed = placement::allowed_cpus();
    let half = (allowed.len() / 2).max(1);
    let client = args
        .client_cpus
        .clone()
        .unwrap_or_else(|| allowed[..half].to_vec());
    let mock = args.mock_cpus.clone().unwrap_or_else(|| {
        if allowed.len() > 1 {
            allowed[half..].to_vec()
        } else {
            allowed.clone()
        }
    });
    for cpu in client.iter().chain(&mock) {
        if !allowed.contains(cpu) {
            bail!("CPU {cpu} is not one this process may run on (allowed: {allowed:?})");
        }
    }
    if client.is_empty() || mock.is_empty() {
        bail!("--client-cpus and --mock-cpus must each name at least one CPU");
    }
    Ok((client, mock))
}

/// Ends the whole process when a step runs far past its plan.
struct Watchdog {
    done: Arc<AtomicBool>,
}

impl Watchdog {
    fn start(limit: Duration, streams: usize, mock_pid: u32) -> Self {
        let done = Arc::new(AtomicBool::new(false));
        let flag = done.clone();
        std::thread::spawn(move || {
            let deadline = std::time::Instant::now() + limit;
            while std::time::Instant::now() < deadline {
                if flag.load(Ordering::Relaxed) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            eprintln!(
                "calibrate: the {streams}-stream step has not finished {:.0} s after it started: \
                 requests are still outstanding (did the mock stop answering? see its messages \
                 above); giving up",
                limit.as_secs_f64()
            );
            // SAFETY: kill only signals our own child.
            unsafe { libc::kill(mock_pid as libc::pid_t, libc::SIGKILL) };
            std::process::exit(1);
        });
        Watchdog { done }
    }

    fn disarm(self) {
        self.done.store(true, Ordering::Relaxed);
    }
}

/// The peak growth of this process's resident memory while the engine runs.
struct RssSampler {
    stop: Arc<AtomicBool>,
    peak: Arc<AtomicU64>,
    base: u64,
    thread: std::thread::JoinHandle<()>,
}

impl RssSampler {
    /// Samples from the mock's CPUs so that it never preempts a client shard.
    fn start(cpus: &[usize]) -> Self {
        let base = mock_child::self_rss_bytes();
        let stop = Arc::new(AtomicBool::new(false));
        let peak = Arc::new(AtomicU64::new(base));
        let (s, p) = (stop.clone(), peak.clone());
        let cpus = cpus.to_vec();
        let thread = std::thread::spawn(move || {
            placement::confine_current_thread(&cpus);
            while !s.load(Ordering::Relaxed) {
                p.fetch_max(mock_child::self_rss_bytes(), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        RssSampler {
            stop,
            peak,
            base,
            thread,
        }
    }

    fn stop(self) -> u64 {
        self.peak
            .fetch_max(mock_child::self_rss_bytes(), Ordering::Relaxed);
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.thread.join();
        self.peak.load(Ordering::Relaxed).saturating_sub(self.base)
    }
}

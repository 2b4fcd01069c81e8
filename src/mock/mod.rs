//! `servebench mock`: a built-in LLM server with an exact latency model that speaks the wire
//! format of every backend the benchmark drives: OpenAI Completions, Chat and Responses
//! (vLLM, SGLang, LMDeploy, Truss), SGLang's `/generate`, TGI, Triton/TensorRT-LLM and
//! DeepSpeed-MII (see `formats`), plus the control calls clients make around a run.
//!
//! It is the tests' target, the README demo's target and the ground truth for the client's
//! timing accuracy, so it is built like the client: one glommio executor per pinned CPU, each
//! with its own `SO_REUSEPORT` listener on the same port, one task per connection, and every
//! byte of every reply pre-serialised except the few that change per request or per token.
//!
//! Latency model, the same for every format: with `t_read` the instant the request was fully
//! read, streamed token `k`
//! (0-based) is written at `t_read + ttft + k * itl`; a non-streamed body at
//! `t_read + ttft + (max_tokens - 1) * itl`. Deadlines are absolute, so nothing drifts.
//! With `--max-batch` the mock has a capacity: requests queue for a slot and decode slows
//! with the batch (`capacity.rs`), so latency rises past a knee as on a real server.
//!
//! With `--truth-log FILE` it also writes when it really read each completion request and
//! wrote each part of the reply (CLOCK_MONOTONIC ns; format in `truth.rs`).

pub mod capacity;
mod completions;
mod conn;
mod control;
mod faults;
mod formats;
mod http;
mod shard;
mod signals;
mod tls;
mod truth;

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use glommio::{CpuSet, LocalExecutorBuilder, Placement, PoolPlacement};
use socket2::{Domain, Protocol, Socket, Type};

use crate::clock::MonoAnchor;
use shard::ShardConfig;
use signals::StopSignals;

/// The tokenizer used for `prompt_tokens` of text prompts when `--tokenizer` is not given.
const DEFAULT_TOKENIZER: &[u8] = include_bytes!("../../assets/default-tokenizer.json");

/// Longest TTFT or ITL accepted; keeps every deadline far from `Instant` overflow.
const MAX_DELAY_MS: f64 = 3_600_000.0;

/// Flags of `servebench mock`.
#[derive(clap::Args, Debug, Clone)]
pub struct MockArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,

    /// Port to listen on (0 picks a free one).
    #[arg(long, default_value_t = 8000)]
    pub port: u16,

    /// Time to first token in milliseconds, counted from the end of the request.
    #[arg(long, default_value_t = 0.0)]
    pub ttft_ms: f64,

    /// Time between consecutive tokens in milliseconds.
    #[arg(long, default_value_t = 0.0)]
    pub itl_ms: f64,

    /// Model name served and reported by /v1/models.
    #[arg(long, default_value = "servebench-mock")]
    pub model: String,

    /// Executors, each pinned to its own CPU among those this process may run on.
    #[arg(long, default_value_t = 1)]
    pub num_shards: usize,

    /// Comma-separated CPU ids to pin shards to (one shard per id unless --num-shards says
    /// otherwise, in which case the counts must match).
    #[arg(long, value_delimiter = ',')]
    pub cpus: Option<Vec<usize>>,

    /// Report `usage.prompt_tokens` for text prompts by tokenizing them (with --tokenizer, else
    /// the embedded default tokenizer). Off by default: tokenizing costs the mock ~0.1 ms of
    /// CPU per prompt, which would delay other streams' tokens; without it a text prompt's
    /// usage carries completion_tokens only (clients keep their own prompt count) and a
    /// token-id prompt's prompt_tokens is its length.
    #[arg(long)]
    pub count_prompt_tokens: bool,

    /// tokenizer.json used to count the tokens of text prompts; implies --count-prompt-tokens.
    #[arg(long)]
    pub tokenizer: Option<PathBuf>,

    /// Write one JSON line per completed generation request (any format) to FILE (created or
    /// truncated): its x-request-id and the CLOCK_MONOTONIC nanoseconds at which the request
    /// was read and the reply's head, each token event and its end were written. Complete
    /// once the mock stops (SIGINT/SIGTERM).
    #[arg(long, value_name = "FILE")]
    pub truth_log: Option<PathBuf>,

    /// Chat completions only: the first N tokens of every reply are sent as
    /// `reasoning_content` rather than `content` (to exercise clients' reasoning handling).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub reasoning_tokens: u32,

    /// SGLang `/generate` streams only: send a chunk every K tokens (and at the last), as
    /// SGLang's `--stream-interval K` does; `completion_tokens` then grows by K per chunk.
    #[arg(long, value_name = "K", default_value_t = 1)]
    pub sglang_tokens_per_chunk: u32,

    /// Report vLLM speculative-decoding counters on `GET /metrics` as if every reply had been
    /// drafted K tokens at a time, with one draft accepted per two tokens (acceptance length
    /// 2, rate 100/K %). 0: no such counters.
    #[arg(long, value_name = "K", default_value_t = 0)]
    pub spec_decode_tokens: u32,

    /// Tokenizer (issue 10): the server whose `/tokenize` and `/detokenize` shapes to speak
    /// (both answered with the mock's tokenizer), or none for no such routes (404).
    #[arg(long, value_enum, default_value_t = control::TokenizeDialect::Vllm)]
    pub tokenize_dialect: control::TokenizeDialect,

    // Fault injection (issue 6)
    /// Each `--fault-*` rate R in [0, 1] faults that share of generation requests, on a
    /// deterministic schedule: of a shard's first n requests exactly floor(n*R) get the fault
    /// (see --fault-seed). Rates add up to at most 1. This one: a non-2xx reply
    /// (--fault-http-status) with a JSON error body.
    #[arg(long, value_name = "RATE", default_value_t = 0.0)]
    pub fault_http_error: f64,
    /// Status of --fault-http-error replies (4xx or 5xx).
    #[arg(long, value_name = "CODE", default_value_t = 503)]
    pub fault_http_status: u16,
    /// 429 with `Retry-After: 1` and a JSON error body.
    #[arg(long = "fault-429", value_name = "RATE", default_value_t = 0.0)]
    pub fault_429: f64,
    /// Connection reset after reading the request, before any reply byte.
    #[arg(long, value_name = "RATE", default_value_t = 0.0)]
    pub fault_reset_before_head: f64,
    /// Connection reset halfway through the reply body.
    #[arg(long, value_name = "RATE", default_value_t = 0.0)]
    pub fault_reset_mid_stream: f64,
    /// Connection reset after the last event, before the terminating chunk.
    #[arg(long, value_name = "RATE", default_value_t = 0.0)]
    pub fault_reset_after_last: f64,
    /// An event with cut-off JSON after the first token (unstreamed: half a body).
    #[arg(long, value_name = "RATE", default_value_t = 0.0)]
    pub fault_malformed_json: f64,
    /// An `{"error": ...}` event in a 200 stream after the first token (unstreamed: as the
    /// 200 body).
    #[arg(long, value_name = "RATE", default_value_t = 0.0)]
    pub fault_error_event: f64,
    /// The head and first event, then silence forever with the socket open.
    #[arg(long, value_name = "RATE", default_value_t = 0.0)]
    pub fault_stall: f64,
    /// A complete reply, then the connection closed without `Connection: close`.
    #[arg(long, value_name = "RATE", default_value_t = 0.0)]
    pub fault_keepalive_close: f64,
    /// A Content-Length shorter than the body (streamed: instead of chunked framing).
    #[arg(long, value_name = "RATE", default_value_t = 0.0)]
    pub fault_wrong_length: f64,
    /// A chunk-size line that is not hexadecimal.
    #[arg(long, value_name = "RATE", default_value_t = 0.0)]
    pub fault_bad_chunk: f64,
    /// One 17 MiB SSE line.
    #[arg(long, value_name = "RATE", default_value_t = 0.0)]
    pub fault_huge_line: f64,
    /// Generated text that is not valid UTF-8.
    #[arg(
        long = "fault-invalid-utf8",
        value_name = "RATE",
        default_value_t = 0.0
    )]
    pub fault_invalid_utf8: f64,
    /// Every fault kind at once, R spread evenly over them (added to their own rates).
    #[arg(long, value_name = "RATE", default_value_t = 0.0)]
    pub fault_rate_all: f64,
    /// Starting phase of each kind's schedule (0: the first fault of rate R is request
    /// ceil(1/R)); same seed, same schedule.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub fault_seed: u64,

    // TLS (issue 6)
    /// Serve HTTPS with this PEM certificate chain (leaf first); needs --tls-key.
    #[arg(long, value_name = "PEM", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    // Capacity model (issue 8)
    /// Most requests generating at once (a server's max batch / max_num_seqs); later ones
    /// queue first come first served, and the wait adds to their TTFT. 0: no limit.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub max_batch: usize,
    /// Extra time per token for every sequence running (itself included) when a request
    /// starts: its ITL is --itl-ms + this × batch. Needs --max-batch.
    #[arg(long, value_name = "MS", default_value_t = 0.0, requires = "max_batch")]
    pub batch_itl_ms: f64,
}

impl MockArgs {
    /// The checked `--fault-*` flags; None when no fault is on.
    fn faults(&self) -> anyhow::Result<Option<faults::FaultConfig>> {
        let rates = [
            self.fault_http_error,
            self.fault_429,
            self.fault_reset_before_head,
            self.fault_reset_mid_stream,
            self.fault_reset_after_last,
            self.fault_malformed_json,
            self.fault_error_event,
            self.fault_stall,
            self.fault_keepalive_close,
            self.fault_wrong_length,
            self.fault_bad_chunk,
            self.fault_huge_line,
            self.fault_invalid_utf8,
        ];
        faults::FaultConfig::new(
            rates,
            self.fault_rate_all,
            self.fault_http_status,
            self.fault_seed,
        )
        .map_err(|e| anyhow!(e))
    }
}

impl Default for MockArgs {
    fn default() -> Self {
        MockArgs {
            host: "127.0.0.1".into(),
            port: 8000,
            ttft_ms: 0.0,
            itl_ms: 0.0,
            model: "servebench-mock".into(),
            num_shards: 1,
            cpus: None,
            count_prompt_tokens: false,
            tokenizer: None,
            truth_log: None,
            reasoning_tokens: 0,
            sglang_tokens_per_chunk: 1,
            spec_decode_tokens: 0,
            tokenize_dialect: control::TokenizeDialect::Vllm,
            fault_http_error: 0.0,
            fault_http_status: 503,
            fault_429: 0.0,
            fault_reset_before_head: 0.0,
            fault_reset_mid_stream: 0.0,
            fault_reset_after_last: 0.0,
            fault_malformed_json: 0.0,
            fault_error_event: 0.0,
            fault_stall: 0.0,
            fault_keepalive_close: 0.0,
            fault_wrong_length: 0.0,
            fault_bad_chunk: 0.0,
            fault_huge_line: 0.0,
            fault_invalid_utf8: 0.0,
            fault_rate_all: 0.0,
            fault_seed: 0,
            tls_cert: None,
            tls_key: None,
            max_batch: 0,
            batch_itl_ms: 0.0,
        }
    }
}

/// How often the standalone server looks at its shards while waiting for a signal.
const SHARD_CHECK: Duration = Duration::from_millis(100);

/// Runs the mock server until SIGINT or SIGTERM (then stops it gracefully: the truth log is
/// complete) or until a shard fails.
pub fn run(args: &MockArgs) -> anyhow::Result<()> {
    // Before any thread exists, so that every thread the server starts inherits the mask.
    let signals = StopSignals::block()?;
    let handle = spawn(args)?;
    eprintln!(
        "servebench mock listening on {}://{} ({} shard{})",
        if args.tls_cert.is_some() {
            "https"
        } else {
            "http"
        },
        handle.addr,
        handle.shards.len(),
        if handle.shards.len() == 1 { "" } else { "s" }
    );
    let signal = loop {
        if let Some(name) = signals.wait(SHARD_CHECK) {
            break Some(name);
        }
        if handle.shard_ended() {
            break None;
        }
    };
    let logged = handle.shutdown()?;
    let Some(signal) = signal else {
        bail!("a mock shard ended unexpectedly");
    };
    let truth = match (logged, &args.truth_log) {
        (Some(n), Some(path)) => format!(
            ", {n} request{} logged to {}",
            if n == 1 { "" } else { "s" },
            path.display()
        ),
        _ => String::new(),
    };
    eprintln!("servebench mock: {signal}, stopped{truth}");
    Ok(())
}

/// Starts the mock server on background threads and returns once every shard is listening
/// (and its timer is warmed up).
pub fn spawn(args: &MockArgs) -> anyhow::Result<MockHandle> {
    let ttft = delay("--ttft-ms", args.ttft_ms)?;
    let itl = delay("--itl-ms", args.itl_ms)?;
    let cpus = shard_cpus(args)?;
    if args.sglang_tokens_per_chunk == 0 {
        bail!("--sglang-tokens-per-chunk must be at least 1");
    }
    let faults = args.faults()?;
    let batch_itl = delay("--batch-itl-ms", args.batch_itl_ms)?;
    let capacity =
        (args.max_batch > 0).then(|| Arc::new(capacity::Capacity::new(args.max_batch, batch_itl)));
    let options = formats::Options {
        reasoning_tokens: args.reasoning_tokens,
        sglang_tokens_per_chunk: args.sglang_tokens_per_chunk,
        spec_decode_tokens: args.spec_decode_tokens,
    };
    let (tokenizer_json, tokenizer_name): (Option<Arc<[u8]>>, String) = match &args.tokenizer {
        Some(path) => (
            Some(
                std::fs::read(path)
                    .with_context(|| format!("cannot read --tokenizer {}", path.display()))?
                    .into(),
            ),
            path.display().to_string(),
        ),
        None if args.count_prompt_tokens => {
            (Some(DEFAULT_TOKENIZER.into()), "(embedded default)".into())
        }
        None => (None, String::new()),
    };
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(tls::server_config(cert, key)?),
        (None, None) => None,
        _ => bail!("--tls-cert and --tls-key go together"),
    };
    let anchor = MonoAnchor::now();
    raise_rlimits()?;
    let listeners = bind_listeners(&args.host, args.port, cpus.len())?;
    let addr = listeners[0]
        .local_addr()?
        .as_socket()
        .context("listener has no IP address")?;

    let mut distinct = cpus.clone();
    distinct.sort_unstable();
    distinct.dedup();
    let pool_cpus = CpuSet::online()
        .map_err(|e| anyhow!("cannot read the CPU topology: {e}"))?
        .filter(|l| distinct.contains(&l.cpu));

    let stop = Arc::new(AtomicBool::new(false));
    let mut handle = MockHandle {
        addr,
        stop: stop.clone(),
        shards: Vec::with_capacity(cpus.len()),
        alive: Arc::default(),
        truth: None,
    };
    if let Some(path) = &args.truth_log {
        handle.truth = Some(truth::Writer::start(path, &distinct)?);
    }
    let spec = Arc::new(control::SpecStats::default());
    let (ready_tx, ready_rx) = mpsc::channel::<Result<(), String>>();
    for (index, (&cpu, listener)) in cpus.iter().zip(listeners).enumerate() {
        // The handle keeps its own descriptor of the listening socket: shutting it down is
        // what wakes the shard's pending accept when the server stops.
        let waker = listener
            .try_clone()
            .context("cannot duplicate the listener")?;
        let config = ShardConfig {
            index,
            num_shards: cpus.len(),
            listener: listener.into(),
            model: args.model.clone(),
            ttft,
            itl,
            options,
            tokenizer_json: tokenizer_json.clone(),
            tokenizer_name: tokenizer_name.clone(),
            tokenize_dialect: args.tokenize_dialect,
            stop: stop.clone(),
            truth: handle.truth.as_ref().map(truth::Writer::sender),
            anchor,
            spec: spec.clone(),
            faults,
            ready: ready_tx.clone(),
            tls: tls.clone(),
            capacity: capacity.clone(),
        };
        let alive = ShardAlive::new(&handle.alive);
        let join = LocalExecutorBuilder::new(Placement::Fixed(cpu))
            .name("servebench-mock")
            .io_memory(64 << 10)
            // Bounds how long one busy stream (ITL 0, thousands of tokens) can hold the shard
            // before expired timers of other streams are looked at.
            .preempt_timer(Duration::from_millis(1))
            .ring_depth(
                std::env::var("RING")
                    .ok()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(128),
            )
            // Long prompts are tokenized on this pool, off the shard's own thread.
            .blocking_thread_pool_placement(PoolPlacement::Fenced(1, pool_cpus.clone()))
            .spawn(move || async move {
                let _alive = alive;
                shard::run(config).await
            })
            .map_err(|e| anyhow!("cannot start mock shard {index} on CPU {cpu}: {e}"))?;
        handle.shards.push(ShardThread {
            join: Some(join),
            waker,
        });
    }
    drop(ready_tx);
    for _ in 0..handle.shards.len() {
        match ready_rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(message)) => bail!("mock shard failed to start: {message}"),
            // Every sender is gone: a shard thread died before reporting (e.g. the executor
            // could not be created); its join error says why.
            Err(_) => {
                handle.signal_stop();
                let why = handle.take_errors().join("; ");
                bail!("mock shard failed to start: {why}");
            }
        }
    }
    Ok(handle)
}

/// A running mock server. Dropping it stops the server too.
pub struct MockHandle {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    shards: Vec<ShardThread>,
    /// Shard threads still running.
    alive: Arc<AtomicUsize>,
    truth: Option<truth::Writer>,
}

/// Counts a shard thread as running for as long as it lives (panics included).
struct ShardAlive(Arc<AtomicUsize>);

impl ShardAlive {
    fn new(count: &Arc<AtomicUsize>) -> ShardAlive {
        count.fetch_add(1, Ordering::AcqRel);
        ShardAlive(count.clone())
    }
}

impl Drop for ShardAlive {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

struct ShardThread {
    join: Option<glommio::ExecutorJoinHandle<()>>,
    waker: Socket,
}

impl MockHandle {
    /// The address every shard listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting, drops every open connection and joins the shard threads; then
    /// writes out and closes the truth log. Failures are printed to stderr.
    pub fn stop(self) {
        if let Err(e) = self.shutdown() {
            eprintln!("servebench mock: {e:#}");
        }
    }

    /// [`stop`](Self::stop), returning failures (shards that failed, a truth log that could
    /// not be written) and the number of requests in the truth log (`None` without one).
    /// Replies in flight are cut short and not logged.
    pub fn shutdown(mut self) -> anyhow::Result<Option<u64>> {
        self.finish()
    }

    /// Whether some shard thread has ended (the server only ends them when stopping).
    fn shard_ended(&self) -> bool {
        self.alive.load(Ordering::Acquire) < self.shards.len()
    }

    fn finish(&mut self) -> anyhow::Result<Option<u64>> {
        self.signal_stop();
        let mut errors = self.take_errors();
        // Every shard has sent its last batch before its thread ended.
        let logged = match self.truth.take().map(truth::Writer::finish) {
            None => None,
            Some(Ok(lines)) => Some(lines),
            Some(Err(e)) => {
                errors.push(format!("{e:#}"));
                None
            }
        };
        if errors.is_empty() {
            Ok(logged)
        } else {
            bail!("mock server failed: {}", errors.join("; "))
        }
    }

    fn signal_stop(&self) {
        self.stop.store(true, Ordering::Release);
        for shard in &self.shards {
            // Ends the pending accept with EINVAL; the shard then sees the stop flag.
            let _ = shard.waker.shutdown(std::net::Shutdown::Read);
        }
    }

    fn take_errors(&mut self) -> Vec<String> {
        let mut errors = Vec::new();
        for (index, shard) in self.shards.iter_mut().enumerate() {
            if let Some(join) = shard.join.take() {
                if let Err(e) = join.join() {
                    errors.push(format!("shard {index}: {e}"));
                }
            }
        }
        errors
    }
}

impl Drop for MockHandle {
    fn drop(&mut self) {
        // Whatever failed was reported by `shutdown` or by `spawn` already.
        let _ = self.finish();
    }
}

fn delay(flag: &str, ms: f64) -> anyhow::Result<Duration> {
    if !ms.is_finite() || !(0.0..=MAX_DELAY_MS).contains(&ms) {
        bail!("{flag} must be between 0 and {MAX_DELAY_MS} milliseconds, got {ms}");
    }
    Ok(Duration::from_secs_f64(ms / 1000.0))
}

/// The CPU of each shard: `--cpus` as given, else the first `--num-shards` CPUs this process
/// may run on (its affinity mask, which containers and taskset restrict).
fn shard_cpus(args: &MockArgs) -> anyhow::Result<Vec<usize>> {
    if args.num_shards == 0 {
        bail!("--num-shards must be at least 1");
    }
    if let Some(cpus) = &args.cpus {
        if cpus.is_empty() {
            bail!("--cpus is empty");
        }
        if args.num_shards != 1 && args.num_shards != cpus.len() {
            bail!(
                "--num-shards {} does not match the {} CPUs given with --cpus",
                args.num_shards,
                cpus.len()
            );
        }
        return Ok(cpus.clone());
    }
    let allowed: Vec<usize> = core_affinity::get_core_ids()
        .context("cannot read the CPUs this process may run on (sched_getaffinity)")?
        .into_iter()
        .map(|c| c.id)
        .collect();
    if args.num_shards > allowed.len() {
        bail!(
            "--num-shards {} exceeds the {} CPUs this process may run on; pass --cpus to choose",
            args.num_shards,
            allowed.len()
        );
    }
    Ok(allowed[..args.num_shards].to_vec())
}

/// glommio refuses to build an executor under 512 KiB of lockable memory, and every
/// connection is a file descriptor: take what the hard limits allow.
fn raise_rlimits() -> anyhow::Result<()> {
    for (resource, name) in [
        (libc::RLIMIT_MEMLOCK, "RLIMIT_MEMLOCK"),
        (libc::RLIMIT_NOFILE, "RLIMIT_NOFILE"),
    ] {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit/setrlimit only read and write the struct passed by pointer.
        unsafe {
            if libc::getrlimit(resource, &mut limit) != 0 {
                bail!("getrlimit({name}): {}", std::io::Error::last_os_error());
            }
            if limit.rlim_cur < limit.rlim_max {
                limit.rlim_cur = limit.rlim_max;
                if libc::setrlimit(resource, &limit) != 0 {
                    bail!("setrlimit({name}): {}", std::io::Error::last_os_error());
                }
            }
        }
    }
    // Where permitted (root), go past the hard limit too: a mock serving tens of thousands
    // of streams needs a descriptor for each. Otherwise the hard limit set above stands.
    let _ = crate::engine::limits::raise_nofile_to(1 << 20);
    let mut memlock = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: as above.
    unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut memlock) };
    if memlock.rlim_cur != libc::RLIM_INFINITY && memlock.rlim_cur < 512 * 1024 {
        bail!(
            "the locked-memory limit is {} KiB and io_uring needs 512 KiB: raise it with \
             `ulimit -l`, Docker's `--ulimit memlock=-1:-1` or systemd's `LimitMEMLOCK=`",
            memlock.rlim_cur / 1024
        );
    }
    Ok(())
}

/// One listening socket per shard on the same address (`SO_REUSEPORT`: the kernel spreads
/// connections). With port 0 the first socket picks the port and the others join it.
fn bind_listeners(host: &str, port: u16, count: usize) -> anyhow::Result<Vec<Socket>> {
    let mut addr = (host, port)
        .to_socket_addrs()
        .with_context(|| format!("cannot resolve --host {host}"))?
        .next()
        .with_context(|| format!("--host {host} resolves to no address"))?;
    let mut listeners = Vec::with_capacity(count);
    for _ in 0..count {
        let socket = Socket::new(
            Domain::for_address(addr),
            Type::STREAM.cloexec(),
            Some(Protocol::TCP),
        )?;
        socket.set_reuse_address(true)?;
        socket.set_reuse_port(true)?;
        socket
            .bind(&addr.into())
            .with_context(|| format!("cannot listen on {addr}"))?;
        socket.listen(4096)?;
        if addr.port() == 0 {
            if let Some(bound) = socket.local_addr()?.as_socket() {
                addr.set_port(bound.port());
            }
        }
        listeners.push(socket);
    }
    Ok(listeners)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        mock: MockArgs,
    }

    fn parse(args: &[&str]) -> MockArgs {
        Cli::try_parse_from(std::iter::once("mock").chain(args.iter().copied()))
            .unwrap()
            .mock
    }

    #[test]
    fn flag_defaults_match_default() {
        assert_eq!(
            format!("{:?}", parse(&[])),
            format!("{:?}", MockArgs::default())
        );
    }

    #[test]
    fn flags_parse() {
        let a = parse(&[
            "--cpus",
            "3,1",
            "--ttft-ms",
            "2.5",
            "--port",
            "0",
            "--model",
            "m",
        ]);
        assert_eq!(a.cpus, Some(vec![3, 1]));
        assert_eq!((a.ttft_ms, a.port, a.model.as_str()), (2.5, 0, "m"));
    }

    #[test]
    fn shard_cpus_follow_flags() {
        let cpus = |num_shards, cpus: Option<Vec<usize>>| {
            shard_cpus(&MockArgs {
                num_shards,
                cpus,
                ..MockArgs::default()
            })
        };
        assert_eq!(cpus(1, Some(vec![2, 0])).unwrap(), vec![2, 0]);
        assert_eq!(cpus(2, Some(vec![2, 0])).unwrap(), vec![2, 0]);
        assert!(cpus(3, Some(vec![2, 0])).is_err());
        assert!(cpus(0, None).is_err());
        let allowed = core_affinity::get_core_ids().unwrap();
        assert_eq!(cpus(1, None).unwrap(), vec![allowed[0].id]);
        assert!(cpus(allowed.len() + 1, None).is_err());
    }

    #[test]
    fn delays_are_checked() {
        assert_eq!(delay("x", 1.5).unwrap(), Duration::from_micros(1500));
        for bad in [-0.1, f64::INFINITY, f64::NAN, MAX_DELAY_MS * 2.0] {
            assert!(delay("--itl-ms", bad)
                .unwrap_err()
                .to_string()
                .contains("--itl-ms"));
        }
    }
}

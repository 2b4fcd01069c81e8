//! The engine: pinned shards that send the plan's requests at their planned instants. A shard
//! is servebench's own io_uring loop (`direct/`, the default) or a glommio executor with a task
//! per concurrency slot (`shard.rs` + `exchange.rs`, `--io-engine glommio`).
//!
//! Request i of the plan belongs to shard i mod N (with multi-turn conversations: every turn of
//! conversation c to shard c mod N; a later turn is sent when the turn before it has ended, on
//! the slot its conversation holds). `--max-concurrency C` is split evenly
//! (shard s gets C/N, the first C mod N shards one more; with C < N only C shards run), so the
//! limit holds exactly in aggregate; each shard queues its own arrivals in plan order.
//! All shards start from one epoch `t0` handed out after every shard is connected and warm.

pub mod control;
pub mod direct;
pub mod exchange;
pub mod limits;
pub mod placement;
pub mod progress;
pub mod saturation;
pub mod shard;
pub mod stop;
pub mod target;
pub mod tls;
pub mod uring_check;

use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use crate::plan::Plan;
use crate::record::{Metrics, RequestRecord};

#[derive(Clone, Debug)]
pub struct EngineConfig {
    pub addr: SocketAddr,
    pub num_shards: usize,
    /// CPUs to pin shards to (round-robin).
    pub cpus: Vec<usize>,
    pub max_concurrency: Option<usize>,
    pub num_warmups: usize,
    pub show_progress: bool,
    /// glommio's spin_before_park: poll this long before sleeping.
    pub busy_poll: Duration,
    /// Which event loop runs the shards.
    pub io_engine: IoEngine,
    /// `--duration`: stop starting requests this long after `t0`.
    pub duration: Option<Duration>,
    /// `--request-timeout` and `--stall-timeout`.
    pub timeouts: Timeouts,
    /// TLS (issue 6): `https://` targets. Their shards run on the glommio engine, whatever
    /// `io_engine` says (the direct engine speaks plain TCP only).
    pub tls: Option<tls::TlsTarget>,
    /// `--stop-on-saturation`: stop early once the server clearly cannot keep up (see
    /// `saturation.rs`).
    pub stop_on_saturation: Option<saturation::Config>,
}

/// Per-request time limits; a request past either fails as [`FailureKind::Timeout`].
///
/// [`FailureKind::Timeout`]: crate::record::FailureKind::Timeout
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Timeouts {
    /// From the request's start (connect and write included) to the end of its response.
    pub request: Option<Duration>,
    /// Longest silence: no byte of the response for this long (counted from the start until
    /// the first byte).
    pub stall: Option<Duration>,
}

impl Timeouts {
    /// The earliest instant at which a request that started at `start` and last received a
    /// byte at `last_byte` times out, and why.
    pub fn expiry(&self, start: Instant, last_byte: Instant) -> Option<(Instant, TimeoutKind)> {
        let total = self.request.map(|d| (start + d, TimeoutKind::Request));
        let stall = self.stall.map(|d| (last_byte + d, TimeoutKind::Stall));
        match (total, stall) {
            (Some(a), Some(b)) => Some(if b.0 < a.0 { b } else { a }),
            (a, b) => a.or(b),
        }
    }

    /// The record's error text for a timeout of `kind`.
    pub fn message(&self, kind: TimeoutKind) -> String {
        let secs = |d: Option<Duration>| d.map_or(0.0, |d| d.as_secs_f64());
        match kind {
            TimeoutKind::Request => format!(
                "request timed out after {} s (--request-timeout)",
                secs(self.request)
            ),
            TimeoutKind::Stall => format!(
                "no response byte for {} s (--stall-timeout)",
                secs(self.stall)
            ),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeoutKind {
    Request,
    Stall,
}

/// The shard implementation: glommio's executor with one task per slot, or the direct engine
/// (one io_uring event loop per shard thread, multishot receives into provided buffers).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum IoEngine {
    Glommio,
    #[default]
    Uring,
}

/// What the engine measured.
pub struct RunOutput {
    /// One record per planned request, in plan order.
    pub records: Vec<RequestRecord>,
    pub metrics: Metrics,
    /// From `t0` to the end of the last response (vLLM's benchmark duration).
    pub duration_ns: u64,
    pub t0: Instant,
    pub connections_opened: u64,
    pub num_shards: usize,
    /// CPU time (user + system) the shard threads used from `t0` to their end, summed: the
    /// client's own cost of the timed phase, plan building and reporting excluded.
    pub shard_cpu_ns: u64,
    /// Timed requests resent once because a reused keep-alive connection was closed before
    /// any byte of their response (the keep-alive race; not counted as failures).
    pub keepalive_retries: u64,
    /// Why `--stop-on-saturation` ended the run early, when it did.
    pub saturation: Option<saturation::Verdict>,
}

/// A shard's progress counters on their own cache line: written by that shard only (relaxed
/// adds, no locks), read by the progress line.
#[repr(align(64))]
#[derive(Default)]
pub struct Counter {
    pub done: AtomicU64,
    pub started: AtomicU64,
    pub failed: AtomicU64,
    /// Output-carrying events of finished successful requests.
    pub events: AtomicU64,
    /// Timed requests that ended (sent ones only, unlike `done`): what a stop waits for.
    pub ended: AtomicU64,
    /// TTFT of the successful ones, summed, and how many: the saturation check's trend.
    pub ttft_ns_sum: AtomicU64,
    pub ttft_n: AtomicU64,
}

impl Counter {
    /// A timed request was handed to the wire.
    #[inline]
    pub fn started(&self) {
        self.started
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// `n` timed requests are over: ended, or never to be sent.
    #[inline]
    pub fn done(&self, n: u64) {
        self.done.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
    }

    /// A timed request ended (call before counting it done).
    #[inline]
    pub fn outcome(&self, r: &RequestRecord) {
        use std::sync::atomic::Ordering::Relaxed;
        self.ended.fetch_add(1, Relaxed);
        if r.success {
            self.events.fetch_add(1 + r.itl_ns.len() as u64, Relaxed);
            self.ttft_ns_sum.fetch_add(r.ttft_ns, Relaxed);
            self.ttft_n.fetch_add(1, Relaxed);
        } else {
            self.failed.fetch_add(1, Relaxed);
        }
    }
}

/// What a shard needs; shared read-only.
pub struct ShardSpec {
    pub index: usize,
    pub num_shards: usize,
    pub plan: Arc<Plan>,
    pub addr: SocketAddr,
    pub concurrency_share: Option<usize>,
    pub all_at_once: bool,
    pub num_warmups: usize,
    pub progress: Arc<Vec<Counter>>,
    /// Requests not started this many ns after `t0` are never sent (`--duration`).
    pub deadline_ns: Option<u64>,
    pub timeouts: Timeouts,
    /// TLS (issue 6): wrap every connection in TLS.
    pub tls: Option<tls::TlsTarget>,
}

impl ShardSpec {
    /// Plan indices of this shard's requests, in plan order: request i mod N, or with
    /// conversations every turn of conversation c mod N, so that a conversation's turns run
    /// in order on one shard.
    pub fn my_requests(&self) -> Vec<usize> {
        if !self.plan.has_conversations() {
            return (self.index..self.plan.requests.len())
                .step_by(self.num_shards)
                .collect();
        }
        let mut conversation = 0;
        let mut mine = Vec::new();
        for (i, r) in self.plan.requests.iter().enumerate() {
            if r.turn == 0 && i > 0 {
                conversation += 1;
            }
            if conversation % self.num_shards == self.index {
                mine.push(i);
            }
        }
        mine
    }

    /// How many of `mine` start something (single requests and first turns): the most that
    /// can be in flight at once.
    pub fn starts(&self, mine: &[usize]) -> usize {
        mine.iter()
            .filter(|&&i| self.plan.requests[i].turn == 0)
            .count()
    }

    /// This shard's share of `--num-warmups` (warmup i goes to shard i mod N).
    pub fn my_warmups(&self) -> usize {
        (self.index..self.num_warmups)
            .step_by(self.num_shards)
            .count()
    }

    /// Empty records for `mine`, with room for every event, allocated before the clock.
    pub fn records_for(&self, mine: &[usize]) -> Vec<RequestRecord> {
        mine.iter()
            .map(|&i| {
                let r = &self.plan.requests[i];
                RequestRecord::with_capacity(r.prompt_len, r.output_len, r.arrival_ns)
            })
            .collect()
    }

    /// Concurrency slots for `requests` requests, and how many connections to open before
    /// the clock. A capped pool (or one burst) is known in advance: open all of it, so no
    /// request pays for a handshake. An uncapped pool grows as the load shows its size.
    pub fn pool_size(&self, requests: usize) -> (usize, usize) {
        let slots = self
            .concurrency_share
            .unwrap_or(usize::MAX)
            .min(requests)
            .max(1);
        let initial = if self.all_at_once || self.concurrency_share.is_some() {
            slots
        } else {
            slots.min(16)
        };
        (slots, initial)
    }
}

#[derive(Default)]
pub struct ShardOutput {
    pub records: Vec<(usize, RequestRecord)>,
    pub metrics: Metrics,
    pub last_done_ns: u64,
    pub connections_opened: u64,
    pub cpu_ns: u64,
    /// See [`RunOutput::keepalive_retries`].
    pub keepalive_retries: u64,
}

/// Start line shared by the shards and the main thread.
pub struct Start {
    state: Mutex<StartState>,
    cv: Condvar,
}

#[derive(Default)]
struct StartState {
    ready: usize,
    t0: Option<Instant>,
    failed: Option<String>,
}

impl Start {
    fn new() -> Self {
        Start {
            state: Mutex::new(StartState::default()),
            cv: Condvar::new(),
        }
    }

    /// A shard is connected and warm; block until the epoch is set (None: the run is off).
    pub fn ready_and_wait(&self) -> Option<Instant> {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        s.ready += 1;
        self.cv.notify_all();
        loop {
            if s.failed.is_some() {
                return None;
            }
            if let Some(t0) = s.t0 {
                return Some(t0);
            }
            s = self.cv.wait(s).unwrap_or_else(|p| p.into_inner());
        }
    }

    fn fail(&self, why: String) {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        s.failed.get_or_insert(why);
        self.cv.notify_all();
    }

    /// Main thread: wait for `n` shards, then hand out `t0` a little in the future so every
    /// shard is already asleep on its first arrival when it comes.
    fn go_when_ready(
        &self,
        n: usize,
        start_at: Option<std::time::SystemTime>,
    ) -> anyhow::Result<Instant> {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        while s.ready < n && s.failed.is_none() {
            s = self.cv.wait(s).unwrap_or_else(|p| p.into_inner());
        }
        if let Some(why) = &s.failed {
            bail!("{why}");
        }
        let t0 = match start_at {
            None => Instant::now() + Duration::from_millis(20),
            // Multi-host (issue 7): t0 is a wall-clock instant shared by every host. A start
            // missed by under a second still runs (it shows as lateness in the result).
            Some(at) => match at.duration_since(std::time::SystemTime::now()) {
                Ok(ahead) => Instant::now() + ahead,
                Err(e) if e.duration() <= Duration::from_secs(1) => Instant::now(),
                Err(e) => {
                    let why = format!(
                        "--start-at passed {:.3} s before the shards were ready (plan, \
                         connections and warmups took longer): choose a later start",
                        e.duration().as_secs_f64()
                    );
                    s.failed = Some(why.clone());
                    self.cv.notify_all();
                    bail!("{why}");
                }
            },
        };
        s.t0 = Some(t0);
        self.cv.notify_all();
        Ok(t0)
    }
}

/// CPU time (user + system) the calling thread has used so far, in nanoseconds.
pub fn thread_cpu_ns() -> u64 {
    let mut ru = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage fills the struct it is given; RUSAGE_THREAD cannot fail on Linux.
    let ru = unsafe {
        libc::getrusage(libc::RUSAGE_THREAD, ru.as_mut_ptr());
        ru.assume_init()
    };
    let tv = |t: libc::timeval| t.tv_sec as u64 * 1_000_000_000 + t.tv_usec as u64 * 1_000;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// Run the plan on `cfg.num_shards` pinned executors and gather what they measured.
pub fn run(plan: Arc<Plan>, cfg: &EngineConfig) -> anyhow::Result<RunOutput> {
    run_at(plan, cfg, None)
}

/// [`run`], with `t0` at the wall-clock instant `start_at` when given (`--start-at`).
pub fn run_at(
    plan: Arc<Plan>,
    cfg: &EngineConfig,
    start_at: Option<std::time::SystemTime>,
) -> anyhow::Result<RunOutput> {
    let num_shards = match cfg.max_concurrency {
        Some(c) => cfg.num_shards.min(c),
        None => cfg.num_shards,
    }
    .clamp(1, plan.requests.len().max(1));
    stop::clear_saturation();
    limits::raise_memlock(num_shards)?;
    let conns = cfg.max_concurrency.unwrap_or(plan.requests.len());
    if let Some(w) = limits::raise_nofile(conns) {
        eprintln!("{w}");
    }

    let progress: Arc<Vec<Counter>> =
        Arc::new((0..num_shards).map(|_| Counter::default()).collect());
    let start = Arc::new(Start::new());
    let all_at_once = plan.requests.iter().all(|r| r.arrival_ns == 0);
    let cpus = placement::assign(num_shards, &cfg.cpus);

    let mut threads = Vec::with_capacity(num_shards);
    for (index, &cpu) in cpus.iter().enumerate() {
        let spec = Arc::new(ShardSpec {
            index,
            num_shards,
            plan: plan.clone(),
            addr: cfg.addr,
            concurrency_share: cfg
                .max_concurrency
                .map(|c| c / num_shards + usize::from(index < c % num_shards)),
            all_at_once,
            num_warmups: cfg.num_warmups,
            progress: progress.clone(),
            deadline_ns: cfg.duration.map(|d| d.as_nanos() as u64),
            timeouts: cfg.timeouts,
            tls: cfg.tls.clone(),
        });
        let start = start.clone();
        let busy_poll = cfg.busy_poll;
        let io_engine = match cfg.tls {
            Some(_) => IoEngine::Glommio,
            None => cfg.io_engine,
        };
        let t = std::thread::Builder::new()
            .name(format!("servebench-shard-{index}"))
            .spawn(move || {
                // A stop signal is the main thread's to handle; the shards poll its state.
                stop::block_in_this_thread();
                if io_engine == IoEngine::Uring {
                    if !core_affinity::set_for_current(core_affinity::CoreId { id: cpu }) {
                        eprintln!(
                            "WARNING: cannot pin shard {index} to CPU {cpu}; it runs unpinned"
                        );
                    }
                    return direct::run_shard(spec, start, busy_poll);
                }
                let ex = glommio::LocalExecutorBuilder::new(glommio::Placement::Fixed(cpu))
                    .name(&format!("shard-{index}"))
                    .io_memory(64 << 10)
                    .ring_depth(1024)
                    .spin_before_park(busy_poll)
                    .make();
                match ex {
                    Ok(ex) => ex.run(shard::run(spec, start.clone())),
                    Err(e) => {
                        start.fail(format!(
                            "cannot start the io_uring executor for shard {index} on CPU {cpu}: {e}"
                        ));
                        ShardOutput::default()
                    }
                }
            })
            .context("cannot spawn a shard thread")?;
        threads.push(t);
    }

    let t0 = match start.go_when_ready(num_shards, start_at) {
        Ok(t0) => t0,
        Err(e) => {
            for t in threads {
                let _ = t.join();
            }
            return Err(e);
        }
    };
    let watcher = stop::Watcher::spawn(progress.clone());
    // Conversations' later turns have no planned arrival to fall behind.
    let saturation_watch = cfg
        .stop_on_saturation
        .clone()
        .filter(|_| !plan.has_conversations())
        .and_then(|config| {
            let arrivals = plan.requests.iter().map(|r| r.arrival_ns).collect();
            saturation::Watcher::spawn(progress.clone(), arrivals, t0, config)
        });
    if cfg.show_progress {
        progress::show(&progress, plan.requests.len() as u64, &threads);
    }

    let mut records: Vec<RequestRecord> = Vec::new();
    records.resize_with(plan.requests.len(), RequestRecord::default);
    let mut metrics = Metrics::default();
    let (mut last_done_ns, mut connections_opened, mut shard_cpu_ns) = (0, 0, 0);
    let mut keepalive_retries = 0;
    for t in threads {
        let out = t
            .join()
            .map_err(|_| anyhow::anyhow!("a shard thread panicked; results are incomplete"))?;
        for (i, r) in out.records {
            records[i] = r;
        }
        metrics.merge(&out.metrics);
        last_done_ns = last_done_ns.max(out.last_done_ns);
        connections_opened += out.connections_opened;
        shard_cpu_ns += out.cpu_ns;
        keepalive_retries += out.keepalive_retries;
    }
    drop(watcher);
    let saturation = saturation_watch.and_then(saturation::Watcher::finish);
    Ok(RunOutput {
        records,
        metrics,
        duration_ns: last_done_ns,
        t0,
        connections_opened,
        num_shards,
        shard_cpu_ns,
        keepalive_retries,
        saturation,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_earlier_timeout_wins_and_bytes_push_the_stall_back() {
        let s = Duration::from_secs;
        let t = Timeouts {
            request: Some(s(10)),
            stall: Some(s(3)),
        };
        let start = Instant::now();
        assert_eq!(
            t.expiry(start, start),
            Some((start + s(3), TimeoutKind::Stall))
        );
        assert_eq!(
            t.expiry(start, start + s(8)),
            Some((start + s(10), TimeoutKind::Request))
        );
        assert_eq!(Timeouts::default().expiry(start, start), None);
        let only_total = Timeouts {
            request: Some(s(2)),
            stall: None,
        };
        assert_eq!(
            only_total.expiry(start, start + s(1)),
            Some((start + s(2), TimeoutKind::Request))
        );
        assert!(t.message(TimeoutKind::Stall).contains("--stall-timeout"));
        assert!(t.message(TimeoutKind::Request).contains("10 s"));
    }
}

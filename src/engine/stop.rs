//! Stopping a run from outside: SIGINT / SIGTERM while the measured run is on.
//!
//! The first signal stops the sending of new requests (they end `not_sent`, as when
//! `--duration` is over) and lets the requests in flight finish for up to a grace period; a
//! second signal, or the grace period passing, aborts those too. A third restores the default
//! action and re-raises, for a run that no longer listens.
//!
//! The state is a handful of process-wide atomics. The handler (installed with `sigaction`,
//! not signal-hook: three atomic stores need no crate) only does atomic operations, plus
//! `signal` + `raise` on the third signal, all async-signal-safe. The shards read two relaxed
//! atomics per loop pass; a watcher thread prints what happens and ends the grace period.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::Counter;

/// How often waiting code looks at the stop state (shards bound their waits by this).
pub const POLL: Duration = Duration::from_millis(100);

/// What stopped the run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signal {
    Sigint,
    Sigterm,
}

impl Signal {
    fn from_raw(sig: i32) -> Option<Signal> {
        match sig {
            libc::SIGINT => Some(Signal::Sigint),
            libc::SIGTERM => Some(Signal::Sigterm),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Signal::Sigint => "SIGINT",
            Signal::Sigterm => "SIGTERM",
        }
    }

    /// The shell's exit status for a process ended by this signal (128 + number).
    pub fn exit_code(self) -> i32 {
        match self {
            Signal::Sigint => 128 + libc::SIGINT,
            Signal::Sigterm => 128 + libc::SIGTERM,
        }
    }
}

/// Why requests in flight were aborted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AbortCause {
    /// A second signal.
    Signal,
    /// `--shutdown-grace` passed after the first signal.
    GracePeriod,
    /// `--stop-on-saturation` stopped the run and its grace passed.
    Saturation,
}

// 0: no signal yet; else the first signal's number.
static FIRST: AtomicU8 = AtomicU8::new(0);
static COUNT: AtomicU32 = AtomicU32::new(0);
static ABORT: AtomicBool = AtomicBool::new(false);
// 1: a second signal, 2: the grace period.
static ABORT_CAUSE: AtomicU8 = AtomicU8::new(0);
static ARMED: AtomicBool = AtomicBool::new(false);
// The saturation check (not a signal) stopped the run.
static SATURATED: AtomicBool = AtomicBool::new(false);
static GRACE_MS: AtomicU64 = AtomicU64::new(30_000);

extern "C" fn on_signal(sig: libc::c_int) {
    let n = COUNT.fetch_add(1, Ordering::SeqCst) + 1;
    let _ = FIRST.compare_exchange(0, sig as u8, Ordering::SeqCst, Ordering::SeqCst);
    if n == 2 {
        let _ = ABORT_CAUSE.compare_exchange(0, 1, Ordering::SeqCst, Ordering::SeqCst);
        ABORT.store(true, Ordering::SeqCst);
    } else if n >= 3 {
        // SAFETY: signal and raise are async-signal-safe.
        unsafe {
            libc::signal(sig, libc::SIG_DFL);
            libc::raise(sig);
        }
    }
}

/// Catch SIGINT and SIGTERM from now on (call just before the measured run), with `grace`
/// for the requests in flight after the first. Clears any earlier stop.
pub fn install(grace: Duration) -> std::io::Result<()> {
    FIRST.store(0, Ordering::SeqCst);
    COUNT.store(0, Ordering::SeqCst);
    ABORT.store(false, Ordering::SeqCst);
    ABORT_CAUSE.store(0, Ordering::SeqCst);
    SATURATED.store(false, Ordering::SeqCst);
    GRACE_MS.store(grace.as_millis() as u64, Ordering::SeqCst);
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: a zeroed sigaction with a plain handler and an empty mask is valid;
        // SA_RESTART keeps other threads' blocking calls from failing with EINTR.
        let rc = unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
            sa.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(sig, &sa, std::ptr::null_mut())
        };
        if rc != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    ARMED.store(true, Ordering::SeqCst);
    Ok(())
}

/// Give SIGINT and SIGTERM their default action back (the stop state is kept for the report).
pub fn uninstall() {
    if !ARMED.swap(false, Ordering::SeqCst) {
        return;
    }
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: restoring the default disposition.
        unsafe { libc::signal(sig, libc::SIG_DFL) };
    }
}

/// Block SIGINT and SIGTERM in the calling thread (the shards): the handler then runs on the
/// main thread, and no shard syscall is interrupted by it.
pub fn block_in_this_thread() {
    // SAFETY: the set is initialised before use; the old mask is not asked for.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
}

/// A signal has come, or the server is saturated: send nothing new.
#[inline]
pub fn requested() -> bool {
    FIRST.load(Ordering::Relaxed) != 0 || SATURATED.load(Ordering::Relaxed)
}

/// The saturation check's stop: send nothing new (see `saturation.rs`).
pub fn stop_for_saturation() {
    SATURATED.store(true, Ordering::SeqCst);
}

/// The saturation check's grace is over: abort what is still in flight.
pub fn abort_for_saturation() {
    let _ = ABORT_CAUSE.compare_exchange(0, 3, Ordering::SeqCst, Ordering::SeqCst);
    ABORT.store(true, Ordering::SeqCst);
}

/// Forget a saturation stop (a sweep runs its next point in the same process).
pub fn clear_saturation() {
    SATURATED.store(false, Ordering::SeqCst);
    if ABORT_CAUSE
        .compare_exchange(3, 0, Ordering::SeqCst, Ordering::SeqCst)
        .is_ok()
    {
        ABORT.store(false, Ordering::SeqCst);
    }
}

/// Abort the requests in flight now.
#[inline]
pub fn aborted() -> bool {
    ABORT.load(Ordering::Relaxed)
}

/// The first signal of this run, if any.
pub fn stopped_by() -> Option<Signal> {
    Signal::from_raw(FIRST.load(Ordering::SeqCst) as i32)
}

pub fn abort_cause() -> Option<AbortCause> {
    match ABORT_CAUSE.load(Ordering::SeqCst) {
        1 => Some(AbortCause::Signal),
        2 => Some(AbortCause::GracePeriod),
        3 => Some(AbortCause::Saturation),
        _ => None,
    }
}

/// The exit status of a stopped run (130 for SIGINT, 143 for SIGTERM).
pub fn exit_code() -> Option<i32> {
    stopped_by().map(Signal::exit_code)
}

/// The error text of a request aborted in flight.
pub fn abort_message(cause: Option<AbortCause>) -> &'static str {
    match cause {
        Some(AbortCause::GracePeriod) => {
            "aborted: the run was stopped and the shutdown grace period passed before this request ended"
        }
        Some(AbortCause::Saturation) => {
            "aborted: the run was stopped because the server could not keep up (--stop-on-saturation), and this request had not ended"
        }
        _ => "aborted: the run was stopped (second signal) before this request ended",
    }
}

fn grace_over() {
    let _ = ABORT_CAUSE.compare_exchange(0, 2, Ordering::SeqCst, Ordering::SeqCst);
    ABORT.store(true, Ordering::SeqCst);
}

/// The line printed on the first signal.
pub fn stopping_line(grace: Duration, in_flight: u64) -> String {
    format!(
        "Stopping: no new requests; waiting up to {} s for {in_flight} in flight; Ctrl-C again to abort",
        grace.as_secs_f64()
    )
}

/// A thread that tells the user what a signal does and ends the grace period; stopped (and
/// joined) on drop.
pub struct Watcher {
    done: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Watcher {
    /// Watch while the shards counting into `progress` run (no-op unless [`install`]ed).
    pub fn spawn(progress: Arc<Vec<Counter>>) -> Watcher {
        let done = Arc::new(AtomicBool::new(false));
        let thread = ARMED.load(Ordering::SeqCst).then(|| {
            let done = done.clone();
            std::thread::spawn(move || watch(&progress, &done))
        });
        Watcher { done, thread }
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.done.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn in_flight(progress: &[Counter]) -> u64 {
    let (started, ended) = progress.iter().fold((0, 0), |(s, e), c| {
        (
            s + c.started.load(Ordering::Relaxed),
            e + c.ended.load(Ordering::Relaxed),
        )
    });
    started.saturating_sub(ended)
}

fn watch(progress: &[Counter], done: &AtomicBool) {
    let grace = Duration::from_millis(GRACE_MS.load(Ordering::SeqCst));
    let mut first_seen: Option<Instant> = None;
    let mut abort_told = false;
    loop {
        // Read before looking, so the last pass still tells what came before the end.
        let finished = done.load(Ordering::SeqCst);
        if let (None, Some(sig)) = (first_seen, stopped_by()) {
            first_seen = Some(Instant::now());
            eprintln!(
                "\n{} ({})",
                stopping_line(grace, in_flight(progress)),
                sig.name()
            );
        }
        if !finished && first_seen.is_some_and(|since| !aborted() && since.elapsed() >= grace) {
            grace_over();
        }
        if aborted() && !abort_told {
            abort_told = true;
            let why = match abort_cause() {
                Some(AbortCause::GracePeriod) => "the grace period passed",
                Some(AbortCause::Saturation) => "saturated; the grace period passed",
                _ => "second signal",
            };
            eprintln!(
                "\nAborting the {} requests still in flight ({why})",
                in_flight(progress)
            );
        }
        if finished {
            return;
        }
        std::thread::sleep(POLL / 2);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_are_the_shells() {
        assert_eq!(Signal::Sigint.exit_code(), 130);
        assert_eq!(Signal::Sigterm.exit_code(), 143);
        assert_eq!(Signal::from_raw(libc::SIGTERM), Some(Signal::Sigterm));
        assert_eq!(Signal::from_raw(0), None);
    }

    #[test]
    fn the_stopping_line_says_what_happens() {
        let l = stopping_line(Duration::from_secs(30), 7);
        assert_eq!(
            l,
            "Stopping: no new requests; waiting up to 30 s for 7 in flight; Ctrl-C again to abort"
        );
    }
}

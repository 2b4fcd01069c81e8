//! `--stop-on-saturation`: end a run early once the server clearly cannot keep up with the
//! offered load, instead of spending the rest of the run measuring a queue that only grows.
//!
//! A watcher thread samples the shards' counters every [`SAMPLE`] against the plan's arrival
//! times. Over the later half of the run so far it looks at the backlog: requests due by the
//! plan that have not ended (the client's queue plus those in flight). A server that keeps up
//! holds the backlog level once its first replies come back; a saturated one lets it grow at
//! the offered rate minus the rate it serves. A rising backlog alone also fits the start of a
//! run with long replies, so it must come with a queue that only saturation makes:
//! - the client's own queue (due, not yet sent: `--max-concurrency` is full) growing, or
//! - TTFT rising through the window (the server's queue: replies wait longer to start).
//!
//! The verdict needs the backlog to grow by more than [`MIN_GROWTH`] of the offered rate, with
//! the regression slope's margin of error (3 standard errors) subtracted, and by at least
//! [`MIN_BACKLOG_GROWTH`] requests over the window (at one request per second, counting noise
//! looks like a trend), in two checks in a row. Then sending stops (as on a first Ctrl-C) and the requests in flight get [`GRACE`]
//! before they are aborted. Like GuideLLM's over-saturation constraint (slopes of concurrency
//! and TTFT with a margin of error), with the backlog in place of concurrency so that a capped
//! client queue counts too.
//!
//! Hosts of a multi-host run judge their own shares; with a marker file they share (a sweep's
//! point directory) the first host to stop creates it and the others stop when they see it, so
//! no host goes on loading a server another found saturated.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::{stop, Counter};

/// How often the counters are read.
pub const SAMPLE: Duration = Duration::from_millis(100);
/// How long requests in flight may finish after the stop.
pub const GRACE: Duration = Duration::from_secs(5);
/// The smallest backlog growth, as a fraction of the offered rate, that counts.
pub const MIN_GROWTH: f64 = 0.10;
/// ...and the backlog must have grown by this many requests over the window.
pub const MIN_BACKLOG_GROWTH: f64 = 8.0;
/// Replies a third of the window needs for its mean TTFT to count.
const MIN_TTFT_SAMPLES: u64 = 5;
/// TTFT over the window's last third must exceed its first third's by this factor...
const TTFT_RISE: f64 = 1.5;
/// ...and by this much (ms), so that a fast server's jitter is no trend.
const TTFT_RISE_MS: f64 = 2.0;

/// How the check runs.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// Seconds into the run before it may judge.
    pub min_seconds: f64,
    /// The file the hosts of a multi-host run share.
    pub marker: Option<std::path::PathBuf>,
}

/// What the check saw when it stopped the run.
#[derive(Clone, Debug, PartialEq)]
pub struct Verdict {
    /// Seconds after t0.
    pub at_s: f64,
    pub offered_rate: f64,
    /// Backlog growth (requests/s) over the window, and its standard error.
    pub backlog_slope: f64,
    pub slope_stderr: f64,
    pub backlog: u64,
    pub client_queue: u64,
    /// Mean TTFT of the replies ending in the window's first and last thirds.
    pub ttft_early_ms: f64,
    pub ttft_late_ms: f64,
    pub reason: &'static str,
}

impl Verdict {
    pub fn to_json(&self) -> Value {
        json!({
            "stopped_at_s": self.at_s,
            "offered_rate": self.offered_rate,
            "backlog_growth_per_s": self.backlog_slope,
            "backlog_growth_stderr": self.slope_stderr,
            "backlog": self.backlog,
            "client_queue": self.client_queue,
            "ttft_early_ms": self.ttft_early_ms,
            "ttft_late_ms": self.ttft_late_ms,
            "reason": self.reason,
        })
    }

    pub fn describe(&self) -> String {
        format!(
            "the server cannot keep up: {:.1} s in, the backlog grows by {:.1} req/s at {:.1} req/s offered ({}); {} due and not ended",
            self.at_s, self.backlog_slope, self.offered_rate, self.reason, self.backlog
        )
    }
}

/// One reading of the counters.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Sample {
    pub t_s: f64,
    pub due: u64,
    pub started: u64,
    pub ended: u64,
    pub ttft_ns_sum: u64,
    pub ttft_n: u64,
}

/// The check itself, on samples (pure, for tests).
#[derive(Debug)]
pub struct Check {
    pub offered_rate: f64,
    pub min_seconds: f64,
    /// Another host's verdict, when it creates this file.
    pub marker: Option<std::path::PathBuf>,
    samples: Vec<Sample>,
    hits: u32,
}

impl Check {
    pub fn new(offered_rate: f64, min_seconds: f64) -> Check {
        Check {
            offered_rate,
            min_seconds,
            marker: None,
            samples: Vec::new(),
            hits: 0,
        }
    }

    /// [`push`](Check::push), and with a marker file: a verdict creates it (the other hosts
    /// stop on it), and finding it created by another host is a verdict too.
    pub fn judge_with_peers(&mut self, s: Sample) -> Option<Verdict> {
        if let Some(v) = self.push(s) {
            // If the file cannot be written the other hosts judge for themselves.
            if let Some(m) = &self.marker {
                let _ = std::fs::write(m, b"saturated\n");
            }
            return Some(v);
        }
        let peer = self.marker.as_ref().is_some_and(|m| m.exists());
        peer.then(|| Verdict {
            at_s: s.t_s,
            offered_rate: self.offered_rate,
            backlog_slope: 0.0,
            slope_stderr: 0.0,
            backlog: s.due.saturating_sub(s.ended),
            client_queue: s.due.saturating_sub(s.started),
            ttft_early_ms: 0.0,
            ttft_late_ms: 0.0,
            reason: "another host of this run found the server saturated",
        })
    }

    /// Adds a sample; Some when the run should stop.
    pub fn push(&mut self, s: Sample) -> Option<Verdict> {
        self.samples.push(s);
        let v = self.judge();
        self.hits = if v.is_some() { self.hits + 1 } else { 0 };
        v.filter(|_| self.hits >= 2)
    }

    fn judge(&self) -> Option<Verdict> {
        let now = *self.samples.last()?;
        if now.t_s < self.min_seconds || self.offered_rate <= 0.0 {
            return None;
        }
        let from = self.samples.partition_point(|s| s.t_s < now.t_s / 2.0);
        let window = &self.samples[from..];
        if window.len() < 8 {
            return None;
        }
        let backlog = |s: &Sample| s.due.saturating_sub(s.ended) as f64;
        let queue = |s: &Sample| s.due.saturating_sub(s.started) as f64;
        let (slope, se) = regression(window, backlog);
        let threshold = MIN_GROWTH * self.offered_rate;
        let span = now.t_s - window[0].t_s;
        // At a few requests per second the backlog moves by ones and twos: its growth must
        // also add up to a queue, not to counting noise.
        if slope - 3.0 * se <= threshold || slope * span < MIN_BACKLOG_GROWTH {
            return None;
        }
        let (q_slope, q_se) = regression(window, queue);
        let queue_grows = q_slope - 3.0 * q_se > threshold;
        let third = window.len() / 3;
        let mean_ttft = |a: &Sample, b: &Sample| {
            let n = b.ttft_n.saturating_sub(a.ttft_n);
            (n >= MIN_TTFT_SAMPLES)
                .then(|| b.ttft_ns_sum.saturating_sub(a.ttft_ns_sum) as f64 / n as f64 / 1e6)
        };
        let early = mean_ttft(&window[0], &window[third]);
        let late = mean_ttft(&window[window.len() - 1 - third], &now);
        let ttft_rises = matches!((early, late), (Some(e), Some(l)) if l > e * TTFT_RISE && l - e > TTFT_RISE_MS);
        let reason = match (queue_grows, ttft_rises) {
            (true, _) => "the client's queue grows: --max-concurrency is full",
            (false, true) => "TTFT rises: the server's queue grows",
            (false, false) => return None,
        };
        Some(Verdict {
            at_s: now.t_s,
            offered_rate: self.offered_rate,
            backlog_slope: slope,
            slope_stderr: se,
            backlog: backlog(&now) as u64,
            client_queue: queue(&now) as u64,
            ttft_early_ms: early.unwrap_or(0.0),
            ttft_late_ms: late.unwrap_or(0.0),
            reason,
        })
    }
}

/// Least-squares slope of `y` over time and its standard error.
fn regression(window: &[Sample], y: impl Fn(&Sample) -> f64) -> (f64, f64) {
    let n = window.len() as f64;
    let mx = window.iter().map(|s| s.t_s).sum::<f64>() / n;
    let my = window.iter().map(&y).sum::<f64>() / n;
    let sxx: f64 = window.iter().map(|s| (s.t_s - mx).powi(2)).sum();
    if sxx <= 0.0 {
        return (0.0, f64::INFINITY);
    }
    let sxy: f64 = window.iter().map(|s| (s.t_s - mx) * (y(s) - my)).sum();
    let slope = sxy / sxx;
    let residual: f64 = window
        .iter()
        .map(|s| (y(s) - my - slope * (s.t_s - mx)).powi(2))
        .sum();
    let se = (residual / (n - 2.0).max(1.0) / sxx).sqrt();
    (slope, se)
}

/// The watcher thread; joined for its verdict.
pub struct Watcher {
    done: Arc<AtomicBool>,
    thread: JoinHandle<Option<Verdict>>,
}

impl Watcher {
    /// Watches the run that started at `t0` with these planned arrivals (ns after t0).
    /// None when the plan has no arrival process to fall behind (everything at t0).
    pub fn spawn(
        progress: Arc<Vec<Counter>>,
        mut arrivals: Vec<u64>,
        t0: Instant,
        config: Config,
    ) -> Option<Watcher> {
        arrivals.sort_unstable();
        let last = *arrivals.last()? as f64 / 1e9;
        if last <= 0.0 {
            return None;
        }
        let mut check = Check::new(arrivals.len() as f64 / last, config.min_seconds);
        check.marker = config.marker;
        let done = Arc::new(AtomicBool::new(false));
        let flag = done.clone();
        let thread = std::thread::Builder::new()
            .name("servebench-saturation".into())
            .spawn(move || watch(check, &arrivals, &progress, t0, &flag))
            .ok()?;
        Some(Watcher { done, thread })
    }

    /// Ends the watch (the run is over) and returns what stopped it, if anything did.
    pub fn finish(self) -> Option<Verdict> {
        self.done.store(true, Ordering::SeqCst);
        self.thread.join().ok().flatten()
    }
}

fn read(progress: &[Counter], t_s: f64, due: u64) -> Sample {
    let mut s = Sample {
        t_s,
        due,
        ..Sample::default()
    };
    for c in progress {
        s.started += c.started.load(Ordering::Relaxed);
        s.ended += c.ended.load(Ordering::Relaxed);
        s.ttft_ns_sum += c.ttft_ns_sum.load(Ordering::Relaxed);
        s.ttft_n += c.ttft_n.load(Ordering::Relaxed);
    }
    s
}

fn watch(
    mut check: Check,
    arrivals: &[u64],
    progress: &[Counter],
    t0: Instant,
    done: &AtomicBool,
) -> Option<Verdict> {
    let last_arrival = arrivals.last().copied().unwrap_or(0);
    while !done.load(Ordering::SeqCst) {
        std::thread::sleep(SAMPLE);
        let elapsed = t0.elapsed().as_nanos() as u64;
        // Once everything is due the backlog can only shrink: nothing left to judge.
        if elapsed > last_arrival || stop::requested() {
            return None;
        }
        let due = arrivals.partition_point(|&a| a <= elapsed) as u64;
        let sample = read(progress, elapsed as f64 / 1e9, due);
        let found = check.judge_with_peers(sample);
        if let Some(v) = found {
            eprintln!("\nStopping early: {}", v.describe());
            stop::stop_for_saturation();
            let until = Instant::now() + GRACE;
            while !done.load(Ordering::SeqCst) && Instant::now() < until {
                std::thread::sleep(SAMPLE);
            }
            if !done.load(Ordering::SeqCst) {
                stop::abort_for_saturation();
            }
            return Some(v);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Samples of a run at `rate` req/s against a server that serves `mu` req/s at most and
    /// takes `latency_s` per reply (TTFT `ttft_ms`, plus the queue wait when saturated), with
    /// `cap` the client's concurrency limit.
    fn run(rate: f64, mu: f64, latency_s: f64, cap: Option<f64>, secs: f64) -> Vec<Sample> {
        let mut out = Vec::new();
        let mut in_flight: std::collections::VecDeque<f64> = Default::default();
        let (mut started, mut ended, mut ttft_sum, mut budget) = (0u64, 0u64, 0.0f64, 0.0f64);
        let dt = 0.1;
        let mut t = dt;
        while t <= secs + 1e-9 {
            let due = (rate * t).floor() as u64;
            // Ending: replies whose time is up, at most mu per second.
            budget += mu * dt;
            while in_flight.front().is_some_and(|&s| s + latency_s <= t) && budget >= 1.0 {
                in_flight.pop_front();
                budget -= 1.0;
                ended += 1;
                let queue_wait_ms = ((rate - mu).max(0.0) * t / mu) * 1e3;
                ttft_sum += (20.0 + queue_wait_ms) * 1e6;
            }
            budget = budget.min(mu * dt + 1.0);
            // Sending: everything due, unless the cap holds it back.
            while started < due && cap.is_none_or(|c| (in_flight.len() as f64) < c) {
                in_flight.push_back(t);
                started += 1;
            }
            out.push(Sample {
                t_s: t,
                due,
                started,
                ended,
                ttft_ns_sum: ttft_sum as u64,
                ttft_n: ended,
            });
            t += dt;
        }
        out
    }

    fn first_verdict(samples: &[Sample], rate: f64) -> Option<Verdict> {
        let mut c = Check::new(rate, 2.0);
        samples.iter().find_map(|s| c.push(*s))
    }

    #[test]
    fn a_server_that_keeps_up_is_never_flagged_even_with_long_replies() {
        // 8 s replies: the backlog climbs for 8 s before the first ends (no queue: TTFT flat).
        assert_eq!(
            first_verdict(&run(100.0, 1e9, 8.0, None, 20.0), 100.0),
            None
        );
        assert_eq!(
            first_verdict(&run(100.0, 1e9, 0.2, None, 20.0), 100.0),
            None
        );
        // With a cap the load fits in.
        assert_eq!(
            first_verdict(&run(100.0, 1e9, 0.2, Some(64.0), 20.0), 100.0),
            None
        );
    }

    #[test]
    fn a_growing_server_queue_is_flagged() {
        let v = first_verdict(&run(150.0, 100.0, 0.2, None, 20.0), 150.0).expect("saturated");
        assert!(v.reason.contains("TTFT"), "{v:?}");
        assert!(v.at_s < 6.0, "{v:?}");
        assert!(v.backlog_slope > 30.0 && v.backlog_slope < 70.0, "{v:?}");
    }

    #[test]
    fn a_full_client_queue_is_flagged() {
        // 20 in flight at most, 1 s each: 20 req/s served of 50 offered.
        let v = first_verdict(&run(50.0, 1e9, 1.0, Some(20.0), 20.0), 50.0).expect("saturated");
        assert!(v.reason.contains("--max-concurrency"), "{v:?}");
    }

    #[test]
    fn a_small_overload_is_left_to_the_slo() {
        // 5 % over capacity: the backlog grows at 5 req/s, under the 10 % bar.
        assert_eq!(
            first_verdict(&run(105.0, 100.0, 0.2, None, 20.0), 105.0),
            None
        );
    }

    #[test]
    fn hosts_tell_each_other_through_the_marker() {
        let dir = std::env::temp_dir().join(format!("servebench-marker-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let marker = dir.join("saturated");
        let _ = std::fs::remove_file(&marker);
        let samples = run(150.0, 100.0, 0.2, None, 20.0);
        // This host finds it first and leaves the file.
        let mut a = Check::new(150.0, 2.0);
        a.marker = Some(marker.clone());
        let v = samples.iter().find_map(|s| a.judge_with_peers(*s)).unwrap();
        assert!(v.reason.contains("TTFT"), "{v:?}");
        assert!(marker.exists());
        // Another host stops on the file at its first sample, before judging for itself.
        let mut b = Check::new(150.0, 2.0);
        b.marker = Some(marker.clone());
        let v = b.judge_with_peers(samples[0]).unwrap();
        assert!(v.reason.contains("another host"), "{v:?}");
        // Without the file a host that keeps up is left alone.
        std::fs::remove_file(&marker).unwrap();
        let mut c = Check::new(100.0, 2.0);
        c.marker = Some(marker.clone());
        let calm = run(100.0, 1e9, 0.2, None, 20.0);
        assert!(calm.iter().all(|s| c.judge_with_peers(*s).is_none()));
        assert!(!marker.exists());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn counting_noise_at_a_few_requests_per_second_is_no_trend() {
        // Seen against llama-server at 1 req/s: the backlog went 0, 1, 2 over 7 s and the
        // mean TTFT of a handful of replies from 19 to 44 ms.
        let samples: Vec<Sample> = (1..=100)
            .map(|i| {
                let t = i as f64 * 0.1;
                let due = t.floor() as u64;
                let ended = due.saturating_sub((t / 3.0) as u64);
                let ttft_ms = if t < 5.0 { 19.0 } else { 44.0 };
                Sample {
                    t_s: t,
                    due,
                    started: due,
                    ended,
                    ttft_ns_sum: (ended as f64 * ttft_ms * 1e6) as u64,
                    ttft_n: ended,
                }
            })
            .collect();
        let mut c = Check::new(1.0, 2.0);
        assert_eq!(samples.iter().find_map(|s| c.push(*s)), None);
    }

    #[test]
    fn the_regression_is_exact_on_a_line() {
        let w: Vec<Sample> = (0..10)
            .map(|i| Sample {
                t_s: i as f64,
                due: 3 * i + 7,
                ..Sample::default()
            })
            .collect();
        let (slope, se) = regression(&w, |s| s.due as f64);
        assert!((slope - 3.0).abs() < 1e-12 && se < 1e-9, "{slope} {se}");
    }
}

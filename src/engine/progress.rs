//! A tqdm-style progress line on stderr, drawn by the main thread from per-shard counters, so
//! the shards never print and never share a cache line. Besides tqdm's fields it shows failed
//! and in-flight requests and the request and output rates over the last second ("tok/s"
//! counts output-carrying events: one per token on streams that send a token per event, as
//! vLLM's peak-throughput figure does).

use std::collections::VecDeque;
use std::io::Write;
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::Counter;

/// Counter totals at one instant.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct Totals {
    done: u64,
    started: u64,
    failed: u64,
    events: u64,
}

fn totals(counters: &[Counter]) -> Totals {
    let mut t = Totals::default();
    for c in counters {
        t.done += c.done.load(Ordering::Relaxed);
        t.started += c.started.load(Ordering::Relaxed);
        t.failed += c.failed.load(Ordering::Relaxed);
        t.events += c.events.load(Ordering::Relaxed);
    }
    t
}

const WINDOW: Duration = Duration::from_secs(1);

/// Draw until every request is done or every shard thread has ended.
pub fn show<T>(counters: &[Counter], total: u64, threads: &[JoinHandle<T>]) {
    let started = Instant::now();
    let mut err = std::io::stderr();
    let mut history: VecDeque<(Instant, Totals)> = VecDeque::new();
    loop {
        let now = Instant::now();
        let t = totals(counters);
        history.push_back((now, t));
        while history.len() > 2 && now - history[1].0 >= WINDOW {
            history.pop_front();
        }
        let (then, old) = history[0];
        let live = Live::between(old, t, now - then);
        let _ = write!(
            err,
            "\r{}{}",
            line(t.done, total, started.elapsed()),
            live.suffix()
        );
        let _ = err.flush();
        if t.done >= total || threads.iter().all(|t| t.is_finished()) {
            let _ = writeln!(err);
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// What the line adds to tqdm's.
#[derive(Debug, PartialEq)]
struct Live {
    failed: u64,
    in_flight: u64,
    req_per_s: f64,
    tok_per_s: f64,
}

impl Live {
    fn between(old: Totals, new: Totals, span: Duration) -> Live {
        let s = span.as_secs_f64();
        let rate = |a: u64, b: u64| {
            if s > 0.0 {
                b.saturating_sub(a) as f64 / s
            } else {
                0.0
            }
        };
        Live {
            failed: new.failed,
            // `done` also counts requests never sent (--duration), which never started.
            in_flight: new.started.saturating_sub(new.done.min(new.started)),
            req_per_s: rate(old.done, new.done),
            tok_per_s: rate(old.events, new.events),
        }
    }

    fn suffix(&self) -> String {
        format!(
            " failed {} | in flight {} | {:.1} req/s, {:.0} tok/s",
            self.failed, self.in_flight, self.req_per_s, self.tok_per_s
        )
    }
}

fn clock(d: Duration) -> String {
    let s = d.as_secs();
    format!("{:02}:{:02}", s / 60, s % 60)
}

/// `100%|██████████| 1000/1000 [00:12<00:00, 81.23it/s]`
fn line(done: u64, total: u64, elapsed: Duration) -> String {
    let frac = if total == 0 {
        1.0
    } else {
        done as f64 / total as f64
    };
    let width = 30;
    let filled = ((frac * width as f64) as usize).min(width);
    let rate = done as f64 / elapsed.as_secs_f64().max(1e-9);
    let eta = if rate > 0.0 {
        Duration::from_secs_f64((total - done.min(total)) as f64 / rate)
    } else {
        Duration::ZERO
    };
    format!(
        "{:>3.0}%|{}{}| {done}/{total} [{}<{}, {rate:.2}it/s]",
        frac * 100.0,
        "█".repeat(filled),
        " ".repeat(width - filled),
        clock(elapsed),
        clock(eta),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn live_fields_come_from_counter_deltas() {
        let old = Totals {
            done: 10,
            started: 20,
            failed: 1,
            events: 100,
        };
        let new = Totals {
            done: 30,
            started: 45,
            failed: 2,
            events: 600,
        };
        let live = Live::between(old, new, Duration::from_millis(500));
        assert_eq!(
            live,
            Live {
                failed: 2,
                in_flight: 15,
                req_per_s: 40.0,
                tok_per_s: 1000.0
            }
        );
        assert!(live
            .suffix()
            .contains("in flight 15 | 40.0 req/s, 1000 tok/s"));
        let counters = [Counter::default(), Counter::default()];
        counters[1].started();
        counters[1].outcome(&crate::record::RequestRecord {
            success: true,
            itl_ns: vec![1, 2],
            ..Default::default()
        });
        counters[0].outcome(&crate::record::RequestRecord::default());
        let t = totals(&counters);
        assert_eq!((t.started, t.failed, t.events), (1, 1, 3));
    }

    #[test]
    fn line_looks_like_tqdm() {
        let l = line(500, 1000, Duration::from_secs(10));
        assert!(l.starts_with(" 50%|"), "{l}");
        assert!(l.contains("500/1000 [00:10<00:10, 50.00it/s]"), "{l}");
    }
}

//! A tqdm-style progress line on stderr, drawn by the main thread from per-shard counters, so
//! the shards never print and never share a cache line.

use std::io::Write;
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::Counter;

/// Draw until every request is done or every shard thread has ended.
pub fn show<T>(counters: &[Counter], total: u64, threads: &[JoinHandle<T>]) {
    let started = Instant::now();
    let mut err = std::io::stderr();
    loop {
        let done: u64 = counters.iter().map(|c| c.load(Ordering::Relaxed)).sum();
        let _ = write!(err, "\r{}", line(done, total, started.elapsed()));
        let _ = err.flush();
        if done >= total || threads.iter().all(|t| t.is_finished()) {
            let _ = writeln!(err);
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
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
    fn line_looks_like_tqdm() {
        let l = line(500, 1000, Duration::from_secs(10));
        assert!(l.starts_with(" 50%|"), "{l}");
        assert!(l.contains("500/1000 [00:10<00:10, 50.00it/s]"), "{l}");
    }
}

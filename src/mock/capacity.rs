//! A capacity model for the mock, so that latency grows with load the way a continuous-batching
//! server's does and a sweep has a knee to find.
//!
//! At most `max_batch` requests generate at once; later ones wait, first come first served,
//! for the earliest slot to free (the wait adds to their TTFT, as a server's queue does). Every
//! running sequence also slows the decode step: a request that starts with `b` sequences
//! running (itself included) streams at `itl + batch_itl * b` per token for its whole reply.
//! Fixing the step at admission keeps each reply's schedule absolute (nothing drifts), at the
//! cost of not slowing requests already running when more join; the knee stays where it is.
//!
//! With a service time `S(b) = ttft + (itl + batch_itl * b) * (n - 1)` for `n` output tokens,
//! the server finishes at most `max_batch / S(max_batch)` requests per second: offered more,
//! its queue, and so TTFT, grows through the run without bound.
//!
//! The slots are shared by every mock shard behind one mutex, held for a scan of `max_batch`
//! instants per request.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// When a reply's tokens are due: token `k` (0-based) at `first + itl * k`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Schedule {
    pub first: Instant,
    pub itl: Duration,
}

impl Schedule {
    /// The plain latency model: no queue, no slowdown.
    pub fn unloaded(t_read: Instant, ttft: Duration, itl: Duration) -> Schedule {
        Schedule {
            first: t_read + ttft,
            itl,
        }
    }

    pub fn due(&self, k: u32) -> Instant {
        self.first + self.itl * k
    }
}

pub struct Capacity {
    batch_itl: Duration,
    /// When each slot is free again (an instant in the past: free now).
    busy_until: Mutex<Vec<Instant>>,
}

impl Capacity {
    pub fn new(max_batch: usize, batch_itl: Duration) -> Capacity {
        let now = Instant::now();
        Capacity {
            batch_itl,
            busy_until: Mutex::new(vec![now; max_batch.max(1)]),
        }
    }

    /// Admits a request read at `t_read` that will stream `n` tokens: takes the slot that frees
    /// first and returns the reply's schedule.
    pub fn admit(&self, t_read: Instant, n: u32, ttft: Duration, itl: Duration) -> Schedule {
        // A poisoned lock only means another shard panicked mid-scan; the instants are valid.
        let mut slots = self.busy_until.lock().unwrap_or_else(|e| e.into_inner());
        let (slot, free_at) = slots
            .iter()
            .copied()
            .enumerate()
            .min_by_key(|&(_, t)| t)
            .unwrap_or((0, t_read));
        let start = free_at.max(t_read);
        let running = slots.iter().filter(|&&t| t > start).count() as u32 + 1;
        let step = itl + self.batch_itl * running;
        let first = start + ttft;
        if let Some(s) = slots.get_mut(slot) {
            *s = first + step * n.saturating_sub(1);
        }
        Schedule { first, itl: step }
    }

    /// The most requests per second this model finishes, for replies of `n` tokens (every slot
    /// busy, so every step at its slowest).
    pub fn throughput(
        max_batch: usize,
        ttft: Duration,
        itl: Duration,
        batch_itl: Duration,
        n: u32,
    ) -> f64 {
        let step = itl + batch_itl * max_batch as u32;
        let service = ttft + step * n.saturating_sub(1);
        max_batch as f64 / service.as_secs_f64()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn requests_wait_for_a_free_slot_in_arrival_order() {
        let c = Capacity::new(2, Duration::ZERO);
        let t = Instant::now() + Duration::from_secs(1);
        // Two slots: the first two start at once, the third when the first frees (t + 10 + 9).
        let a = c.admit(t, 10, 10 * MS, MS);
        let b = c.admit(t + MS, 10, 10 * MS, MS);
        let d = c.admit(t + 2 * MS, 10, 10 * MS, MS);
        assert_eq!(a.first, t + 10 * MS);
        assert_eq!(b.first, t + 11 * MS);
        let a_end = a.due(9);
        assert_eq!(d.first, a_end + 10 * MS, "queued behind the first reply");
        // A request after every slot frees starts at once again.
        let late = t + Duration::from_secs(5);
        assert_eq!(c.admit(late, 1, 10 * MS, MS).first, late + 10 * MS);
    }

    #[test]
    fn the_step_grows_with_the_running_batch() {
        let c = Capacity::new(4, 2 * MS);
        let t = Instant::now() + Duration::from_secs(1);
        let steps: Vec<Duration> = (0..4)
            .map(|i| c.admit(t + i * MS, 100, MS, MS).itl)
            .collect();
        assert_eq!(steps, vec![3 * MS, 5 * MS, 7 * MS, 9 * MS]);
    }

    #[test]
    fn offered_more_than_its_throughput_the_queue_grows_without_bound() {
        let (ttft, itl, batch_itl, n, b) = (5 * MS, MS, Duration::ZERO, 20, 4);
        let mu = Capacity::throughput(b, ttft, itl, batch_itl, n);
        // 4 slots, 24 ms per request: 166.7 req/s.
        assert!((mu - 4.0 / 0.024).abs() < 1e-6, "{mu}");
        let wait_after = |rate: f64| {
            let c = Capacity::new(b, batch_itl);
            let t0 = Instant::now() + Duration::from_secs(1);
            let mut last = Duration::ZERO;
            for i in 0..2000u32 {
                let at = t0 + Duration::from_secs_f64(i as f64 / rate);
                last = c.admit(at, n, ttft, itl).first - (at + ttft);
            }
            last
        };
        assert_eq!(wait_after(0.9 * mu), Duration::ZERO);
        // 10 % over: 1 request in 11 queues; 2000 requests in, the wait is about 180 × 6 ms.
        let over = wait_after(1.1 * mu);
        assert!(over > Duration::from_millis(900), "{over:?}");
    }
}

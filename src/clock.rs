//! Raw CLOCK_MONOTONIC nanoseconds, the one time base shared by this process, the mock's
//! truth log and other programs on the host (Python's `time.perf_counter_ns`, `clock_gettime`).
//!
//! `std::time::Instant` reads the same clock on Linux but hides its value; [`MonoAnchor`]
//! turns an `Instant` taken on a hot path into those nanoseconds later, off that path.

use std::time::Instant;

/// CLOCK_MONOTONIC now, in nanoseconds (a vDSO call: no system call).
pub fn mono_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime only writes the timespec passed by pointer. CLOCK_MONOTONIC is
    // always supported on Linux, so its result is not checked.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// An `Instant` and the CLOCK_MONOTONIC nanoseconds of (nearly) the same moment.
#[derive(Clone, Copy, Debug)]
pub struct MonoAnchor {
    instant: Instant,
    ns: u64,
}

impl MonoAnchor {
    /// Samples both clocks back to back. The `Instant` is bracketed by two raw readings and
    /// paired with their midpoint; of three tries the tightest bracket wins, so the error is
    /// half a clock read (tens of nanoseconds) unless every try was preempted.
    pub fn now() -> MonoAnchor {
        let sample = || {
            let before = mono_ns();
            let instant = Instant::now();
            let after = mono_ns();
            let gap = after - before;
            let ns = before + gap / 2;
            (gap, MonoAnchor { instant, ns })
        };
        let mut best = sample();
        for _ in 1..3 {
            let next = sample();
            if next.0 < best.0 {
                best = next;
            }
        }
        best.1
    }

    /// CLOCK_MONOTONIC nanoseconds of `t`, which may lie before or after the anchor.
    pub fn to_ns(&self, t: Instant) -> u64 {
        if t >= self.instant {
            self.ns + (t - self.instant).as_nanos() as u64
        } else {
            self.ns.saturating_sub((self.instant - t).as_nanos() as u64)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// |a - b| in nanoseconds.
    fn diff(a: u64, b: u64) -> u64 {
        a.abs_diff(b)
    }

    #[test]
    fn instant_maps_onto_the_raw_clock() {
        let anchor = MonoAnchor::now();
        // Either order of the two reads: the mapped Instant must fall between raw readings
        // taken around it, give or take the anchor's error (a few µs at the very worst).
        for _ in 0..100 {
            let before = mono_ns();
            let t = Instant::now();
            let after = mono_ns();
            let ns = anchor.to_ns(t);
            assert!(
                ns + 5_000 >= before && ns <= after + 5_000,
                "{before} <= {ns} <= {after}"
            );
        }
        assert!(diff(anchor.to_ns(Instant::now()), mono_ns()) < 20_000);
    }

    #[test]
    fn instants_before_the_anchor_map_too() {
        let earlier = Instant::now();
        let raw_earlier = mono_ns();
        std::thread::sleep(Duration::from_millis(5));
        let anchor = MonoAnchor::now();
        let ns = anchor.to_ns(earlier);
        assert!(diff(ns, raw_earlier) < 20_000, "{ns} vs {raw_earlier}");
        let later = earlier + Duration::from_millis(3);
        assert_eq!(anchor.to_ns(later) - ns, 3_000_000);
    }

    #[test]
    fn monotone() {
        let anchor = MonoAnchor::now();
        let mut last_raw = mono_ns();
        let mut last_mapped = anchor.to_ns(Instant::now());
        for _ in 0..10_000 {
            let raw = mono_ns();
            let mapped = anchor.to_ns(Instant::now());
            assert!(raw >= last_raw && mapped >= last_mapped);
            (last_raw, last_mapped) = (raw, mapped);
        }
    }
}

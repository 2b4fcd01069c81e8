//! Fault injection (issue 6): which generation requests the mock answers badly, and how.
//!
//! Every fault kind has a rate in [0, 1]. The schedule is deterministic, not random, so that
//! tests can assert exact counts: each kind keeps an accumulator (parts per million) that
//! grows by its rate with every generation request a shard serves; when it reaches one whole,
//! that request gets the fault and the accumulator drops by one. Of the first `n` requests of
//! a shard, exactly `floor(n * rate + phase)` get a kind's fault when it is the only kind on;
//! with several kinds a request gets at most one fault (the first due, in [`Fault::ALL`]
//! order) and the others follow on the next requests. `--fault-seed` sets each kind's
//! starting phase (seed 0: phase 0, so rate 0.5 faults requests 2, 4, 6, ...). Rates must add
//! up to at most 1.

use std::cell::RefCell;

/// How a faulty reply goes wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Fault {
    /// A non-2xx status (`--fault-http-status`) with an OpenAI-style JSON error body.
    HttpError,
    /// 429 with `Retry-After` and a JSON error body.
    TooManyRequests,
    /// The request is read, then the connection is reset before any byte of the reply.
    ResetBeforeHead,
    /// The connection is reset halfway through the reply's body.
    ResetMidStream,
    /// Every event (or every body byte but the last, unstreamed) is sent, then the connection
    /// is reset before the terminating chunk.
    ResetAfterLast,
    /// An event whose JSON is cut off (unstreamed: the body cut in half, correctly framed).
    MalformedJson,
    /// `{"error": {...}}` as an event inside a 200 stream (unstreamed: as the 200 body).
    ErrorEvent,
    /// The head and the first event (unstreamed: half the body), then silence with the socket
    /// left open until the client goes.
    Stall,
    /// A complete, correct reply, then the connection is closed although the head let the
    /// client keep it (no `Connection: close`).
    KeepAliveClose,
    /// A Content-Length shorter than the body that follows (streamed: a Content-Length head
    /// instead of chunked framing), then the connection is closed.
    WrongLength,
    /// A chunk-size line that is not hexadecimal.
    BadChunk,
    /// One SSE line longer than any client buffers (17 MiB), sent in 1 MiB chunks.
    HugeLine,
    /// Generated text that is not UTF-8.
    InvalidUtf8,
}

impl Fault {
    pub const ALL: [Fault; 13] = [
        Fault::HttpError,
        Fault::TooManyRequests,
        Fault::ResetBeforeHead,
        Fault::ResetMidStream,
        Fault::ResetAfterLast,
        Fault::MalformedJson,
        Fault::ErrorEvent,
        Fault::Stall,
        Fault::KeepAliveClose,
        Fault::WrongLength,
        Fault::BadChunk,
        Fault::HugeLine,
        Fault::InvalidUtf8,
    ];

    /// The flag that sets this kind's rate.
    pub fn flag(self) -> &'static str {
        match self {
            Fault::HttpError => "--fault-http-error",
            Fault::TooManyRequests => "--fault-429",
            Fault::ResetBeforeHead => "--fault-reset-before-head",
            Fault::ResetMidStream => "--fault-reset-mid-stream",
            Fault::ResetAfterLast => "--fault-reset-after-last",
            Fault::MalformedJson => "--fault-malformed-json",
            Fault::ErrorEvent => "--fault-error-event",
            Fault::Stall => "--fault-stall",
            Fault::KeepAliveClose => "--fault-keepalive-close",
            Fault::WrongLength => "--fault-wrong-length",
            Fault::BadChunk => "--fault-bad-chunk",
            Fault::HugeLine => "--fault-huge-line",
            Fault::InvalidUtf8 => "--fault-invalid-utf8",
        }
    }
}

const WHOLE: u64 = 1_000_000;

/// The fault flags, checked: rates in parts per million, in [`Fault::ALL`] order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FaultConfig {
    rates_ppm: [u32; Fault::ALL.len()],
    pub http_status: u16,
    pub seed: u64,
}

impl FaultConfig {
    /// From each kind's rate (`rates[i]` for `Fault::ALL[i]`) plus `all`, spread evenly over
    /// every kind. None when no fault is on. Errors name the flag at fault.
    pub fn new(
        rates: [f64; Fault::ALL.len()],
        all: f64,
        http_status: u16,
        seed: u64,
    ) -> Result<Option<FaultConfig>, String> {
        check_rate("--fault-rate-all", all)?;
        if !(400..=599).contains(&http_status) {
            return Err(format!(
                "--fault-http-status {http_status}: must be a 4xx or 5xx status"
            ));
        }
        let share = all / Fault::ALL.len() as f64;
        let mut rates_ppm = [0u32; Fault::ALL.len()];
        for (i, (&rate, fault)) in rates.iter().zip(Fault::ALL).enumerate() {
            check_rate(fault.flag(), rate)?;
            rates_ppm[i] = ((rate + share) * WHOLE as f64).round() as u32;
        }
        let total: u64 = rates_ppm.iter().map(|&r| r as u64).sum();
        if total > WHOLE {
            return Err(format!(
                "the fault rates add up to {:.6}, more than 1 (one fault per request at most)",
                total as f64 / WHOLE as f64
            ));
        }
        Ok((total > 0).then_some(FaultConfig {
            rates_ppm,
            http_status,
            seed,
        }))
    }
}

fn check_rate(flag: &str, rate: f64) -> Result<(), String> {
    if rate.is_finite() && (0.0..=1.0).contains(&rate) {
        Ok(())
    } else {
        Err(format!(
            "{flag} {rate}: a fault rate must be between 0 and 1"
        ))
    }
}

/// One shard's schedule (see the module's comment).
#[derive(Debug)]
pub struct FaultSchedule {
    cfg: FaultConfig,
    acc: RefCell<[u64; Fault::ALL.len()]>,
}

impl FaultSchedule {
    pub fn new(cfg: FaultConfig) -> FaultSchedule {
        let mut acc = [0u64; Fault::ALL.len()];
        if cfg.seed != 0 {
            for (i, a) in acc.iter_mut().enumerate() {
                *a = splitmix64(cfg.seed.wrapping_add(i as u64)) % WHOLE;
            }
        }
        FaultSchedule {
            cfg,
            acc: RefCell::new(acc),
        }
    }

    pub fn config(&self) -> &FaultConfig {
        &self.cfg
    }

    /// The fault of the next generation request, if it gets one.
    pub fn next(&self) -> Option<Fault> {
        let mut acc = self.acc.borrow_mut();
        let mut chosen = None;
        for (i, a) in acc.iter_mut().enumerate() {
            *a += self.cfg.rates_ppm[i] as u64;
            if chosen.is_none() && *a >= WHOLE {
                *a -= WHOLE;
                chosen = Some(Fault::ALL[i]);
            }
        }
        chosen
    }
}

fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn only(fault: Fault, rate: f64) -> [f64; 13] {
        let mut r = [0.0; 13];
        r[Fault::ALL.iter().position(|&f| f == fault).unwrap()] = rate;
        r
    }

    fn run(cfg: FaultConfig, n: usize) -> Vec<Option<Fault>> {
        let s = FaultSchedule::new(cfg);
        (0..n).map(|_| s.next()).collect()
    }

    #[test]
    fn a_single_rate_faults_exactly_its_share_at_fixed_places() {
        let cfg = FaultConfig::new(only(Fault::Stall, 0.3), 0.0, 503, 0)
            .unwrap()
            .unwrap();
        let got = run(cfg, 10);
        let at: Vec<usize> = (0..10).filter(|&i| got[i].is_some()).collect();
        // Requests 4, 7 and 10 (1-based): floor(n * 0.3) grows at those.
        assert_eq!(at, [3, 6, 9]);
        assert!(got.iter().flatten().all(|&f| f == Fault::Stall));
        let cfg = FaultConfig::new(only(Fault::BadChunk, 1.0), 0.0, 503, 0)
            .unwrap()
            .unwrap();
        assert!(run(cfg, 7).iter().all(|f| *f == Some(Fault::BadChunk)));
    }

    #[test]
    fn mixed_rates_keep_their_long_run_counts_and_one_fault_per_request() {
        let cfg = FaultConfig::new([0.0; 13], 0.65, 500, 0).unwrap().unwrap();
        let got = run(cfg, 10_000);
        for f in Fault::ALL {
            let n = got.iter().filter(|&&g| g == Some(f)).count();
            assert!((499..=500).contains(&n), "{f:?}: {n}");
        }
    }

    #[test]
    fn the_seed_moves_faults_but_not_their_count() {
        let rates = only(Fault::ErrorEvent, 0.01);
        let by_seed: Vec<_> = (1..=4)
            .map(|seed| {
                run(
                    FaultConfig::new(rates, 0.0, 503, seed).unwrap().unwrap(),
                    400,
                )
            })
            .collect();
        let again = run(FaultConfig::new(rates, 0.0, 503, 1).unwrap().unwrap(), 400);
        assert_eq!(by_seed[0], again, "same seed, same schedule");
        assert!(by_seed.windows(2).any(|w| w[0] != w[1]));
        for s in &by_seed {
            let n = s.iter().flatten().count();
            assert!((4..=5).contains(&n), "{n}");
        }
    }

    #[test]
    fn bad_flags_are_named() {
        let e = FaultConfig::new(only(Fault::HugeLine, 1.5), 0.0, 503, 0).unwrap_err();
        assert!(e.contains("--fault-huge-line"), "{e}");
        let e = FaultConfig::new(only(Fault::Stall, f64::NAN), 0.0, 503, 0).unwrap_err();
        assert!(e.contains("--fault-stall"), "{e}");
        let mut r = only(Fault::Stall, 0.6);
        r[0] = 0.6;
        assert!(FaultConfig::new(r, 0.0, 503, 0)
            .unwrap_err()
            .contains("more than 1"));
        assert!(FaultConfig::new([0.0; 13], 0.0, 200, 0)
            .unwrap_err()
            .contains("--fault-http-status"));
        assert_eq!(FaultConfig::new([0.0; 13], 0.0, 503, 7), Ok(None));
    }
}

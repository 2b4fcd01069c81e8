//! When each request is sent, in nanoseconds from the start of the run, the way
//! `vllm bench serve` draws its schedule (`--request-rate`, `--burstiness`).
//!
//! Gaps: rate inf → 0; burstiness inf → exactly `1/rate`; otherwise
//! `Gamma(shape = burstiness, scale = 1/(rate·burstiness))` (mean `1/rate`, coefficient of
//! variation `1/sqrt(burstiness)`; burstiness 1 is a Poisson process). The first request waits
//! one gap too. The cumulative times are then rescaled so the last one lands exactly on
//! `N/rate`, which vLLM does to take the seed's noise out of the achieved rate.
//!
//! With `--ramp-up-strategy`, request `i` has its own rate: with `p = i / max(N-1, 1)`,
//! linear `start + (end-start)·p`, exponential `start·(end/start)^p`; its gap is drawn as
//! above at that rate, and the schedule is not rescaled (vLLM's rules).

use anyhow::{bail, ensure};
use rand_distr::{Distribution, Gamma};

use super::seeded::{self, Stream};

/// The `--request-rate` / `--burstiness` pair, or a ramp-up in place of the rate.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ArrivalSpec {
    pub request_rate: f64,
    pub burstiness: f64,
    pub seed: u64,
    pub ramp_up: Option<RampUp>,
}

/// `--ramp-up-strategy` with `--ramp-up-start-rps` / `--ramp-up-end-rps`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RampUp {
    pub exponential: bool,
    pub start_rps: f64,
    pub end_rps: f64,
}

impl RampUp {
    pub fn strategy_name(&self) -> &'static str {
        if self.exponential {
            "exponential"
        } else {
            "linear"
        }
    }

    /// The rate of request `index` of `n`.
    pub fn rate_at(&self, index: usize, n: usize) -> f64 {
        let progress = index as f64 / (n.saturating_sub(1).max(1)) as f64;
        if self.exponential {
            self.start_rps * (self.end_rps / self.start_rps).powf(progress)
        } else {
            self.start_rps + (self.end_rps - self.start_rps) * progress
        }
    }

    pub fn validate(&self) -> anyhow::Result<()> {
        let (s, e) = (self.start_rps, self.end_rps);
        if !(s.is_finite() && e.is_finite()) {
            bail!("--ramp-up-start-rps {s} and --ramp-up-end-rps {e} must be finite");
        }
        if s <= 0.0 {
            bail!(
                "--ramp-up-start-rps {s}: must be > 0 (every request needs a positive rate; \
                 start low, e.g. 1)"
            );
        }
        if s > e {
            bail!("--ramp-up-start-rps {s} must not exceed --ramp-up-end-rps {e}");
        }
        Ok(())
    }
}

impl ArrivalSpec {
    fn validate(&self) -> anyhow::Result<()> {
        if let Some(r) = &self.ramp_up {
            r.validate()?;
            if self.burstiness.is_nan() || self.burstiness <= 0.0 {
                bail!("--burstiness must be > 0 (or inf), got {}", self.burstiness);
            }
            return Ok(());
        }
        if self.request_rate.is_nan() || self.request_rate <= 0.0 {
            bail!(
                "--request-rate must be > 0 (or inf), got {}",
                self.request_rate
            );
        }
        if self.burstiness.is_nan() || self.burstiness <= 0.0 {
            bail!("--burstiness must be > 0 (or inf), got {}", self.burstiness);
        }
        Ok(())
    }
}

/// Send time of each of `n` requests, in nanoseconds from t0, non-decreasing.
pub fn arrival_times(n: usize, spec: &ArrivalSpec) -> anyhow::Result<Vec<u64>> {
    spec.validate()?;
    if let Some(ramp) = spec.ramp_up {
        return ramped(n, spec, &ramp);
    }
    let rate = spec.request_rate;
    if n == 0 || rate.is_infinite() {
        return Ok(vec![0; n]);
    }

    let seconds: Vec<f64> = if spec.burstiness.is_infinite() {
        (1..=n).map(|k| k as f64 / rate).collect()
    } else {
        let gaps = Gamma::new(spec.burstiness, 1.0 / (rate * spec.burstiness)).map_err(|e| {
            anyhow::anyhow!(
                "--request-rate {rate} with --burstiness {}: {e}",
                spec.burstiness
            )
        })?;
        let mut rng = seeded::rng(spec.seed, Stream::Arrivals, 0);
        let mut t = 0.0;
        let cumulative: Vec<f64> = (0..n)
            .map(|_| {
                t += gaps.sample(&mut rng);
                t
            })
            .collect();
        rescale_to_last(cumulative, n as f64 / rate)
    };

    to_ns(&seconds, &format!("--request-rate {rate}"), n)
}

fn to_ns(seconds: &[f64], what: &str, n: usize) -> anyhow::Result<Vec<u64>> {
    let total_ns = seconds.last().copied().unwrap_or(0.0) * 1e9;
    ensure!(
        total_ns.is_finite() && total_ns < u64::MAX as f64,
        "{what} spreads {n} requests over {:.3e} s, more than this client can schedule",
        total_ns / 1e9
    );
    Ok(seconds.iter().map(|s| (s * 1e9).round() as u64).collect())
}

/// The ramped schedule: each gap drawn at its request's rate, no rescaling.
fn ramped(n: usize, spec: &ArrivalSpec, ramp: &RampUp) -> anyhow::Result<Vec<u64>> {
    let mut rng = seeded::rng(spec.seed, Stream::Arrivals, 0);
    let k = spec.burstiness;
    let mut t = 0.0;
    let mut seconds = Vec::with_capacity(n);
    for i in 0..n {
        let rate = ramp.rate_at(i, n);
        t += if k.is_infinite() {
            1.0 / rate
        } else {
            Gamma::new(k, 1.0 / (rate * k))
                .map_err(|e| anyhow::anyhow!("ramp-up rate {rate} with --burstiness {k}: {e}"))?
                .sample(&mut rng)
        };
        seconds.push(t);
    }
    to_ns(
        &seconds,
        &format!(
            "--ramp-up-start-rps {} --ramp-up-end-rps {}",
            ramp.start_rps, ramp.end_rps
        ),
        n,
    )
}

/// Scales the schedule so its last arrival is `target` seconds. The last element is set
/// exactly rather than multiplied, so float rounding cannot leave it a hair off.
fn rescale_to_last(mut cumulative: Vec<f64>, target: f64) -> Vec<f64> {
    let Some(&last) = cumulative.last() else {
        return cumulative;
    };
    if last > 0.0 && last.is_finite() {
        let factor = target / last;
        for t in &mut cumulative {
            *t *= factor;
        }
        if let Some(end) = cumulative.last_mut() {
            *end = target;
        }
    }
    cumulative
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(request_rate: f64, burstiness: f64) -> ArrivalSpec {
        ArrivalSpec {
            request_rate,
            burstiness,
            seed: 0,
            ramp_up: None,
        }
    }

    fn ramp(exponential: bool, start_rps: f64, end_rps: f64, burstiness: f64) -> ArrivalSpec {
        ArrivalSpec {
            ramp_up: Some(RampUp {
                exponential,
                start_rps,
                end_rps,
            }),
            ..spec(f64::INFINITY, burstiness)
        }
    }

    #[test]
    fn ramp_rates_follow_vllm_formulas() {
        let lin = RampUp {
            exponential: false,
            start_rps: 2.0,
            end_rps: 10.0,
        };
        assert_eq!(lin.rate_at(0, 5), 2.0);
        assert_eq!(lin.rate_at(2, 5), 6.0);
        assert_eq!(lin.rate_at(4, 5), 10.0);
        let exp = RampUp {
            exponential: true,
            ..lin
        };
        assert!((exp.rate_at(2, 5) - 2.0 * 5f64.sqrt()).abs() < 1e-12);
        assert_eq!(exp.rate_at(0, 1), 2.0);
    }

    #[test]
    fn deterministic_ramp_is_the_sum_of_inverse_rates_and_not_rescaled() {
        let t = arrival_times(5, &ramp(false, 2.0, 10.0, f64::INFINITY)).unwrap();
        // Gaps 1/2, 1/4, 1/6, 1/8, 1/10 seconds.
        let mut acc = 0.0;
        let want: Vec<u64> = [2.0, 4.0, 6.0, 8.0, 10.0]
            .iter()
            .map(|r| {
                acc += 1.0 / r;
                (acc * 1e9_f64).round() as u64
            })
            .collect();
        assert_eq!(t, want);
    }

    #[test]
    fn ramped_gamma_gaps_shrink_as_the_rate_rises() {
        let n = 20_000;
        let t = arrival_times(n, &ramp(true, 10.0, 1000.0, 1.0)).unwrap();
        let first: f64 = (t[n / 10] - t[0]) as f64 / (n / 10) as f64;
        let last: f64 = (t[n - 1] - t[n - 1 - n / 10]) as f64 / (n / 10) as f64;
        // Rate 10·100^p: the mean gap of the first tenth is near 1/(10·100^0.05) s, of the
        // last near 1/(10·100^0.95) s (midpoints; the exact averages differ by about 1 %).
        let expect_first = 1e9 / (10.0 * 100f64.powf(0.05));
        let expect_last = 1e9 / (10.0 * 100f64.powf(0.95));
        assert!(
            (first / expect_first - 1.0).abs() < 0.2,
            "{first} vs {expect_first}"
        );
        assert!(
            (last / expect_last - 1.0).abs() < 0.2,
            "{last} vs {expect_last}"
        );
    }

    #[test]
    fn bad_ramps_are_refused() {
        for (s, e) in [(0.0, 5.0), (5.0, 1.0), (-1.0, 2.0), (1.0, f64::INFINITY)] {
            let err = arrival_times(3, &ramp(false, s, e, 1.0))
                .unwrap_err()
                .to_string();
            assert!(err.contains("--ramp-up"), "{err}");
        }
    }

    #[test]
    fn infinite_rate_sends_everything_at_once() {
        assert_eq!(arrival_times(5, &spec(f64::INFINITY, 1.0)).unwrap(), [0; 5]);
        assert!(arrival_times(0, &spec(3.0, 1.0)).unwrap().is_empty());
    }

    #[test]
    fn infinite_burstiness_is_evenly_spaced() {
        let t = arrival_times(4, &spec(4.0, f64::INFINITY)).unwrap();
        assert_eq!(t, [250_000_000, 500_000_000, 750_000_000, 1_000_000_000]);
    }

    #[test]
    fn bad_rate_or_burstiness_names_the_flag() {
        for bad in [0.0, -1.0, f64::NAN, f64::NEG_INFINITY] {
            let e = arrival_times(3, &spec(bad, 1.0)).unwrap_err().to_string();
            assert!(e.contains("--request-rate"), "{e}");
            let e = arrival_times(3, &spec(1.0, bad)).unwrap_err().to_string();
            assert!(e.contains("--burstiness"), "{e}");
        }
    }

    #[test]
    fn absurdly_slow_rate_is_an_error_not_an_overflow() {
        let e = arrival_times(10, &spec(1e-12, f64::INFINITY)).unwrap_err();
        assert!(e.to_string().contains("--request-rate"));
    }

    #[test]
    fn seed_changes_the_schedule_but_not_its_end() {
        let a = arrival_times(50, &spec(10.0, 1.0)).unwrap();
        let b = arrival_times(
            50,
            &ArrivalSpec {
                seed: 1,
                ..spec(10.0, 1.0)
            },
        )
        .unwrap();
        assert_ne!(a, b);
        assert_eq!(a.last(), Some(&5_000_000_000));
        assert_eq!(b.last(), Some(&5_000_000_000));
        assert_eq!(a, arrival_times(50, &spec(10.0, 1.0)).unwrap());
    }
}

//! When each request is sent, in nanoseconds from the start of the run, the way
//! `vllm bench serve` draws its schedule (`--request-rate`, `--burstiness`).
//!
//! Gaps: rate inf → 0; burstiness inf → exactly `1/rate`; otherwise
//! `Gamma(shape = burstiness, scale = 1/(rate·burstiness))` (mean `1/rate`, coefficient of
//! variation `1/sqrt(burstiness)`; burstiness 1 is a Poisson process). The first request waits
//! one gap too. The cumulative times are then rescaled so the last one lands exactly on
//! `N/rate`, which vLLM does to take the seed's noise out of the achieved rate.

use anyhow::{bail, ensure};
use rand_distr::{Distribution, Gamma};

use super::seeded::{self, Stream};

/// The `--request-rate` / `--burstiness` pair. (`--ramp-up-*` will add a per-request rate
/// here; vLLM skips the final rescaling when ramping up.)
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ArrivalSpec {
    pub request_rate: f64,
    pub burstiness: f64,
    pub seed: u64,
}

impl ArrivalSpec {
    fn validate(&self) -> anyhow::Result<()> {
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

    let total_ns = seconds.last().copied().unwrap_or(0.0) * 1e9;
    ensure!(
        total_ns.is_finite() && total_ns < u64::MAX as f64,
        "--request-rate {rate} spreads {n} requests over {:.3e} s, more than this client can \
         schedule",
        total_ns / 1e9
    );
    Ok(seconds.iter().map(|s| (s * 1e9).round() as u64).collect())
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

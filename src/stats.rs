//! Latency distributions: one hdrhistogram per metric plus exact sums.
//!
//! Percentiles come from the histogram (3 significant digits) interpolated the way
//! `numpy.percentile` does (linear between order statistics), so they agree with numpy on the
//! same samples to within the histogram's precision. Mean and population standard deviation
//! come from exact integer sums, so they agree with `numpy.mean` / `numpy.std` exactly.
//! Every shard and host uses the same bounds, so `merge` is always a bucket-wise add.

use hdrhistogram::Histogram;

/// Largest recordable value: one hour in nanoseconds. Longer values saturate (and are counted).
pub const MAX_NS: u64 = 3_600_000_000_000;
const SIGFIG: u8 = 3;

/// One metric's samples in nanoseconds.
#[derive(Clone, Debug)]
pub struct Distribution {
    hist: Histogram<u64>,
    count: u64,
    sum: u128,
    sum_sq: u128,
    min: u64,
    max: u64,
    saturated: u64,
}

/// What the report prints for one metric, in milliseconds.
#[derive(Clone, Debug, PartialEq)]
pub struct Summary {
    pub count: u64,
    pub mean_ms: f64,
    pub median_ms: f64,
    pub std_ms: f64,
    /// (percentile, value) in the order asked for.
    pub percentiles_ms: Vec<(f64, f64)>,
}

impl Default for Distribution {
    fn default() -> Self {
        Self::new()
    }
}

impl Distribution {
    pub fn new() -> Self {
        let hist = Histogram::new_with_bounds(1, MAX_NS, SIGFIG)
            .expect("constant histogram bounds are valid");
        Distribution {
            hist,
            count: 0,
            sum: 0,
            sum_sq: 0,
            min: u64::MAX,
            max: 0,
            saturated: 0,
        }
    }

    #[inline]
    pub fn record(&mut self, ns: u64) {
        if ns > MAX_NS {
            self.saturated += 1;
        }
        self.hist.saturating_record(ns);
        self.count += 1;
        self.sum += ns as u128;
        self.sum_sq += (ns as u128) * (ns as u128);
        self.min = self.min.min(ns);
        self.max = self.max.max(ns);
    }

    pub fn merge(&mut self, other: &Distribution) {
        self.hist
            .add(&other.hist)
            .expect("identical histogram bounds always add");
        self.count += other.count;
        self.sum += other.sum;
        self.sum_sq += other.sum_sq;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
        self.saturated += other.saturated;
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    /// Samples above [`MAX_NS`], recorded as the maximum.
    pub fn saturated(&self) -> u64 {
        self.saturated
    }

    pub fn mean_ns(&self) -> f64 {
        if self.count == 0 {
            return 0.0;
        }
        self.sum as f64 / self.count as f64
    }

    /// Population standard deviation (numpy's default, ddof = 0).
    pub fn std_ns(&self) -> f64 {
        if self.count == 0 {
            return 0.0;
        }
        let n = self.count as f64;
        let mean = self.sum as f64 / n;
        let var = self.sum_sq as f64 / n - mean * mean;
        var.max(0.0).sqrt()
    }

    /// `numpy.percentile(samples, p)` with linear interpolation; 0 when empty (like vLLM's
    /// `np.percentile(x or 0, p)`).
    pub fn percentile_ns(&self, p: f64) -> f64 {
        if self.count == 0 {
            return 0.0;
        }
        let rank = (p / 100.0).clamp(0.0, 1.0) * (self.count - 1) as f64;
        let lo = rank.floor() as u64;
        let frac = rank - lo as f64;
        let a = self.order_statistic(lo);
        if frac == 0.0 {
            return a;
        }
        let b = self.order_statistic(lo + 1);
        a + (b - a) * frac
    }

    /// The k-th smallest sample (0-based) as the histogram knows it: the middle of its bucket,
    /// clamped to the exact extremes so p0 and p100 are exact.
    fn order_statistic(&self, k: u64) -> f64 {
        if k == 0 {
            return self.min as f64;
        }
        if k >= self.count - 1 {
            return self.max as f64;
        }
        let mut seen = 0u64;
        for v in self.hist.iter_recorded() {
            seen += v.count_at_value();
            if seen > k {
                let mid = self.hist.median_equivalent(v.value_iterated_to());
                return (mid.clamp(self.min, self.max)) as f64;
            }
        }
        self.max as f64
    }

    /// The distribution as a multi-host result file carries it: the histogram in HdrHistogram's
    /// V2 compressed encoding, base64 (readable by any HdrHistogram library), and the exact
    /// sums as decimal strings (u128 does not fit a JSON number).
    pub fn to_json(&self) -> serde_json::Value {
        use base64::Engine as _;
        use hdrhistogram::serialization::Serializer as _;
        let mut bytes = Vec::new();
        let encoded = hdrhistogram::serialization::V2DeflateSerializer::new()
            .serialize(&self.hist, &mut bytes)
            .map(|_| base64::engine::general_purpose::STANDARD.encode(&bytes))
            .unwrap_or_default();
        serde_json::json!({
            "hdr_v2_deflate_base64": encoded,
            "lowest_ns": 1, "highest_ns": MAX_NS, "significant_figures": SIGFIG,
            "count": self.count,
            "sum_ns": self.sum.to_string(),
            "sum_sq_ns2": self.sum_sq.to_string(),
            "min_ns": if self.count == 0 { 0 } else { self.min },
            "max_ns": self.max,
            "saturated": self.saturated,
        })
    }

    /// Reads what [`Distribution::to_json`] wrote; the histogram is re-recorded into this
    /// build's bounds so merges always add bucket for bucket.
    pub fn from_json(v: &serde_json::Value) -> Result<Distribution, String> {
        use base64::Engine as _;
        let field = |k: &str| v.get(k).ok_or_else(|| format!("histogram lacks `{k}`"));
        let text = field("hdr_v2_deflate_base64")?
            .as_str()
            .ok_or("`hdr_v2_deflate_base64` is not a string")?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(|e| format!("histogram is not base64: {e}"))?;
        let read: Histogram<u64> = hdrhistogram::serialization::Deserializer::new()
            .deserialize(&mut bytes.as_slice())
            .map_err(|e| format!("histogram does not decode: {e:?}"))?;
        let mut d = Distribution::new();
        d.hist
            .add(&read)
            .map_err(|e| format!("histogram bounds do not fit: {e:?}"))?;
        let num = |k: &str| -> Result<u64, String> {
            field(k)?
                .as_u64()
                .ok_or_else(|| format!("`{k}` is not a count"))
        };
        let big = |k: &str| -> Result<u128, String> {
            field(k)?
                .as_str()
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| format!("`{k}` is not a decimal string"))
        };
        d.count = num("count")?;
        d.sum = big("sum_ns")?;
        d.sum_sq = big("sum_sq_ns2")?;
        d.min = if d.count == 0 {
            u64::MAX
        } else {
            num("min_ns")?
        };
        d.max = num("max_ns")?;
        d.saturated = num("saturated")?;
        if d.hist.len() != d.count {
            return Err(format!(
                "histogram holds {} samples but its count says {}",
                d.hist.len(),
                d.count
            ));
        }
        Ok(d)
    }

    pub fn summary(&self, percentiles: &[f64]) -> Summary {
        const MS: f64 = 1e6;
        Summary {
            count: self.count,
            mean_ms: self.mean_ns() / MS,
            median_ms: self.percentile_ns(50.0) / MS,
            std_ms: self.std_ns() / MS,
            percentiles_ms: percentiles
                .iter()
                .map(|&p| (p, self.percentile_ns(p) / MS))
                .collect(),
        }
    }
}

/// Exact statistics of one metric in ms, over every sample: mean, median, std, SGLang's
/// p90/p95/p99 and max (numpy's definitions;
/// zeros when there are no samples).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Exact {
    pub mean: f64,
    pub median: f64,
    pub std: f64,
    pub p90: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
}

impl Exact {
    pub fn of_ms(mut v: Vec<f64>) -> Exact {
        if v.is_empty() {
            return Exact::default();
        }
        v.sort_by(f64::total_cmp);
        let n = v.len() as f64;
        let mean = v.iter().sum::<f64>() / n;
        let var = v.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n;
        Exact {
            mean,
            median: numpy_percentile(&v, 50.0),
            std: var.sqrt(),
            p90: numpy_percentile(&v, 90.0),
            p95: numpy_percentile(&v, 95.0),
            p99: numpy_percentile(&v, 99.0),
            max: v[v.len() - 1],
        }
    }
}

/// numpy-exact statistics over a slice, for tests and for small per-run lists.
pub fn numpy_percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (p / 100.0).clamp(0.0, 1.0) * (sorted.len() - 1) as f64;
    let lo = rank.floor() as usize;
    let hi = (lo + 1).min(sorted.len() - 1);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (rank - lo as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    fn numpy_mean_std(xs: &[f64]) -> (f64, f64) {
        let n = xs.len() as f64;
        let mean = xs.iter().sum::<f64>() / n;
        let var = xs.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n;
        (mean, var.sqrt())
    }

    fn check_against_exact(samples: &[u64]) {
        let mut d = Distribution::new();
        samples.iter().for_each(|&s| d.record(s));
        let mut sorted: Vec<f64> = samples.iter().map(|&s| s as f64).collect();
        sorted.sort_by(|a, b| a.partial_cmp(b).unwrap());
        let (mean, std) = numpy_mean_std(&sorted);
        assert!((d.mean_ns() - mean).abs() <= mean * 1e-12 + 1e-9, "mean");
        assert!(
            (d.std_ns() - std).abs() <= std * 1e-6 + 1e-3,
            "std {} vs {std}",
            d.std_ns()
        );
        for p in [0.0, 1.0, 25.0, 50.0, 90.0, 99.0, 99.9, 100.0] {
            let exact = numpy_percentile(&sorted, p);
            let got = d.percentile_ns(p);
            // 3 significant digits: half a bucket is at most 0.05 % of the value.
            assert!(
                (got - exact).abs() <= exact * 1e-3 + 1.0,
                "p{p}: got {got}, numpy {exact}"
            );
        }
    }

    #[test]
    fn agrees_with_numpy_on_latency_like_samples() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let samples: Vec<u64> = (0..20_000)
            .map(|_| 50_000_000 + rng.gen_range(0..2_000_000))
            .collect();
        check_against_exact(&samples);
    }

    #[test]
    fn agrees_with_numpy_on_wide_and_tiny_sets() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(9);
        let wide: Vec<u64> = (0..5_000)
            .map(|_| 10u64.pow(rng.gen_range(3..12)) + rng.gen_range(0..1000))
            .collect();
        check_against_exact(&wide);
        check_against_exact(&[42]);
        check_against_exact(&[10_000_000, 20_000_000]);
        check_against_exact(&[5, 5, 5, 5]);
    }

    #[test]
    fn merge_equals_recording_everything_in_one() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let (mut a, mut b, mut all) = (
            Distribution::new(),
            Distribution::new(),
            Distribution::new(),
        );
        for i in 0..10_000u64 {
            let v = rng.gen_range(1_000..100_000_000);
            if i % 3 == 0 { &mut a } else { &mut b }.record(v);
            all.record(v);
        }
        a.merge(&b);
        assert_eq!(a.summary(&[50.0, 99.0]), all.summary(&[50.0, 99.0]));
        assert_eq!(a.count(), 10_000);
    }

    #[test]
    fn empty_reports_zeros_like_vllm() {
        let s = Distribution::new().summary(&[99.0]);
        assert_eq!(
            (s.mean_ms, s.median_ms, s.std_ms, s.percentiles_ms[0].1),
            (0.0, 0.0, 0.0, 0.0)
        );
    }

    #[test]
    fn values_beyond_an_hour_saturate_and_are_counted() {
        let mut d = Distribution::new();
        d.record(MAX_NS * 2);
        assert_eq!(d.saturated(), 1);
        assert_eq!(d.count(), 1);
    }
}

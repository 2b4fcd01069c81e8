//! The dataset summary printed before a run: how many requests, and their input and output
//! lengths (mean, min, max), so a user sees the workload is the one they meant.

use super::Sample;

#[derive(Clone, Debug, PartialEq)]
pub struct LengthStats {
    pub mean: f64,
    pub min: usize,
    pub max: usize,
}

#[derive(Clone, Debug, PartialEq)]
pub struct DatasetStats {
    pub count: usize,
    pub input: LengthStats,
    pub output: LengthStats,
    /// Requests with images, and images in all.
    pub with_images: usize,
    pub images: usize,
    /// Requests that carry a trace timestamp.
    pub timed: usize,
}

fn lengths(values: impl Iterator<Item = usize> + Clone) -> LengthStats {
    let (mut n, mut sum, mut min, mut max) = (0usize, 0u128, usize::MAX, 0usize);
    for v in values {
        n += 1;
        sum += v as u128;
        min = min.min(v);
        max = max.max(v);
    }
    LengthStats {
        mean: if n == 0 { 0.0 } else { sum as f64 / n as f64 },
        min: if n == 0 { 0 } else { min },
        max,
    }
}

pub fn of(samples: &[Sample]) -> DatasetStats {
    DatasetStats {
        count: samples.len(),
        input: lengths(samples.iter().map(|s| s.prompt_len)),
        output: lengths(samples.iter().map(|s| s.output_len)),
        with_images: samples.iter().filter(|s| !s.images.is_empty()).count(),
        images: samples.iter().map(|s| s.images.len()).sum(),
        timed: samples.iter().filter(|s| s.timestamp_s.is_some()).count(),
    }
}

/// The lines printed before the run.
pub fn render(name: &str, st: &DatasetStats) -> String {
    let mut out = format!(
        "Dataset {name}: {} requests\n  input tokens:  mean {:.1}, min {}, max {}\n  output tokens: mean {:.1}, min {}, max {}\n",
        st.count, st.input.mean, st.input.min, st.input.max, st.output.mean, st.output.min, st.output.max
    );
    if st.images > 0 {
        out.push_str(&format!(
            "  images: {} in {} requests\n",
            st.images, st.with_images
        ));
    }
    if st.timed > 0 {
        out.push_str(&format!("  trace timestamps: {} requests\n", st.timed));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_cover_lengths_images_and_timestamps() {
        let mut a = Sample::text("a".into(), 10, 3);
        a.images = vec!["data:".into(), "data:".into()];
        let mut b = Sample::text("b".into(), 30, 5);
        b.timestamp_s = Some(1.0);
        let st = of(&[a, b]);
        assert_eq!(st.count, 2);
        assert_eq!(
            st.input,
            LengthStats {
                mean: 20.0,
                min: 10,
                max: 30
            }
        );
        assert_eq!(
            st.output,
            LengthStats {
                mean: 4.0,
                min: 3,
                max: 5
            }
        );
        assert_eq!((st.with_images, st.images, st.timed), (1, 2, 1));
        let text = render("x", &st);
        assert!(text.contains("mean 20.0, min 10, max 30"), "{text}");
        assert!(text.contains("images: 2 in 1"), "{text}");
    }
}

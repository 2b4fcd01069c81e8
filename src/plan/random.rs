//! The `random` dataset, built the way `vllm bench serve --dataset-name random` builds it
//! (vLLM 0.33, `RandomDataset` and `gen_prompt_decode_to_target_len`).
//!
//! Per request `i`:
//! 1. draw an input length, an output length and an offset (uniform integers, see
//!    [`LengthRanges`]);
//! 2. ids = shared prefix ++ `allowed[(offset + i + j) % allowed.len()]` for `j < input_len`,
//!    where `allowed` is `0..vocab_size` without the special ids, ascending;
//! 3. decode the ids to text and re-encode it; while the count differs from
//!    `prefix_len + input_len` (at most [`MAX_RETRY`] times) truncate the re-encoded ids, or
//!    append random ids, and go round again;
//! 4. the prompt is the last decoded text, its length the last re-encoded count; what is still
//!    off after the retries is reported as a mismatch, as vLLM's warning does.
//!
//! Differences from vLLM, on purpose: the random draws come from our own streams (see
//! [`super::seeded`]), not numpy's, so a seed gives different (equally distributed) prompts;
//! and padding ids are drawn from the allowed ids, where vLLM draws from `0..vocab_size` and
//! so can put special tokens into a prompt.

use std::ops::RangeInclusive;

use anyhow::{bail, ensure};
use rand::Rng;

use super::seeded::{self, Stream};
use crate::tokenizer::Tokenizer;

/// vLLM's `max_retry` for the decode → re-encode → adjust loop.
pub const MAX_RETRY: usize = 10;

/// Parameters of the `random` dataset (the `--random-*` flags).
#[derive(Clone, Debug, PartialEq)]
pub struct RandomSpec {
    pub input_len: usize,
    pub output_len: usize,
    pub range_ratio: f64,
    pub prefix_len: usize,
    pub seed: u64,
}

/// Inclusive ranges the per-request lengths are drawn from. `input` excludes the prefix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LengthRanges {
    pub input: RangeInclusive<usize>,
    pub output: RangeInclusive<usize>,
}

impl LengthRanges {
    /// vLLM's bounds: `real = input_len - num_special`; input in
    /// `[floor(real(1-r)), ceil(real(1+r))]`; output in
    /// `[max(1, floor(out(1-r))), max(1, ceil(out(1+r)))]`.
    pub fn new(
        input_len: usize,
        output_len: usize,
        range_ratio: f64,
        num_special_tokens: usize,
    ) -> anyhow::Result<LengthRanges> {
        // Written so that NaN fails too.
        if !(0.0..1.0).contains(&range_ratio) {
            bail!("--random-range-ratio must be in [0, 1), got {range_ratio}");
        }
        let real_input = input_len.saturating_sub(num_special_tokens) as f64;
        let input_low = (real_input * (1.0 - range_ratio)).floor() as usize;
        let input_high = (real_input * (1.0 + range_ratio)).ceil() as usize;
        let output = output_len as f64;
        let output_low = ((output * (1.0 - range_ratio)).floor() as usize).max(1);
        let output_high = ((output * (1.0 + range_ratio)).ceil() as usize).max(1);
        Ok(LengthRanges {
            input: input_low..=input_high,
            output: output_low..=output_high,
        })
    }
}

/// One generated prompt.
#[derive(Clone, Debug, PartialEq)]
pub struct RandomPrompt {
    pub prompt: String,
    /// The prompt's token ids (its encoding without special tokens), for `--tokenize-prompt`.
    pub token_ids: Vec<u32>,
    /// Token count of `prompt` re-encoded without special tokens.
    pub prompt_len: usize,
    pub output_len: usize,
    /// `prompt_len` minus the target length when the retries ran out, else 0.
    pub mismatch: i64,
}

/// Ids a random prompt may be built from: `0..vocab_size` without the special ids, ascending.
pub fn allowed_ids(tok: &Tokenizer) -> anyhow::Result<Vec<u32>> {
    let special = tok.special_ids();
    let allowed: Vec<u32> = (0..tok.vocab_size() as u32)
        .filter(|id| special.binary_search(id).is_err())
        .collect();
    ensure!(
        !allowed.is_empty(),
        "tokenizer {}: every id below vocab_size {} is special; cannot build random prompts",
        tok.id(),
        tok.vocab_size()
    );
    Ok(allowed)
}

/// Everything shared by all requests; [`RandomDataset::prompt`] builds any one of them, from
/// any thread, in any order.
pub struct RandomDataset<'t> {
    tok: &'t Tokenizer,
    seed: u64,
    ranges: LengthRanges,
    allowed: Vec<u32>,
    prefix: Vec<u32>,
    vocab_size: usize,
}

impl<'t> RandomDataset<'t> {
    pub fn new(spec: &RandomSpec, tok: &'t Tokenizer) -> anyhow::Result<RandomDataset<'t>> {
        let num_special = tok.num_special_tokens_to_add();
        let ranges = LengthRanges::new(
            spec.input_len,
            spec.output_len,
            spec.range_ratio,
            num_special,
        )?;
        let min_total = spec.prefix_len + *ranges.input.start();
        ensure!(
            min_total >= 1,
            "--random-input-len is too small: with {num_special} special tokens added by the \
             tokenizer and --random-range-ratio {}, a prompt could have {min_total} tokens; \
             raise --random-input-len or --random-prefix-len, or lower --random-range-ratio",
            spec.range_ratio
        );
        for (flag, len) in [
            ("--random-input-len", *ranges.input.end()),
            ("--random-prefix-len", spec.prefix_len),
            ("--random-output-len", *ranges.output.end()),
        ] {
            ensure!(
                len <= u32::MAX as usize / 2,
                "{flag} is too large ({len} tokens)"
            );
        }

        let vocab_size = tok.vocab_size();
        let allowed = allowed_ids(tok)?;

        let mut rng = seeded::rng(spec.seed, Stream::Prefix, 0);
        let prefix = (0..spec.prefix_len)
            .map(|_| allowed[rng.gen_range(0..allowed.len())])
            .collect();

        Ok(RandomDataset {
            tok,
            seed: spec.seed,
            ranges,
            allowed,
            prefix,
            vocab_size,
        })
    }

    pub fn ranges(&self) -> &LengthRanges {
        &self.ranges
    }

    /// The shared prefix ids every prompt starts from.
    pub fn prefix_ids(&self) -> &[u32] {
        &self.prefix
    }

    /// Ids a prompt may be built from: `0..vocab_size` without the special ids.
    pub fn allowed_ids(&self) -> &[u32] {
        &self.allowed
    }

    /// Request `index`'s prompt; depends only on the seed and `index`.
    pub fn prompt(&self, index: usize) -> anyhow::Result<RandomPrompt> {
        let mut rng = seeded::rng(self.seed, Stream::Request, index as u64);
        let input_len = rng.gen_range(self.ranges.input.clone());
        let output_len = rng.gen_range(self.ranges.output.clone());
        let offset = rng.gen_range(0..self.vocab_size);

        let n = self.allowed.len();
        let start = (offset % n + index % n) % n;
        let mut ids = Vec::with_capacity(self.prefix.len() + input_len);
        ids.extend_from_slice(&self.prefix);
        ids.extend((0..input_len).map(|j| self.allowed[(start + j % n) % n]));

        let target = self.prefix.len() + input_len;
        let mut retries_left = MAX_RETRY;
        loop {
            let prompt = self.tok.decode(&ids)?;
            ids = self.tok.encode(&prompt)?;
            if ids.len() == target || retries_left == 0 {
                let prompt_len = ids.len();
                return Ok(RandomPrompt {
                    prompt,
                    token_ids: ids,
                    prompt_len,
                    output_len,
                    mismatch: prompt_len as i64 - target as i64,
                });
            }
            if ids.len() < target {
                let missing = target - ids.len();
                ids.extend((0..missing).map(|_| self.allowed[rng.gen_range(0..n)]));
            } else {
                ids.truncate(target);
            }
            retries_left -= 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_follow_vllm_bounds() {
        let r = LengthRanges::new(1024, 128, 0.0, 0).unwrap();
        assert_eq!(r.input, 1024..=1024);
        assert_eq!(r.output, 128..=128);
        let r = LengthRanges::new(1000, 10, 0.25, 1).unwrap();
        // real = 999: floor(749.25) .. ceil(1248.75)
        assert_eq!(r.input, 749..=1249);
        assert_eq!(r.output, 7..=13);
        // Output never drops below one token.
        let r = LengthRanges::new(5, 1, 0.9, 0).unwrap();
        assert_eq!(r.output, 1..=2);
        assert_eq!(r.input, 0..=10);
        let r = LengthRanges::new(5, 0, 0.0, 0).unwrap();
        assert_eq!(r.output, 1..=1);
    }

    #[test]
    fn range_ratio_outside_unit_interval_is_rejected() {
        for bad in [1.0, 1.5, -0.1, f64::NAN] {
            let err = LengthRanges::new(10, 10, bad, 0).unwrap_err();
            assert!(err.to_string().contains("--random-range-ratio"), "{err}");
        }
    }

    #[test]
    fn empty_prompts_are_rejected() {
        let tok = Tokenizer::embedded_default();
        let spec = RandomSpec {
            input_len: 1,
            output_len: 4,
            range_ratio: 0.5,
            prefix_len: 0,
            seed: 0,
        };
        let err = RandomDataset::new(&spec, &tok).err().unwrap();
        assert!(err.to_string().contains("--random-input-len is too small"));
        let with_prefix = RandomSpec {
            prefix_len: 1,
            ..spec
        };
        assert!(RandomDataset::new(&with_prefix, &tok).is_ok());
    }

    #[test]
    fn prompt_is_reproducible_per_index() {
        let tok = Tokenizer::embedded_default();
        let spec = RandomSpec {
            input_len: 64,
            output_len: 16,
            range_ratio: 0.5,
            prefix_len: 8,
            seed: 42,
        };
        let ds = RandomDataset::new(&spec, &tok).unwrap();
        let again = RandomDataset::new(&spec, &tok).unwrap();
        assert_eq!(ds.prefix_ids(), again.prefix_ids());
        // Building out of order gives the same prompts.
        let forward: Vec<_> = (0..8).map(|i| ds.prompt(i).unwrap()).collect();
        let backward: Vec<_> = (0..8).rev().map(|i| again.prompt(i).unwrap()).collect();
        assert!(forward.iter().eq(backward.iter().rev()));
        assert_ne!(forward[0].prompt, forward[1].prompt);
    }

    #[test]
    fn allowed_ids_exclude_special_ids() {
        let tok = Tokenizer::embedded_default();
        let spec = RandomSpec {
            input_len: 8,
            output_len: 8,
            range_ratio: 0.0,
            prefix_len: 0,
            seed: 1,
        };
        let ds = RandomDataset::new(&spec, &tok).unwrap();
        assert_eq!(ds.allowed_ids().len(), tok.vocab_size() - 3);
        assert_eq!(ds.allowed_ids()[0], 3);
        assert!(ds.allowed_ids().windows(2).all(|w| w[0] < w[1]));
    }
}

//! `prefix_repetition` (vLLM's `PrefixRepetitionRandomDataset`), and the exact-length random
//! text that it, `burstgpt` and `mooncake` share ([`fit_after`]).
//!
//! vLLM builds `--prefix-repetition-num-prefixes` random prefixes of `-prefix-len` tokens and,
//! after each, `num_prompts / num_prefixes` (integer division) random suffixes of `-suffix-len`
//! tokens; every prompt is prefix + suffix, and the list is shuffled unless
//! `--disable-shuffle`. When `num_prompts` is not a multiple of `num_prefixes` there are fewer
//! requests than asked for: vLLM does the same, and we say so on stderr.
//!
//! Departures, on purpose: ids are drawn from the allowed (non-special) ids, where vLLM draws
//! from `0..vocab_size`; our draws come from our own seeded streams, not numpy's; and where
//! vLLM fits prefix and suffix to their lengths separately and then decodes them together
//! (so the seam can re-encode to a different count), we fit the suffix after the prefix's
//! text, so `prompt_len` is exactly prefix + suffix whenever the tokenizer allows, and every
//! prompt of a group starts with the same prefix text.

use anyhow::{bail, ensure};
use rand::Rng;

use super::{source, Ctx, DatasetArgs, Prompt, Sample};
use crate::plan::build_parallel;
use crate::plan::random::{allowed_ids, MAX_RETRY};
use crate::plan::seeded::{self, Stream};
use crate::tokenizer::Tokenizer;

/// Longest prompt a dataset row may ask for; a bigger number is a broken row, not a prompt.
pub const MAX_PROMPT_TOKENS: u64 = 1 << 24;

/// `n` ids drawn uniformly from `allowed`.
pub fn random_ids(rng: &mut impl Rng, allowed: &[u32], n: usize) -> Vec<u32> {
    (0..n)
        .map(|_| allowed[rng.gen_range(0..allowed.len())])
        .collect()
}

pub use super::random::Fitted;

/// vLLM's decode → re-encode → adjust loop, with a fixed text in front: the prompt is `head`
/// followed by the decoded `tail`; while it does not encode to `target` tokens (at most
/// [`MAX_RETRY`] rounds) the re-encoded tail is truncated, or padded with random allowed ids.
/// Only the tail changes, so prompts built on one head share it as text.
pub fn fit_after(
    tok: &Tokenizer,
    head: &str,
    mut tail: Vec<u32>,
    target: usize,
    rng: &mut impl Rng,
    allowed: &[u32],
) -> anyhow::Result<Fitted> {
    let mut retries_left = MAX_RETRY;
    loop {
        let tail_text = tok.decode(&tail)?;
        let mut text = String::with_capacity(head.len() + tail_text.len());
        text.push_str(head);
        text.push_str(&tail_text);
        let ids = tok.encode(&text)?;
        let have = ids.len();
        if have == target || retries_left == 0 {
            return Ok(Fitted {
                text,
                ids,
                mismatch: have as i64 - target as i64,
            });
        }
        // With no head the whole encoding is the tail's: no second encode.
        tail = if head.is_empty() {
            ids
        } else {
            tok.encode(&tail_text)?
        };
        if have > target {
            let excess = have - target;
            if excess > tail.len() {
                // The head alone is too long: nothing left to cut.
                retries_left = 0;
            }
            tail.truncate(tail.len().saturating_sub(excess));
        } else {
            tail.extend(random_ids(rng, allowed, target - have));
        }
        retries_left = retries_left.saturating_sub(1);
    }
}

pub fn load(args: &DatasetArgs, ctx: &Ctx, tok: &Tokenizer) -> anyhow::Result<Vec<Sample>> {
    let prefix_len = args.prefix_repetition_prefix_len;
    let suffix_len = args.prefix_repetition_suffix_len;
    let num_prefixes = args.prefix_repetition_num_prefixes;
    let output_len = args.output_len.unwrap_or(args.prefix_repetition_output_len);
    if num_prefixes == 0 {
        bail!("--prefix-repetition-num-prefixes must be at least 1");
    }
    let per_prefix = ctx.num_prompts / num_prefixes;
    if per_prefix == 0 {
        bail!(
            "--num-prompts ({}) must be at least --prefix-repetition-num-prefixes \
             ({num_prefixes}): each prefix gets num_prompts / num_prefixes prompts",
            ctx.num_prompts
        );
    }
    ensure!(
        prefix_len + suffix_len >= 1,
        "--prefix-repetition-prefix-len and --prefix-repetition-suffix-len are both 0: the \
         prompts would be empty"
    );
    for (flag, len) in [
        ("--prefix-repetition-prefix-len", prefix_len),
        ("--prefix-repetition-suffix-len", suffix_len),
    ] {
        ensure!(
            len as u64 <= MAX_PROMPT_TOKENS,
            "{flag} {len}: too large (at most {MAX_PROMPT_TOKENS} tokens)"
        );
    }
    let total = per_prefix * num_prefixes;
    if total < ctx.num_prompts {
        eprintln!(
            "WARNING: --dataset-name prefix_repetition: {total} requests, not {}: \
             {num_prefixes} prefixes x {per_prefix} prompts each (num_prompts / num_prefixes, \
             rounded down, as vLLM does)",
            ctx.num_prompts
        );
    }

    let allowed = allowed_ids(tok)?;
    let prefixes = build_parallel(num_prefixes, |p| {
        let mut rng = seeded::rng(ctx.seed, Stream::Shared, p as u64);
        let ids = random_ids(&mut rng, &allowed, prefix_len);
        fit_after(tok, "", ids, prefix_len, &mut rng, &allowed)
    })?;
    let target = prefix_len + suffix_len;
    let samples = build_parallel(total, |k| {
        let prefix = &prefixes[k / per_prefix];
        let mut rng = seeded::rng(ctx.seed, Stream::Sample, k as u64);
        let tail = random_ids(&mut rng, &allowed, suffix_len);
        let fitted = fit_after(tok, &prefix.text, tail, target, &mut rng, &allowed)?;
        Ok(Sample {
            prompt: Prompt::Text(fitted.text),
            prompt_len: fitted.ids.len(),
            token_ids: Some(fitted.ids),
            mismatch: fitted.mismatch,
            ..Sample::text(String::new(), 0, output_len)
        })
    })?;
    Ok(source::ordered(samples, ctx.seed, args.disable_shuffle))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::Api;

    fn ctx(n: usize, seed: u64) -> Ctx {
        Ctx {
            num_prompts: n,
            seed,
            api: Api::Completions,
        }
    }

    fn args(prefix: usize, suffix: usize, groups: usize) -> DatasetArgs {
        DatasetArgs {
            dataset_name: "prefix_repetition".into(),
            prefix_repetition_prefix_len: prefix,
            prefix_repetition_suffix_len: suffix,
            prefix_repetition_num_prefixes: groups,
            ..Default::default()
        }
    }

    #[test]
    fn fit_after_keeps_the_head_and_hits_the_target() {
        let tok = Tokenizer::embedded_default();
        let allowed = allowed_ids(&tok).unwrap();
        let mut rng = seeded::rng(3, Stream::Sample, 0);
        for target in [3usize, 7, 40, 200] {
            let tail = random_ids(&mut rng, &allowed, target.saturating_sub(5));
            let f = fit_after(&tok, "Once upon", tail, target, &mut rng, &allowed).unwrap();
            assert!(f.text.starts_with("Once upon"), "{}", f.text);
            assert_eq!(f.ids.len(), target, "{}", f.text);
            assert_eq!(tok.count(&f.text).unwrap(), target);
            assert_eq!(f.mismatch, 0);
        }
    }

    #[test]
    fn fit_after_reports_a_head_longer_than_the_target() {
        let tok = Tokenizer::embedded_default();
        let allowed = allowed_ids(&tok).unwrap();
        let mut rng = seeded::rng(3, Stream::Sample, 0);
        let head = "a long head of several words";
        let have = tok.count(head).unwrap();
        let f = fit_after(&tok, head, vec![], 2, &mut rng, &allowed).unwrap();
        assert_eq!(f.text, head);
        assert_eq!(f.mismatch, have as i64 - 2);
    }

    #[test]
    fn groups_share_their_prefix_and_lengths_are_exact() {
        let tok = Tokenizer::embedded_default();
        let samples = load(&args(24, 16, 3), &ctx(10, 5), &tok).unwrap();
        // 10 / 3 = 3 per prefix: 9 requests.
        assert_eq!(samples.len(), 9);
        let mut heads: Vec<Vec<u32>> = samples
            .iter()
            .map(|s| s.token_ids.as_ref().unwrap()[..20].to_vec())
            .collect();
        heads.sort();
        heads.dedup();
        assert_eq!(heads.len(), 3);
        for s in &samples {
            assert_eq!(s.prompt_len, 40);
            assert_eq!(s.output_len, 128);
            assert_eq!(tok.count(s.prompt.as_text().unwrap()).unwrap(), 40);
        }
    }

    #[test]
    fn bad_counts_are_errors() {
        let tok = Tokenizer::embedded_default();
        let e = load(&args(8, 8, 0), &ctx(10, 0), &tok).unwrap_err();
        assert!(
            e.to_string().contains("--prefix-repetition-num-prefixes"),
            "{e}"
        );
        let e = load(&args(8, 8, 20), &ctx(10, 0), &tok).unwrap_err();
        assert!(e.to_string().contains("--num-prompts (10)"), "{e}");
        let e = load(&args(0, 0, 2), &ctx(10, 0), &tok).unwrap_err();
        assert!(e.to_string().contains("empty"), "{e}");
    }
}

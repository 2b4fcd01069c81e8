//! `random` (vLLM's, or SGLang's with `--random-flavor sglang`) and SGLang's `random-ids`.
//!
//! vLLM's flavor is [`crate::plan::random`]. SGLang's draw input and output lengths uniformly
//! on `[max(floor(L·r), 1), L]` (`r = 1`: exactly `L`; `r = 0`: anything from 1 to `L`), per
//! request from our own seeded streams: a seed gives SGLang's distribution, not numpy's draws.

use std::ops::RangeInclusive;

use anyhow::ensure;
use rand::Rng;

use super::{sharegpt, source, Ctx, DatasetArgs, Prompt, RandomFlavor, Sample};
use crate::backend::Api;
use crate::plan::build_parallel;
use crate::plan::random::{RandomDataset, RandomPrompt, RandomSpec, MAX_RETRY};
use crate::plan::seeded::{self, SeededRng, Stream};
use crate::tokenizer::Tokenizer;

/// `random`: vLLM's ([`crate::plan::random`]), or SGLang's with `--random-flavor sglang`.
pub fn load(args: &DatasetArgs, ctx: &Ctx, tok: &Tokenizer) -> anyhow::Result<Vec<Sample>> {
    match args.random_flavor() {
        RandomFlavor::Vllm => load_vllm(args, ctx, tok),
        RandomFlavor::Sglang => load_sglang(args, ctx, tok),
    }
}

impl From<RandomPrompt> for Sample {
    fn from(p: RandomPrompt) -> Sample {
        Sample {
            prompt: Prompt::Text(p.prompt),
            prompt_len: p.prompt_len,
            output_len: p.output_len,
            token_ids: Some(p.token_ids),
            mismatch: p.mismatch,
            ..Sample::text(String::new(), 0, 0)
        }
    }
}

/// The `--random-*` flags as vLLM's random dataset reads them.
pub fn vllm_spec(args: &DatasetArgs, seed: u64) -> RandomSpec {
    RandomSpec {
        input_len: args.random_input_len(),
        output_len: args.random_output_len(),
        range_ratio: args.random_range_ratio,
        prefix_len: args.random_prefix_len,
        seed,
    }
}

fn load_vllm(args: &DatasetArgs, ctx: &Ctx, tok: &Tokenizer) -> anyhow::Result<Vec<Sample>> {
    let dataset = RandomDataset::new(&vllm_spec(args, ctx.seed), tok)?;
    build_parallel(ctx.num_prompts, |i| Ok(dataset.prompt(i)?.into()))
}

/// SGLang's length draw, `compute_random_lens`: uniform on `[max(floor(L·r), 1), L]`.
pub fn sglang_range(
    full: usize,
    range_ratio: f64,
    flag: &str,
) -> anyhow::Result<RangeInclusive<usize>> {
    ensure!(
        full >= 1,
        "{flag} 0: SGLang's lengths are drawn from [max(floor(L*r), 1), L], so L must be at least 1"
    );
    ensure!(
        (0.0..=1.0).contains(&range_ratio),
        "--random-range-ratio {range_ratio}: must be in [0, 1] (SGLang's semantics)"
    );
    let low = ((full as f64 * range_ratio).floor() as usize).clamp(1, full);
    Ok(low..=full)
}

/// The per-request lengths of SGLang's `random` and `random-ids`.
struct SglangLengths {
    input: RangeInclusive<usize>,
    output: RangeInclusive<usize>,
}

impl SglangLengths {
    fn new(args: &DatasetArgs) -> anyhow::Result<SglangLengths> {
        ensure!(
            args.random_prefix_len == 0,
            "--random-prefix-len {}: vLLM's random has a shared prefix, SGLang's random and \
             random-ids do not; drop the flag or use --random-flavor vllm",
            args.random_prefix_len
        );
        let r = args.random_range_ratio;
        Ok(SglangLengths {
            input: sglang_range(args.random_input_len(), r, "--random-input-len")?,
            output: sglang_range(args.random_output_len(), r, "--random-output-len")?,
        })
    }

    /// Request `index`'s stream, and its (input, output) lengths drawn from it first.
    fn draw(&self, seed: u64, index: usize) -> (SeededRng, usize, usize) {
        let mut rng = seeded::rng(seed, Stream::Sample, index as u64);
        let input = rng.gen_range(self.input.clone());
        let output = rng.gen_range(self.output.clone());
        (rng, input, output)
    }
}

/// SGLang's `random`: text from the ShareGPT file, cut or tiled to the drawn length.
///
/// Conversations are taken in shuffled order (`--disable-shuffle`: file order); request `i`
/// takes the `i`-th one whose first turn is not empty, tokenizes that turn, repeats or cuts its
/// ids to the drawn input length (less the tokenizer's added special tokens, as SGLang does
/// for text prompts) and decodes them. Departures: the decoded text is then fitted to exactly
/// that many tokens with [`ExactLength`] (SGLang sends it as decoded, so its prompt lengths
/// drift); and with fewer usable conversations than requests, conversations are reused in
/// order (SGLang returns fewer requests), unless `--no-oversample`.
fn load_sglang(args: &DatasetArgs, ctx: &Ctx, tok: &Tokenizer) -> anyhow::Result<Vec<Sample>> {
    let lengths = SglangLengths::new(args)?;
    let path = args.path_for(
        "random",
        &format!(
            "SGLang's random (--random-flavor sglang) takes its text from {}",
            sharegpt::where_to_get()
        ),
    )?;
    sharegpt::require_file(path, "random")?;
    let pairs = sharegpt::read_pairs(path, "random")?;
    let pairs = source::ordered(pairs, ctx.seed, args.disable_shuffle);
    let texts = sharegpt::take_in_order(&pairs, ctx.num_prompts, |p| {
        let ids = tok.encode(&p.prompt)?;
        Ok((!ids.is_empty()).then_some(ids))
    })?;
    ensure!(
        !texts.is_empty(),
        "{path}: every conversation's first turn is empty; SGLang's random needs text to tile"
    );
    let n = if args.no_oversample {
        ctx.num_prompts.min(texts.len())
    } else {
        ctx.num_prompts
    };
    if n < ctx.num_prompts {
        eprintln!(
            "WARNING: --dataset-name random (sglang): only {n} of the {} requests asked for \
             (--no-oversample and {n} usable conversations)",
            ctx.num_prompts
        );
    }
    let special = tok.num_special_tokens_to_add();
    let exact = ExactLength::new(tok)?;
    build_parallel(n, |i| {
        let (mut rng, input, output_len) = lengths.draw(ctx.seed, i);
        let target = input.saturating_sub(special);
        let source = &texts[i % texts.len()];
        let ids: Vec<u32> = source.iter().copied().cycle().take(target).collect();
        Ok(exact.fit(ids, target, &mut rng)?.into_sample(output_len))
    })
}

/// SGLang's `random-ids`: lengths as SGLang draws them, ids `(offset + i + j)` cycling through
/// the vocabulary from a random offset.
///
/// Departures: special ids are skipped (SGLang cycles through all of `0..vocab_size`); for the
/// Completions and SGLang `/generate` formats the ids are sent as they are (`Prompt::Ids`, so
/// the prompt is its length by construction); for the others the ids are decoded and fitted
/// to exactly their length with [`ExactLength`] (SGLang decodes and sends whatever that
/// re-encodes to), after taking off the tokenizer's added special tokens as SGLang does.
pub fn load_ids(args: &DatasetArgs, ctx: &Ctx, tok: &Tokenizer) -> anyhow::Result<Vec<Sample>> {
    let lengths = SglangLengths::new(args)?;
    let exact = ExactLength::new(tok)?;
    let allowed = exact.allowed();
    let n = allowed.len();
    let vocab_size = tok.vocab_size().max(1);
    let as_ids = matches!(ctx.api, Api::Completions | Api::SglangGenerate);
    let special = tok.num_special_tokens_to_add();
    build_parallel(ctx.num_prompts, |i| {
        let (mut rng, input, output_len) = lengths.draw(ctx.seed, i);
        let offset = rng.gen_range(0..vocab_size);
        let start = (offset % n + i % n) % n;
        let target = if as_ids {
            input
        } else {
            input.saturating_sub(special)
        };
        let ids: Vec<u32> = (0..target).map(|j| allowed[(start + j % n) % n]).collect();
        if as_ids {
            return Ok(Sample {
                prompt: Prompt::Ids(ids.clone()),
                token_ids: Some(ids),
                ..Sample::text(String::new(), target, output_len)
            });
        }
        Ok(exact.fit(ids, target, &mut rng)?.into_sample(output_len))
    })
}

/// Text of exactly a given number of tokens, built from ids: vLLM's decode → re-encode →
/// pad-or-cut loop ([`MAX_RETRY`] rounds, padding with random non-special ids), and, where
/// that still misses, a fallback that keeps a prefix of the text which re-encodes to no more
/// than the target and fills up with a filler word (such as " the") that the tokenizer keeps
/// as one token per repeat. The fallback converges for any target (at worst the prompt is the
/// filler repeated), so a mismatch is left only for tokenizers with no such filler word.
pub struct ExactLength<'t> {
    tok: &'t Tokenizer,
    allowed: Vec<u32>,
    filler: Option<String>,
}

/// A prompt fitted by [`ExactLength::fit`].
#[derive(Clone, Debug, PartialEq)]
pub struct Fitted {
    pub text: String,
    /// The text's encoding (without special tokens).
    pub ids: Vec<u32>,
    /// `ids.len()` minus the target (0 when exact).
    pub mismatch: i64,
}

impl Fitted {
    fn into_sample(self, output_len: usize) -> Sample {
        Sample {
            prompt_len: self.ids.len(),
            token_ids: Some(self.ids),
            mismatch: self.mismatch,
            ..Sample::text(self.text, 0, output_len)
        }
    }
}

impl<'t> ExactLength<'t> {
    pub fn new(tok: &'t Tokenizer) -> anyhow::Result<ExactLength<'t>> {
        let allowed = crate::plan::random::allowed_ids(tok)?;
        let filler = find_filler(tok)?;
        Ok(ExactLength {
            tok,
            allowed,
            filler,
        })
    }

    /// `0..vocab_size` without the special ids, ascending.
    pub fn allowed(&self) -> &[u32] {
        &self.allowed
    }

    /// Text from `ids` that encodes to exactly `target` tokens (see [`ExactLength`]).
    pub fn fit(
        &self,
        mut ids: Vec<u32>,
        target: usize,
        rng: &mut impl Rng,
    ) -> anyhow::Result<Fitted> {
        let mut text;
        let mut rounds_left = MAX_RETRY;
        loop {
            text = self.tok.decode(&ids)?;
            ids = self.tok.encode(&text)?;
            if ids.len() == target {
                return Ok(Fitted {
                    text,
                    ids,
                    mismatch: 0,
                });
            }
            if rounds_left == 0 {
                break;
            }
            rounds_left -= 1;
            if ids.len() < target {
                let n = self.allowed.len();
                let missing = target - ids.len();
                ids.extend((0..missing).map(|_| self.allowed[rng.gen_range(0..n)]));
            } else {
                ids.truncate(target);
            }
        }
        if let Some(filler) = &self.filler {
            if let Some(fitted) = self.fill(&ids, target, filler)? {
                return Ok(fitted);
            }
        }
        let mismatch = ids.len() as i64 - target as i64;
        Ok(Fitted {
            text,
            ids,
            mismatch,
        })
    }

    /// Keeps the longest prefix of `ids` (at most `target` of them) whose text re-encodes to
    /// no more than `target`, and fills up with the filler; a shorter prefix each time the
    /// result misses. An empty prefix is the filler alone, which hits any target.
    fn fill(&self, ids: &[u32], target: usize, filler: &str) -> anyhow::Result<Option<Fitted>> {
        let mut keep = ids.len().min(target);
        let mut step = 1;
        loop {
            let head = self.tok.decode(&ids[..keep])?;
            let head_len = self.tok.count(&head)?;
            if head_len <= target {
                let text = head + &filler.repeat(target - head_len);
                let ids = self.tok.encode(&text)?;
                if ids.len() == target {
                    return Ok(Some(Fitted {
                        text,
                        ids,
                        mismatch: 0,
                    }));
                }
            }
            if keep == 0 {
                return Ok(None);
            }
            // Cut by the overshoot when there is one; otherwise by a step that doubles, so
            // even a stubborn seam costs few rounds.
            let overshoot = head_len.saturating_sub(target);
            if overshoot == 0 {
                step *= 2;
            }
            keep -= overshoot.max(step / 2).clamp(1, keep);
        }
    }
}

/// A short word the tokenizer encodes as one token, and as `k` tokens when repeated `k` times
/// after other text: what [`ExactLength`] pads with when random ids do not settle.
fn find_filler(tok: &Tokenizer) -> anyhow::Result<Option<String>> {
    for word in [
        " the", " a", " and", " of", " to", " x", "the", "a", "x", ".",
    ] {
        if tok.count(word)? != 1 {
            continue;
        }
        let stable = [1usize, 2, 3, 7, 64].iter().try_fold(true, |ok, &k| {
            anyhow::Ok(ok && tok.count(&word.repeat(k))? == k)
        })?;
        let after = ["Hello", "end.", "x", "tail ", "1"]
            .iter()
            .try_fold(true, |ok, head| {
                let alone = tok.count(head)?;
                anyhow::Ok(ok && tok.count(&format!("{head}{}", word.repeat(3)))? == alone + 3)
            })?;
        if stable && after {
            return Ok(Some(word.to_string()));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sglang_ranges_match_compute_random_lens() {
        assert_eq!(sglang_range(100, 0.0, "x").unwrap(), 1..=100);
        assert_eq!(sglang_range(100, 1.0, "x").unwrap(), 100..=100);
        assert_eq!(sglang_range(100, 0.25, "x").unwrap(), 25..=100);
        assert_eq!(sglang_range(101, 0.5, "x").unwrap(), 50..=101);
        // floor(3 * 0.1) = 0 is lifted to 1.
        assert_eq!(sglang_range(3, 0.1, "x").unwrap(), 1..=3);
        assert_eq!(sglang_range(1, 1.0, "x").unwrap(), 1..=1);
        let e = sglang_range(0, 0.5, "--random-input-len").unwrap_err();
        assert!(e.to_string().contains("--random-input-len 0"), "{e}");
        for bad in [1.5, -0.1, f64::NAN] {
            assert!(sglang_range(10, bad, "x").is_err());
        }
    }

    #[test]
    fn embedded_tokenizer_has_a_filler_word() {
        let tok = Tokenizer::embedded_default();
        let filler = find_filler(&tok).unwrap().expect("a filler word");
        assert_eq!(tok.count(&filler.repeat(100)).unwrap(), 100);
    }

    #[test]
    fn fitted_prompts_hit_every_target_exactly() {
        let tok = Tokenizer::embedded_default();
        let exact = ExactLength::new(&tok).unwrap();
        let allowed = exact.allowed().to_vec();
        let mut rng = seeded::rng(5, Stream::Sample, 0);
        let mut targets: Vec<usize> = (0..=40).collect();
        targets.extend((41..3000).step_by(97));
        for (k, &target) in targets.iter().enumerate() {
            // Consecutive vocabulary ids (random-ids) and random ids: the hard cases.
            let start = rng.gen_range(0..allowed.len());
            let consecutive: Vec<u32> = (0..target)
                .map(|j| allowed[(start + j) % allowed.len()])
                .collect();
            let random: Vec<u32> = (0..target)
                .map(|_| allowed[rng.gen_range(0..allowed.len())])
                .collect();
            for ids in [consecutive, random] {
                let fit = exact.fit(ids, target, &mut rng).unwrap();
                assert_eq!(fit.mismatch, 0, "target {target} (case {k})");
                assert_eq!(fit.ids.len(), target);
                assert_eq!(tok.encode(&fit.text).unwrap(), fit.ids);
            }
        }
    }

    #[test]
    fn fill_converges_when_random_padding_cannot() {
        let tok = Tokenizer::embedded_default();
        let exact = ExactLength::new(&tok).unwrap();
        let filler = exact.filler.clone().unwrap();
        // Whatever the ids, the fallback alone reaches the target.
        let ids = tok
            .encode("Tokenizers merge text across the seams of ids.")
            .unwrap();
        for target in [0, 1, 2, 5, 9, 30] {
            let fit = exact.fill(&ids, target, &filler).unwrap().unwrap();
            assert_eq!(fit.ids.len(), target);
            assert_eq!(tok.count(&fit.text).unwrap(), target);
        }
    }
}

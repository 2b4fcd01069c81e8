//! SGLang's `generated-shared-prefix`: `--gsp-num-groups` groups, each with its own random
//! system prompt shared by `--gsp-prompts-per-group` random questions, to measure prefix
//! caching (SGLang 0.5, `sample_generated_shared_prefix_requests`).
//!
//! Construction, as SGLang does it:
//! - the dataset is `num_groups × prompts_per_group` requests; `--num-prompts` is not used;
//! - lengths (system prompt per group, question and output per request) are uniform on
//!   `[max(floor(L·r), 1), L]` with `r = --gsp-range-ratio` (1.0, the default: exactly `L`);
//!   a length flag of 0 gives 0;
//! - `uniform`: request slot `s` belongs to group `s / prompts_per_group`; `zipf`: each slot
//!   keeps its question and output length but its group is drawn with probability
//!   `rank^-alpha / Σ k^-alpha`, group 0 the most popular;
//! - the requests are shuffled unless `--gsp-ordered` (or `--disable-shuffle`).
//!
//! The prompt is `system + "\n\n" + question`, sent as one text. With a chat API the system
//! prompt goes as a `system` message instead and the question as the user turn, which is what
//! a chat server's prefix cache sees as a shared prefix. `prompt_len` counts what is sent:
//! the joined text, or system + question for chat.
//!
//! `--gsp-num-turns T` (chat backends): each request is a conversation of T questions sent as
//! turns, the first with the system prompt, each after the one before it has ended with the
//! server's replies as history; every turn asks for the request's output length.
//!
//! Departures, on purpose: SGLang draws ids from the whole vocabulary (special tokens
//! included) and never checks the decoded text's length; here ids come from the non-special
//! ids and each text is fixed up to its exact token length (decode → re-encode → pad or
//! truncate, as [`crate::plan::random`] does). Random draws come from our own seeded streams,
//! not Python's, so a seed gives different (equally distributed) prompts.

use anyhow::{bail, ensure};
use rand::distributions::{Distribution, WeightedIndex};
use rand::Rng;

use super::prefix_repetition::{fit_after, random_ids, Fitted};
use super::{source, Ctx, DatasetArgs, Message, Sample};
use crate::backend::Api;
use crate::plan::build_parallel;
use crate::plan::random::allowed_ids;
use crate::plan::seeded::{self, Stream};
use crate::tokenizer::Tokenizer;

/// `len` ids drawn uniformly from `allowed`, fitted to exactly `len` tokens by vLLM's
/// decode → re-encode → adjust loop ([`fit_after`] with nothing in front).
pub fn random_text(
    tok: &Tokenizer,
    allowed: &[u32],
    len: usize,
    rng: &mut impl Rng,
) -> anyhow::Result<Fitted> {
    let ids = random_ids(rng, allowed, len);
    fit_after(tok, "", ids, len, rng, allowed)
}

/// SGLang's `compute_random_lens` for one value: uniform on `[max(floor(L·r), 1), L]`, and 0
/// when `L` is 0.
pub fn sglang_len(full: usize, range_ratio: f64, rng: &mut impl Rng) -> usize {
    if full == 0 {
        return 0;
    }
    let low = ((full as f64 * range_ratio).floor() as usize).clamp(1, full);
    rng.gen_range(low..=full)
}

pub fn load(args: &DatasetArgs, ctx: &Ctx, tok: &Tokenizer) -> anyhow::Result<Vec<Sample>> {
    let groups = args.gsp_num_groups;
    let per_group = args.gsp_prompts_per_group;
    let ratio = args.gsp_range_ratio;
    ensure!(groups >= 1, "--gsp-num-groups must be at least 1");
    ensure!(per_group >= 1, "--gsp-prompts-per-group must be at least 1");
    ensure!(
        (0.0..=1.0).contains(&ratio),
        "--gsp-range-ratio {ratio}: must be in [0, 1] (lengths are drawn from \
         [max(floor(L·r), 1), L])"
    );
    let total = groups.checked_mul(per_group).filter(|&n| n <= 1 << 26);
    let Some(total) = total else {
        bail!("--gsp-num-groups {groups} × --gsp-prompts-per-group {per_group}: too many requests")
    };
    for (flag, len) in [
        ("--gsp-system-prompt-len", args.gsp_system_prompt_len),
        ("--gsp-question-len", args.gsp_question_len),
    ] {
        ensure!(len <= 1 << 24, "{flag} {len}: too many tokens");
    }
    let groups_of_slots = group_assignment(args, ctx.seed, total)?;
    if ctx.num_prompts != total {
        eprintln!(
            "generated-shared-prefix: {groups} groups × {per_group} prompts = {total} requests \
             (SGLang's rule; --num-prompts {} is not used)",
            ctx.num_prompts
        );
    }

    let allowed = allowed_ids(tok)?;
    let systems = build_parallel(groups, |g| {
        let mut rng = seeded::rng(ctx.seed, Stream::Shared, g as u64);
        let len = sglang_len(args.gsp_system_prompt_len, ratio, &mut rng);
        random_text(tok, &allowed, len, &mut rng)
    })?;

    let output_len = args.output_len.unwrap_or(args.gsp_output_len);
    let chat = ctx.api == Api::Chat;
    let turns = args.gsp_num_turns;
    ensure!(
        turns == 1 || matches!(ctx.api, Api::Chat | Api::Responses),
        "--gsp-num-turns {turns}: the turns of a conversation carry the server's replies as \
         chat history; use a chat backend (openai-chat, vllm-chat, sglang-oai-chat, \
         lmdeploy-chat) or openai-responses"
    );
    let conversations = build_parallel(total, |slot| {
        let mut rng = seeded::rng(ctx.seed, Stream::Sample, slot as u64);
        let question_len = sglang_len(args.gsp_question_len, ratio, &mut rng);
        let output_len = sglang_len(output_len, ratio, &mut rng);
        let question = random_text(tok, &allowed, question_len, &mut rng)?;
        let system = &systems[groups_of_slots[slot]];
        let mismatch = system.mismatch + question.mismatch;
        let first = if chat {
            Sample {
                history: vec![Message {
                    role: "system".to_string(),
                    content: system.text.clone(),
                }],
                mismatch,
                ..Sample::text(
                    question.text,
                    system.ids.len() + question.ids.len(),
                    output_len,
                )
            }
        } else if turns > 1 {
            // The Responses API: the shared prefix leads the first user turn, as in SGLang.
            Sample {
                mismatch,
                ..Sample::text(
                    format!("{}\n\n{}", system.text, question.text),
                    system.ids.len() + question.ids.len(),
                    output_len,
                )
            }
        } else {
            let text = format!("{}\n\n{}", system.text, question.text);
            let prompt_len = tok.count(&text)?;
            Sample {
                mismatch,
                ..Sample::text(text, prompt_len, output_len)
            }
        };
        let mut conversation = vec![first];
        for turn in 1..turns {
            let question_len = sglang_len(args.gsp_question_len, ratio, &mut rng);
            let question = random_text(tok, &allowed, question_len, &mut rng)?;
            let before = &conversation[turn - 1];
            let mut history = before.history.clone();
            history.push(Message {
                role: "user".into(),
                content: before.prompt.as_text().unwrap_or_default().to_string(),
            });
            // Stands for the live reply until the run splices it in.
            history.push(Message {
                role: "assistant".into(),
                content: String::new(),
            });
            conversation.push(Sample {
                history,
                mismatch: question.mismatch,
                turn: turn as u32,
                ..Sample::text(
                    question.text,
                    before.prompt_len + before.output_len + question.ids.len(),
                    output_len,
                )
            });
        }
        Ok(conversation)
    })?;
    let conversations = source::ordered(
        conversations,
        ctx.seed,
        args.gsp_ordered || args.disable_shuffle,
    );
    Ok(conversations.into_iter().flatten().collect())
}

/// The group of each request slot.
fn group_assignment(args: &DatasetArgs, seed: u64, total: usize) -> anyhow::Result<Vec<usize>> {
    let per_group = args.gsp_prompts_per_group;
    match args.gsp_group_distribution.as_str() {
        "uniform" => Ok((0..total).map(|slot| slot / per_group).collect()),
        "zipf" => {
            let alpha = args.gsp_zipf_alpha;
            ensure!(
                alpha.is_finite() && alpha > 0.0,
                "--gsp-zipf-alpha {alpha}: must be a finite number > 0"
            );
            let weights = (1..=args.gsp_num_groups).map(|rank| (rank as f64).powf(-alpha));
            let dist = WeightedIndex::new(weights).map_err(|e| {
                anyhow::anyhow!("--gsp-zipf-alpha {alpha}: cannot weight the groups ({e})")
            })?;
            // Index 2: 0 and 1 of this stream order and oversample dataset rows.
            let mut rng = seeded::rng(seed, Stream::Shuffle, 2);
            Ok((0..total).map(|_| dist.sample(&mut rng)).collect())
        }
        other => bail!("--gsp-group-distribution {other}: choose uniform or zipf"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sglang_lengths_stay_in_range() {
        let mut rng = seeded::rng(1, Stream::Sample, 0);
        assert_eq!(sglang_len(0, 0.5, &mut rng), 0);
        for _ in 0..200 {
            assert_eq!(sglang_len(40, 1.0, &mut rng), 40);
            let l = sglang_len(40, 0.25, &mut rng);
            assert!((10..=40).contains(&l), "{l}");
            let l = sglang_len(3, 0.0, &mut rng);
            assert!((1..=3).contains(&l), "{l}");
        }
        // Both ends are reached.
        let seen: std::collections::BTreeSet<_> =
            (0..400).map(|_| sglang_len(4, 0.5, &mut rng)).collect();
        assert_eq!(seen.into_iter().collect::<Vec<_>>(), vec![2, 3, 4]);
    }

    #[test]
    fn random_text_has_the_exact_length() {
        let tok = Tokenizer::embedded_default();
        let allowed = allowed_ids(&tok).unwrap();
        assert!(allowed.iter().all(|id| !tok.special_ids().contains(id)));
        for (i, len) in [0usize, 1, 7, 100, 513].into_iter().enumerate() {
            let mut rng = seeded::rng(9, Stream::Sample, i as u64);
            let t = random_text(&tok, &allowed, len, &mut rng).unwrap();
            assert_eq!(t.mismatch, 0, "len {len}");
            assert_eq!(tok.count(&t.text).unwrap(), len);
            assert_eq!(tok.encode(&t.text).unwrap(), t.ids);
        }
    }

    #[test]
    fn zipf_assignment_favours_low_ranks() {
        let args = DatasetArgs {
            gsp_num_groups: 5,
            gsp_prompts_per_group: 200,
            gsp_group_distribution: "zipf".into(),
            gsp_zipf_alpha: 1.2,
            ..Default::default()
        };
        let groups = group_assignment(&args, 3, 1000).unwrap();
        let mut counts = [0usize; 5];
        for g in groups {
            counts[g] += 1;
        }
        // Expected shares 1 : 0.44 : 0.27 : 0.19 : 0.15 of 2.05.
        assert!(counts[0] > 400 && counts[0] < 580, "{counts:?}");
        assert!(counts[0] > counts[1] && counts[1] > counts[4], "{counts:?}");
        let bad = DatasetArgs {
            gsp_zipf_alpha: 0.0,
            ..args
        };
        let e = group_assignment(&bad, 3, 10).unwrap_err().to_string();
        assert!(e.contains("--gsp-zipf-alpha"), "{e}");
    }
}

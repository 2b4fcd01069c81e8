//! `sonnet` (vLLM's legacy `SonnetDataset`, dropped from the parser in 0.33): prompts made of
//! lines of a poem file the user gives with `--dataset-path` (vLLM shipped Shakespeare's
//! sonnets as `benchmarks/sonnet.txt`; any text of short lines works).
//!
//! vLLM's construction, which we follow:
//! - `L(text)` is `len(tokenizer(text).input_ids)`, special tokens included; `avg` is the mean
//!   `L` of the file's lines;
//! - the base prompt is `"Pick as many lines as you can from these poem lines:\n"`, and
//!   `base = L(base prompt in the chat template)`; `--sonnet-input-len` must exceed it;
//! - `num_input_lines = round((input_len - base) / avg)`,
//!   `num_prefix_lines = max(round((prefix_len - base) / avg), 0)` (Python's round: half to
//!   even); the first `num_prefix_lines` lines of the file are a prefix every prompt shares;
//! - each prompt is base + prefix lines + `num_input_lines - num_prefix_lines` lines drawn
//!   with replacement, redrawn while `L(templated prompt)` exceeds `--sonnet-input-len`;
//! - it asks for `--sonnet-output-len` tokens.
//!
//! vLLM always measures through the chat template and sends the templated text to non-chat
//! backends. Here the template is applied (and measured through) only with
//! `--apply-chat-template`; the prompt returned is the raw text, templated afterwards by
//! [`super::load`]. `prompt_len` is the raw prompt's count without special tokens, like every
//! other dataset's. Also ours: the draws are our own seeded ones, not Python's `random`; a
//! last line without a newline gets one; redrawing gives up after [`MAX_DRAWS`] tries (vLLM
//! loops forever) with an error saying what to change; a prefix longer than the input is an
//! error.

use anyhow::{bail, ensure};
use rand::Rng;

use super::chat_template::ChatTemplate;
use super::{source, Ctx, DatasetArgs, Sample};
use crate::plan::build_parallel;
use crate::plan::seeded::{self, Stream};
use crate::tokenizer::Tokenizer;

pub const BASE_PROMPT: &str = "Pick as many lines as you can from these poem lines:\n";

/// Draws of a prompt's lines before giving up on fitting it under `--sonnet-input-len`.
pub const MAX_DRAWS: usize = 1000;

const NAME: &str = "sonnet";

pub fn load(args: &DatasetArgs, ctx: &Ctx, tok: &Tokenizer) -> anyhow::Result<Vec<Sample>> {
    let path = args.path_for(NAME, "a text file of poem lines, one per line")?;
    let text = source::read_text(path, NAME)?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let mut lines: Vec<String> = text.split_inclusive('\n').map(String::from).collect();
    if lines.iter().all(|l| l.trim().is_empty()) {
        bail!(
            "--dataset-path {path}: the file has no lines; --dataset-name {NAME} needs a text \
             file of poem lines, one per line"
        );
    }
    if let Some(last) = lines.last_mut() {
        if !last.ends_with('\n') {
            last.push('\n');
        }
    }

    let input_len = args.sonnet_input_len;
    let prefix_len = args.sonnet_prefix_len;
    ensure!(
        prefix_len <= input_len,
        "--sonnet-prefix-len {prefix_len} must not exceed --sonnet-input-len {input_len}"
    );

    let template = if args.apply_chat_template && !args.skip_chat_template {
        Some(ChatTemplate::for_tokenizer(tok, args)?)
    } else {
        None
    };
    let special = tok.num_special_tokens_to_add();
    // vLLM's `len(tokenizer(text).input_ids)`, through the chat template when one is applied.
    let measure = |text: &str| -> anyhow::Result<usize> {
        let raw = match &template {
            Some(t) => {
                let mut s = Sample::text(text.to_string(), 0, 0);
                t.apply(&mut s, tok)?;
                s.prompt_len
            }
            None => tok.count(text)?,
        };
        Ok(raw + special)
    };

    let mut total = 0usize;
    for line in &lines {
        total += tok.count(line)? + special;
    }
    let avg = total as f64 / lines.len() as f64;
    let base = measure(BASE_PROMPT)?;
    if input_len <= base {
        bail!(
            "--sonnet-input-len {input_len} must be higher than the base prompt's length \
             ({base} tokens)"
        );
    }
    let num_input_lines = ((input_len - base) as f64 / avg).round_ties_even() as usize;
    let num_prefix_lines = ((prefix_len as f64 - base as f64) / avg)
        .round_ties_even()
        .max(0.0) as usize;
    let prefix: String = lines[..num_prefix_lines.min(lines.len())].concat();
    let extra = num_input_lines.saturating_sub(num_prefix_lines);

    build_parallel(ctx.num_prompts, |i| {
        let mut rng = seeded::rng(ctx.seed, Stream::Sample, i as u64);
        for _ in 0..MAX_DRAWS {
            let mut prompt = String::with_capacity(BASE_PROMPT.len() + prefix.len() + extra * 48);
            prompt.push_str(BASE_PROMPT);
            prompt.push_str(&prefix);
            for _ in 0..extra {
                prompt.push_str(&lines[rng.gen_range(0..lines.len())]);
            }
            if measure(&prompt)? <= input_len {
                let prompt_len = tok.count(&prompt)?;
                return Ok(Sample::text(prompt, prompt_len, args.sonnet_output_len));
            }
        }
        bail!(
            "--dataset-name {NAME}: no draw of {extra} lines (after {num_prefix_lines} prefix \
             lines) fits in --sonnet-input-len {input_len} tokens after {MAX_DRAWS} tries; the \
             lines of {path} are too long for it: raise --sonnet-input-len"
        )
    })
}

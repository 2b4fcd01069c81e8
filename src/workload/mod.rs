//! Workloads: the datasets of `vllm bench serve` and `sglang.bench_serving`, each turned into
//! a list of [`Sample`]s before the clock starts. A sample is what one request asks: its
//! prompt (text or token ids, with any chat history and images), how long the prompt is in
//! tokens, how many tokens to generate, and, for traces, when it was sent.
//!
//! Each dataset lives in its own module with one entry point,
//! `pub fn load(args: &DatasetArgs, ctx: &Ctx, tok: &Tokenizer) -> anyhow::Result<Vec<Sample>>`;
//! [`load`] picks it by `--dataset-name`. Loading reads and checks every input row first, so
//! a bad file is one error naming file, line and field, before anything is sent.

pub mod args;
pub mod burstgpt;
pub mod chat_template;
pub mod custom;
pub mod gsp;
pub mod hf;
pub mod image;
pub mod prefix_repetition;
pub mod random;
pub mod sharegpt;
pub mod sonnet;
pub mod source;
pub mod stats;
pub mod trace;

pub use args::{DatasetArgs, RandomFlavor};

use crate::backend::Api;
use crate::tokenizer::Tokenizer;

/// One message of a chat conversation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// "system", "user" or "assistant".
    pub role: String,
    pub content: String,
}

/// What the prompt is sent as.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Prompt {
    Text(String),
    /// Token ids sent as they are (Completions `prompt: [ids]`, SGLang `input_ids`).
    Ids(Vec<u32>),
}

impl Prompt {
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Prompt::Text(t) => Some(t),
            Prompt::Ids(_) => None,
        }
    }
}

/// One request of the workload, before it is put into a backend's wire format.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    /// The (last) user turn.
    pub prompt: Prompt,
    /// Tokens of the prompt as the tokenizer counts them (history and chat template
    /// included when they are sent).
    pub prompt_len: usize,
    /// Tokens to generate (`max_tokens`).
    pub output_len: usize,
    /// Earlier turns sent before `prompt` (chat backends): a system prompt, or a
    /// conversation's previous user and assistant messages.
    pub history: Vec<Message>,
    /// The prompt's ids when the dataset built it from ids (for `--tokenize-prompt`).
    pub token_ids: Option<Vec<u32>>,
    /// Images sent with the prompt, as `data:` URLs.
    pub images: Vec<String>,
    /// Trace time in seconds from the trace's first request, for datasets that carry one.
    pub timestamp_s: Option<f64>,
    /// Tokens by which the prompt missed its target length (positive: more).
    pub mismatch: i64,
    /// 0 for a request of its own or a conversation's first turn; `k` for the conversation's
    /// turn `k`, which is the sample right after turn `k - 1`. A later turn's `history` holds
    /// the earlier turns as user/assistant pairs (after any system prompt); the assistant
    /// messages stand for the replies the server gives at run time, which the engine splices
    /// in when the turn is sent, right after the turn before it has ended.
    pub turn: u32,
}

impl Sample {
    /// A text prompt with nothing else attached.
    pub fn text(prompt: String, prompt_len: usize, output_len: usize) -> Sample {
        Sample {
            prompt: Prompt::Text(prompt),
            prompt_len,
            output_len,
            history: Vec::new(),
            token_ids: None,
            images: Vec::new(),
            timestamp_s: None,
            mismatch: 0,
            turn: 0,
        }
    }
}

/// What every dataset may need besides its own flags.
#[derive(Clone, Debug)]
pub struct Ctx {
    /// `--num-prompts`: how many samples to return (some datasets return fewer, and say so).
    pub num_prompts: usize,
    pub seed: u64,
    /// The request format; chat datasets and images need [`Api::Chat`].
    pub api: Api,
}

/// Builds the samples of `--dataset-name`.
pub fn load(args: &DatasetArgs, ctx: &Ctx, tok: &Tokenizer) -> anyhow::Result<Vec<Sample>> {
    args.check()?;
    let name = args.dataset_name.as_str();
    let mut samples = match name {
        "random" => random::load(args, ctx, tok)?,
        "random-ids" => random::load_ids(args, ctx, tok)?,
        "sharegpt" => sharegpt::load(args, ctx, tok)?,
        "custom" => custom::load(args, ctx, tok)?,
        "sonnet" => sonnet::load(args, ctx, tok)?,
        "burstgpt" => burstgpt::load(args, ctx, tok)?,
        "prefix_repetition" | "prefix-repetition" => prefix_repetition::load(args, ctx, tok)?,
        "generated-shared-prefix" => gsp::load(args, ctx, tok)?,
        "mooncake" => trace::load_mooncake(args, ctx, tok)?,
        "timed_trace" | "timed-trace" => trace::load_timed(args, ctx, tok)?,
        "hf" => hf::load(args, ctx, tok)?,
        "image" | "random-mm" => image::load(args, ctx, tok)?,
        other => anyhow::bail!(
            "--dataset-name {other}: unknown dataset; choose from random, random-ids, sharegpt, \
             custom, sonnet, burstgpt, prefix_repetition, generated-shared-prefix, mooncake, \
             timed_trace, hf, image, random-mm"
        ),
    };
    anyhow::ensure!(
        !samples.is_empty(),
        "--dataset-name {name}: the dataset gave no requests (every row was filtered out); \
         check --dataset-path and the length flags"
    );
    let chat_api = matches!(ctx.api, Api::Chat | Api::Responses);
    // vLLM templates custom and hf prompts client-side unless told not to.
    let by_default = matches!(name, "custom" | "hf") && !args.apply_chat_template;
    let wanted = (args.apply_chat_template || by_default) && !args.skip_chat_template;
    if wanted && chat_api {
        if args.apply_chat_template {
            eprintln!(
                "Note: --apply-chat-template is left to the server: a chat backend sends \
                 messages and the server applies its own template"
            );
        }
    } else if wanted {
        match chat_template::ChatTemplate::for_tokenizer(tok, args) {
            Ok(template) => {
                for s in samples.iter_mut() {
                    template.apply(s, tok)?;
                }
            }
            Err(e) if by_default => eprintln!(
                "Note: vLLM applies the tokenizer's chat template to {name} prompts; this one \
                 has none ({e:#}), so prompts are sent as they are (--skip-chat-template \
                 silences this)"
            ),
            Err(e) => return Err(e),
        }
    }
    Ok(samples)
}

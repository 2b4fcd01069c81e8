//! The dataset flags of `vllm bench serve` and `sglang.bench_serving`, under their own names.
//! Where the two tools give one flag different meanings, [`RandomFlavor`] says whose.

use anyhow::bail;
use clap::{Args, ValueEnum};

/// Whose `random` dataset semantics apply.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum RandomFlavor {
    /// vLLM: lengths uniform on [floor(L(1-r)), ceil(L(1+r))], ids cycled through the
    /// vocabulary and adjusted until the prompt re-encodes to its length.
    Vllm,
    /// SGLang: lengths uniform on [max(floor(L·r), 1), L]; `random` takes its text from the
    /// ShareGPT file in --dataset-path, `random-ids` cycles through the vocabulary.
    Sglang,
}

#[derive(Args, Debug, Clone)]
pub struct DatasetArgs {
    /// random, random-ids, sharegpt, custom, sonnet, burstgpt, prefix_repetition,
    /// generated-shared-prefix, mooncake, timed_trace, hf, image, random-mm (docs/WORKLOADS.md).
    #[arg(long, default_value = "random")]
    pub dataset_name: String,
    /// The dataset file (ShareGPT JSON, JSONL, CSV, text) or, for hf, a local file or directory.
    #[arg(long)]
    pub dataset_path: Option<String>,
    /// General input length; sets --random-input-len.
    #[arg(long)]
    pub input_len: Option<usize>,
    /// General output length; sets the output length of the dataset in use.
    #[arg(long)]
    pub output_len: Option<usize>,
    /// Use each dataset row at most once (otherwise rows are reused up to --num-prompts).
    #[arg(long)]
    pub no_oversample: bool,
    /// Keep the file's order (otherwise rows are shuffled with --seed).
    #[arg(long)]
    pub disable_shuffle: bool,
    /// Wrap each prompt in the tokenizer's chat template before sending it (Completions-style
    /// backends; chat backends send messages and let the server apply it).
    #[arg(long)]
    pub apply_chat_template: bool,
    /// Never apply a chat template (wins over --apply-chat-template).
    #[arg(long)]
    pub skip_chat_template: bool,
    /// A Jinja chat template file, instead of the tokenizer's own.
    #[arg(long)]
    pub chat_template: Option<String>,
    /// Text appended to every prompt (SGLang).
    #[arg(long, default_value = "")]
    pub prompt_suffix: String,

    // --- random, random-ids ---------------------------------------------------------------
    /// Whose `random` semantics: vllm, or sglang (default when --dataset-path is given with
    /// random, or the dataset is random-ids).
    #[arg(long, value_enum)]
    pub random_flavor: Option<RandomFlavor>,
    #[arg(long, default_value_t = 1024)]
    pub random_input_len: usize,
    /// Default 128 (vLLM), 1024 with --random-flavor sglang (SGLang's default).
    #[arg(long)]
    pub random_output_len: Option<usize>,
    /// vLLM: lengths uniform on [floor(L(1-r)), ceil(L(1+r))], r in [0,1). SGLang:
    /// [max(floor(L·r),1), L], r in [0,1].
    #[arg(long, default_value_t = 0.0)]
    pub random_range_ratio: f64,
    /// Tokens of a random prefix shared by every prompt.
    #[arg(long, default_value_t = 0)]
    pub random_prefix_len: usize,

    // --- sharegpt --------------------------------------------------------------------------
    /// Generate this many tokens for every ShareGPT prompt (default: the reply's length).
    #[arg(long)]
    pub sharegpt_output_len: Option<usize>,
    /// Drop ShareGPT pairs whose prompt + output exceed this many tokens (default 2048).
    #[arg(long)]
    pub sharegpt_context_len: Option<usize>,
    /// Send whole ShareGPT conversations: each round is a turn, sent when the turn before it
    /// has ended, with the server's earlier replies as history (chat backends; --num-prompts
    /// counts conversations).
    #[arg(long, visible_alias = "include-multi-turn")]
    pub multi_turn: bool,
    /// With --multi-turn: at most this many turns per conversation.
    #[arg(long)]
    pub sharegpt_max_turns: Option<usize>,
    /// vLLM's prompt cap for ShareGPT (default 1024 tokens); with --multi-turn a turn's prompt
    /// counts its history.
    #[arg(long)]
    pub sharegpt_max_prompt_len: Option<usize>,
    /// vLLM's prompt + output cap for ShareGPT (default 2048 tokens).
    #[arg(long)]
    pub sharegpt_max_total_len: Option<usize>,

    // --- custom ----------------------------------------------------------------------------
    /// Tokens to generate per custom prompt; -1 takes each row's `output_tokens`.
    #[arg(long, default_value_t = 256, allow_negative_numbers = true)]
    pub custom_output_len: i64,

    // --- sonnet ----------------------------------------------------------------------------
    #[arg(long, default_value_t = 550)]
    pub sonnet_input_len: usize,
    #[arg(long, default_value_t = 150)]
    pub sonnet_output_len: usize,
    #[arg(long, default_value_t = 200)]
    pub sonnet_prefix_len: usize,

    // --- burstgpt --------------------------------------------------------------------------
    /// Send BurstGPT rows at their `Timestamp` (relative to the first), not at --request-rate.
    #[arg(long)]
    pub burstgpt_replay_timestamps: bool,

    // --- prefix_repetition -----------------------------------------------------------------
    #[arg(long, default_value_t = 256)]
    pub prefix_repetition_prefix_len: usize,
    #[arg(long, default_value_t = 256)]
    pub prefix_repetition_suffix_len: usize,
    #[arg(long, default_value_t = 10)]
    pub prefix_repetition_num_prefixes: usize,
    #[arg(long, default_value_t = 128)]
    pub prefix_repetition_output_len: usize,

    // --- generated-shared-prefix -----------------------------------------------------------
    #[arg(long, default_value_t = 64)]
    pub gsp_num_groups: usize,
    #[arg(long, default_value_t = 16)]
    pub gsp_prompts_per_group: usize,
    #[arg(long, default_value_t = 2048)]
    pub gsp_system_prompt_len: usize,
    #[arg(long, default_value_t = 128)]
    pub gsp_question_len: usize,
    #[arg(long, default_value_t = 256)]
    pub gsp_output_len: usize,
    /// Lengths uniform on [max(floor(L·r),1), L] (SGLang's semantics; 1.0: exact).
    #[arg(long, default_value_t = 1.0)]
    pub gsp_range_ratio: f64,
    /// Keep prompts grouped in order instead of shuffling them.
    #[arg(long)]
    pub gsp_ordered: bool,
    /// How prompts are spread over groups: uniform or zipf.
    #[arg(long, default_value = "uniform", value_parser = ["uniform", "zipf"])]
    pub gsp_group_distribution: String,
    #[arg(long, default_value_t = 1.5)]
    pub gsp_zipf_alpha: f64,
    /// Questions per request, sent as the turns of one conversation (SGLang; chat backends).
    #[arg(long, default_value_t = 1)]
    pub gsp_num_turns: usize,

    // --- traces: mooncake, timed_trace -----------------------------------------------------
    /// Send mooncake requests at their trace timestamps (SGLang).
    #[arg(long)]
    pub use_trace_timestamps: bool,
    /// Stretch mooncake trace time by this factor (2: half the rate).
    #[arg(long, default_value_t = 1.0)]
    pub mooncake_slowdown_factor: f64,
    /// Tokens per hash id of a timed trace (512 for Moonshot's traces).
    #[arg(long, default_value_t = 16)]
    pub timed_trace_chunk_hash_size: usize,
    /// Seconds per unit of a timed trace's timestamps.
    #[arg(long, default_value_t = 1.0)]
    pub timed_trace_sec_multiplier: f64,
    #[arg(long, default_value = "timestamp")]
    pub timed_trace_label_timestamp: String,
    #[arg(long, default_value = "input_length")]
    pub timed_trace_label_input_length: String,
    #[arg(long, default_value = "output_length")]
    pub timed_trace_label_output_length: String,
    #[arg(long, default_value = "hash_ids")]
    pub timed_trace_label_hash_ids: String,
    /// Tokens per hash id of a mooncake trace (its block size).
    #[arg(long, default_value_t = 512)]
    pub mooncake_block_size: usize,

    // --- hf ----------------------------------------------------------------------------------
    /// The hub dataset the local file came from (picks its columns), e.g.
    /// lmms-lab/LLaVA-OneVision-Data; default: --dataset-path.
    #[arg(long)]
    pub hf_name: Option<String>,
    #[arg(long)]
    pub hf_subset: Option<String>,
    #[arg(long)]
    pub hf_split: Option<String>,
    #[arg(long)]
    pub hf_output_len: Option<usize>,

    // --- image, random-mm --------------------------------------------------------------------
    /// Images per request (SGLang image dataset).
    #[arg(long, default_value_t = 1)]
    pub image_count: usize,
    /// 4k, 1080p, 720p, 360p, HxW, or random:HxW-HxW.
    #[arg(long, default_value = "1080p")]
    pub image_resolution: String,
    /// Draw each request's image count uniformly from 1..=--image-count.
    #[arg(long)]
    pub random_image_count: bool,
    #[arg(long, default_value = "jpeg", value_parser = ["jpeg", "png"])]
    pub image_format: String,
    #[arg(long, default_value = "random", value_parser = ["random", "blank"])]
    pub image_content: String,
    /// vLLM random-mm: images per request around this count.
    #[arg(long, default_value_t = 1)]
    pub random_mm_base_items_per_request: usize,
    #[arg(long, default_value_t = 0.0)]
    pub random_mm_num_mm_items_range_ratio: f64,
    /// JSON, e.g. {"image": 255}.
    #[arg(long)]
    pub random_mm_limit_mm_per_prompt: Option<String>,
    /// JSON {"(H, W, 1)": probability, ...}; frames > 1 (video) are not supported.
    #[arg(long)]
    pub random_mm_bucket_config: Option<String>,
}

impl DatasetArgs {
    /// Whose random semantics apply: the flag, else SGLang's when its flags say so.
    pub fn random_flavor(&self) -> RandomFlavor {
        self.random_flavor.unwrap_or(
            if matches!(self.dataset_name.as_str(), "random-ids" | "image")
                || (self.dataset_name == "random" && self.dataset_path.is_some())
            {
                RandomFlavor::Sglang
            } else {
                RandomFlavor::Vllm
            },
        )
    }

    /// `--random-output-len` (or `--output-len`), defaulting by flavor.
    pub fn random_output_len(&self) -> usize {
        self.output_len
            .or(self.random_output_len)
            .unwrap_or(match self.random_flavor() {
                RandomFlavor::Vllm => 128,
                RandomFlavor::Sglang => 1024,
            })
    }

    pub fn random_input_len(&self) -> usize {
        self.input_len.unwrap_or(self.random_input_len)
    }

    /// The file a dataset needs, or an error saying which flag to give.
    pub fn path_for(&self, dataset: &str, what: &str) -> anyhow::Result<&str> {
        match self.dataset_path.as_deref() {
            Some(p) if !p.is_empty() => Ok(p),
            _ => bail!("--dataset-name {dataset} needs --dataset-path: {what}"),
        }
    }

    /// Checks that hold for every dataset.
    pub fn check(&self) -> anyhow::Result<()> {
        let synthetic = matches!(
            self.dataset_name.as_str(),
            "random-ids"
                | "prefix_repetition"
                | "prefix-repetition"
                | "generated-shared-prefix"
                | "random-mm"
                | "image"
        ) || (self.dataset_name == "random"
            && self.random_flavor() == RandomFlavor::Vllm);
        if synthetic {
            if let Some(p) = &self.dataset_path {
                bail!(
                    "Cannot use '{}' dataset with --dataset-path. Please specify the \
                     appropriate --dataset-name (e.g., 'sharegpt', 'custom', 'hf') for your \
                     dataset file: {p}",
                    self.dataset_name
                );
            }
        }
        if self.multi_turn && self.dataset_name != "sharegpt" {
            bail!(
                "--multi-turn takes ShareGPT conversations (--dataset-name sharegpt); for \
                 generated-shared-prefix use --gsp-num-turns"
            );
        }
        if self.gsp_num_turns == 0 {
            bail!("--gsp-num-turns must be at least 1");
        }
        let r = self.random_range_ratio;
        match self.random_flavor() {
            RandomFlavor::Vllm if !(0.0..1.0).contains(&r) => bail!(
                "--random-range-ratio {r}: must be in [0, 1) (vLLM's semantics; SGLang's allow \
                 1.0: add --random-flavor sglang)"
            ),
            RandomFlavor::Sglang if !(0.0..=1.0).contains(&r) => {
                bail!("--random-range-ratio {r}: must be in [0, 1] (SGLang's semantics)")
            }
            _ => {}
        }
        if self.mooncake_slowdown_factor.is_nan() || self.mooncake_slowdown_factor <= 0.0 {
            bail!(
                "--mooncake-slowdown-factor {}: must be positive",
                self.mooncake_slowdown_factor
            );
        }
        if self.timed_trace_sec_multiplier.is_nan() || self.timed_trace_sec_multiplier <= 0.0 {
            bail!(
                "--timed-trace-sec-multiplier {}: must be positive",
                self.timed_trace_sec_multiplier
            );
        }
        Ok(())
    }
}

impl Default for DatasetArgs {
    /// Every flag at its default (what `servebench` with no dataset flags gets).
    fn default() -> Self {
        use clap::Parser;
        #[derive(Parser)]
        struct Wrap {
            #[command(flatten)]
            d: DatasetArgs,
        }
        Wrap::parse_from(["x"]).d
    }
}

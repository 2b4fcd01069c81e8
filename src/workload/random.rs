//! `random` (vLLM's, or SGLang's with `--random-flavor sglang`) and SGLang's `random-ids`.

use anyhow::bail;

use super::{Ctx, DatasetArgs, Prompt, RandomFlavor, Sample};
use crate::plan::build_parallel;
use crate::plan::random::{RandomDataset, RandomSpec};
use crate::tokenizer::Tokenizer;

/// vLLM's `random`: see [`crate::plan::random`].
pub fn load(args: &DatasetArgs, ctx: &Ctx, tok: &Tokenizer) -> anyhow::Result<Vec<Sample>> {
    match args.random_flavor() {
        RandomFlavor::Vllm => load_vllm(args, ctx, tok),
        RandomFlavor::Sglang => load_sglang(args, ctx, tok),
    }
}

fn load_vllm(args: &DatasetArgs, ctx: &Ctx, tok: &Tokenizer) -> anyhow::Result<Vec<Sample>> {
    let dataset = RandomDataset::new(
        &RandomSpec {
            input_len: args.random_input_len(),
            output_len: args.random_output_len(),
            range_ratio: args.random_range_ratio,
            prefix_len: args.random_prefix_len,
            seed: ctx.seed,
        },
        tok,
    )?;
    build_parallel(ctx.num_prompts, |i| {
        let p = dataset.prompt(i)?;
        Ok(Sample {
            prompt: Prompt::Text(p.prompt),
            prompt_len: p.prompt_len,
            output_len: p.output_len,
            token_ids: Some(p.token_ids),
            mismatch: p.mismatch,
            ..Sample::text(String::new(), 0, 0)
        })
    })
}

/// SGLang's `random`: text from the ShareGPT file, cut or tiled to the drawn length.
fn load_sglang(_args: &DatasetArgs, _ctx: &Ctx, _tok: &Tokenizer) -> anyhow::Result<Vec<Sample>> {
    bail!("--random-flavor sglang: not built yet")
}

/// SGLang's `random-ids`.
pub fn load_ids(_args: &DatasetArgs, _ctx: &Ctx, _tok: &Tokenizer) -> anyhow::Result<Vec<Sample>> {
    bail!("--dataset-name random-ids: not built yet")
}

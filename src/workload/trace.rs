//! Trace replay: `mooncake` (SGLang) and `timed_trace` (vLLM).

use super::{Ctx, DatasetArgs, Sample};
use crate::tokenizer::Tokenizer;

pub fn load_mooncake(
    _args: &DatasetArgs,
    _ctx: &Ctx,
    _tok: &Tokenizer,
) -> anyhow::Result<Vec<Sample>> {
    anyhow::bail!("--dataset-name mooncake: not built yet")
}

pub fn load_timed(
    _args: &DatasetArgs,
    _ctx: &Ctx,
    _tok: &Tokenizer,
) -> anyhow::Result<Vec<Sample>> {
    anyhow::bail!("--dataset-name timed_trace: not built yet")
}

//! The `prefix_repetition` dataset.

use super::{Ctx, DatasetArgs, Sample};
use crate::tokenizer::Tokenizer;

pub fn load(_args: &DatasetArgs, _ctx: &Ctx, _tok: &Tokenizer) -> anyhow::Result<Vec<Sample>> {
    anyhow::bail!("--dataset-name prefix_repetition: not built yet")
}

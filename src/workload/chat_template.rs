//! `--apply-chat-template`: the tokenizer's own Jinja chat template, rendered client-side.

use super::{DatasetArgs, Sample};
use crate::tokenizer::Tokenizer;

pub struct ChatTemplate {}

impl ChatTemplate {
    pub fn for_tokenizer(_tok: &Tokenizer, _args: &DatasetArgs) -> anyhow::Result<ChatTemplate> {
        anyhow::bail!("--apply-chat-template: not built yet")
    }

    /// Renders the sample's history and prompt into one text prompt and recounts its tokens.
    pub fn apply(&self, _sample: &mut Sample, _tok: &Tokenizer) -> anyhow::Result<()> {
        anyhow::bail!("--apply-chat-template: not built yet")
    }
}

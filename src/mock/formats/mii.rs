//! DeepSpeed-MII's legacy `/mii/benchmark`: never streamed; `{"text":["<whole text>"]}`.

use serde::Deserialize;

use super::fields::{self, max_tokens, prompt_field};
use super::{push_words, Api, GenRequest, Reply};
use crate::mock::completions::Prompt;

#[derive(Deserialize)]
struct RawMii<'a> {
    #[serde(borrow, default, deserialize_with = "prompt")]
    prompt: Option<Prompt<'a>>,
    #[serde(default, deserialize_with = "max_tokens")]
    max_tokens: Option<u64>,
}

prompt_field!(prompt, "`prompt` as a string or an array of strings");

pub fn parse(body: &[u8]) -> Result<GenRequest<'_>, String> {
    let raw: RawMii<'_> =
        serde_json::from_slice(body).map_err(|e| format!("invalid MII request: {e}"))?;
    let prompt = match raw.prompt {
        Some(p @ Prompt::Text(_)) => p,
        _ => return Err("the MII request needs `prompt` as a string".into()),
    };
    Ok(GenRequest {
        api: Api::Mii,
        prompt,
        max_tokens: fields::output_len("max_tokens", raw.max_tokens)?,
        stream: false,
        include_usage: false,
    })
}

pub fn push_body(r: &Reply, body: &mut Vec<u8>) {
    body.extend_from_slice(br#"{"text":[""#);
    push_words(body, 0..r.n);
    body.extend_from_slice(br#""]}"#);
}

//! Triton / TensorRT-LLM `/v2/models/ensemble/generate_stream` (and unstreamed
//! `/generate`): one `data:` event per token carrying that token's `text_output`, no
//! `[DONE]`. A `:` comment (an SSE keep-alive) goes out with the head, so clients are seen
//! to skip it.

use serde::Deserialize;

use super::fields::{self, max_tokens, str_field, stream};
use super::{push_words, sse, Api, GenRequest, Reply};
use crate::mock::completions::{word, Prompt};

#[derive(Deserialize)]
struct RawTriton<'a> {
    #[serde(borrow, default, deserialize_with = "text_input")]
    text_input: Option<std::borrow::Cow<'a, str>>,
    #[serde(default, deserialize_with = "max_tokens")]
    max_tokens: Option<u64>,
    // Type-checked only: the route decides whether the reply streams.
    #[serde(default, deserialize_with = "stream")]
    #[allow(dead_code)]
    stream: Option<bool>,
}

str_field!(text_input, "`text_input` as a string");

pub fn parse(body: &[u8], stream: bool) -> Result<GenRequest<'_>, String> {
    let raw: RawTriton<'_> =
        serde_json::from_slice(body).map_err(|e| format!("invalid Triton request: {e}"))?;
    let Some(text) = raw.text_input else {
        return Err("the Triton request needs `text_input` as a string".into());
    };
    Ok(GenRequest {
        api: Api::Triton,
        prompt: Prompt::Text(text),
        max_tokens: fields::output_len("max_tokens", raw.max_tokens)?,
        stream,
        include_usage: false,
    })
}

const KEEP_ALIVE: &[u8] = b": keep-alive\n\n";
const OPEN: &[u8] = br#"{"model_name":"ensemble","model_version":"1","sequence_end":false,"sequence_id":0,"text_output":""#;

pub fn push_head(out: &mut Vec<u8>, chunked: bool) {
    sse::event(out, chunked, |out| out.extend_from_slice(KEEP_ALIVE));
}

pub fn push_event(out: &mut Vec<u8>, chunked: bool, k: u32) {
    sse::data(out, chunked, &[OPEN, word(k).as_bytes(), b"\"}"]);
}

pub fn push_body(r: &Reply, body: &mut Vec<u8>) {
    body.extend_from_slice(OPEN);
    push_words(body, 0..r.n);
    body.extend_from_slice(b"\"}");
}

//! OpenAI Chat Completions (`/v1/chat/completions`).
//!
//! Streamed: a role-only chunk with the head, one `delta` chunk per token (the first
//! `--reasoning-tokens` as `reasoning_content`), the last with `finish_reason`, an optional
//! usage chunk with empty `choices`, then `[DONE]`.

use std::borrow::Cow;

use serde::Deserialize;

use super::fields::{self, ignore_eos, max_completion_tokens, max_tokens, stream, StreamOptions};
use super::{push_words, sse, Api, GenRequest, Reply};
use crate::mock::completions::{push_usage, Prompt};

#[derive(Deserialize)]
struct RawChat<'a> {
    #[serde(borrow, deserialize_with = "fields::messages")]
    messages: fields::Conversation<'a>,
    #[serde(default, deserialize_with = "max_completion_tokens")]
    max_completion_tokens: Option<u64>,
    #[serde(default, deserialize_with = "max_tokens")]
    max_tokens: Option<u64>,
    #[serde(default, deserialize_with = "stream")]
    stream: Option<bool>,
    #[serde(default)]
    stream_options: Option<StreamOptions>,
    // Type-checked only: the mock always generates exactly the requested length.
    #[serde(default, deserialize_with = "ignore_eos")]
    #[allow(dead_code)]
    ignore_eos: Option<bool>,
    #[serde(borrow, default)]
    #[allow(dead_code)]
    model: Option<Cow<'a, str>>,
}

pub fn parse(body: &[u8]) -> Result<GenRequest<'_>, String> {
    let raw: RawChat<'_> =
        serde_json::from_slice(body).map_err(|e| format!("invalid chat request: {e}"))?;
    // The newer field wins, as in vLLM.
    let max_tokens = match raw.max_completion_tokens {
        Some(n) => fields::output_len("max_completion_tokens", Some(n))?,
        None => fields::output_len("max_tokens", raw.max_tokens)?,
    };
    Ok(GenRequest {
        api: Api::Chat,
        prompt: Prompt::Text(raw.messages.0),
        max_tokens,
        stream: raw.stream.unwrap_or(false),
        include_usage: raw
            .stream_options
            .and_then(|o| o.include_usage)
            .unwrap_or(false),
    })
}

/// `{"id":...,"object":...,"created":...,"model":...,"choices":[`
pub fn push_prefix(out: &mut Vec<u8>, id: u64, created: u64, model: &str, stream: bool) {
    let object = if stream {
        "chat.completion.chunk"
    } else {
        "chat.completion"
    };
    super::push_fmt(
        out,
        format_args!(
            r#"{{"id":"chatcmpl-{id}","object":"{object}","created":{created},"model":{model},"choices":["#
        ),
    );
}

const ROLE: &[u8] =
    br#"{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]}"#;
const CONTENT_OPEN: &[u8] = br#"{"index":0,"delta":{"content":""#;
const REASONING_OPEN: &[u8] = br#"{"index":0,"delta":{"reasoning_content":""#;
const TOKEN_CLOSE: &[u8] = br#""},"logprobs":null,"finish_reason":null}]}"#;
const TOKEN_CLOSE_LAST: &[u8] = br#""},"logprobs":null,"finish_reason":"length"}]}"#;
const USAGE_OPEN: &[u8] = br#"],"usage":"#;

pub fn push_head(r: &Reply, out: &mut Vec<u8>, chunked: bool) {
    sse::data(out, chunked, &[&r.prefix, ROLE]);
}

pub fn push_event(r: &Reply, out: &mut Vec<u8>, chunked: bool, k: u32) {
    let open = if k < r.opts.reasoning_tokens {
        REASONING_OPEN
    } else {
        CONTENT_OPEN
    };
    let close = if k + 1 == r.n {
        TOKEN_CLOSE_LAST
    } else {
        TOKEN_CLOSE
    };
    let word = crate::mock::completions::word(k).as_bytes();
    sse::data(out, chunked, &[&r.prefix, open, word, close]);
}

pub fn push_tail(r: &Reply, out: &mut Vec<u8>, chunked: bool) {
    if r.include_usage {
        sse::event(out, chunked, |out| {
            out.extend_from_slice(b"data: ");
            out.extend_from_slice(&r.prefix);
            out.extend_from_slice(USAGE_OPEN);
            push_usage(out, r.prompt_tokens, r.n);
            out.extend_from_slice(b"}\n\n");
        });
    }
    sse::done(out, chunked);
}

pub fn push_body(r: &Reply, body: &mut Vec<u8>) {
    let reasoning = r.opts.reasoning_tokens.min(r.n);
    body.extend_from_slice(&r.prefix);
    body.extend_from_slice(br#"{"index":0,"message":{"role":"assistant","content":""#);
    push_words(body, reasoning..r.n);
    body.extend_from_slice(br#"","reasoning_content":"#);
    if reasoning > 0 {
        body.push(b'"');
        push_words(body, 0..reasoning);
        body.push(b'"');
    } else {
        body.extend_from_slice(b"null");
    }
    body.extend_from_slice(br#"},"logprobs":null,"finish_reason":"length"}],"usage":"#);
    push_usage(body, r.prompt_tokens, r.n);
    body.push(b'}');
}

//! OpenAI Responses (`/v1/responses`).
//!
//! Streamed as typed SSE (`event: <type>` before each `data:`), numbered by
//! `sequence_number` from 0: with the head `response.created`, `response.in_progress`,
//! `response.output_item.added` and `response.content_part.added`; one
//! `response.output_text.delta` per token; then `response.output_text.done`,
//! `response.content_part.done`, `response.output_item.done` and `response.completed` (which
//! carries `usage`). No `[DONE]`.

use std::borrow::Cow;

use serde::Deserialize;

use super::fields::{self, max_output_tokens, stream};
use super::{push_fmt, push_words, sse, Api, GenRequest, Reply};
use crate::mock::completions::{word, Prompt};

#[derive(Deserialize)]
struct RawResponses<'a> {
    #[serde(borrow, deserialize_with = "fields::input")]
    input: fields::Conversation<'a>,
    #[serde(default, deserialize_with = "max_output_tokens")]
    max_output_tokens: Option<u64>,
    #[serde(default, deserialize_with = "stream")]
    stream: Option<bool>,
    #[serde(borrow, default)]
    #[allow(dead_code)]
    model: Option<Cow<'a, str>>,
}

pub fn parse(body: &[u8]) -> Result<GenRequest<'_>, String> {
    let raw: RawResponses<'_> =
        serde_json::from_slice(body).map_err(|e| format!("invalid responses request: {e}"))?;
    Ok(GenRequest {
        api: Api::Responses,
        prompt: Prompt::Text(raw.input.0),
        max_tokens: fields::output_len("max_output_tokens", raw.max_output_tokens)?,
        stream: raw.stream.unwrap_or(false),
        include_usage: false,
    })
}

/// The response object up to its `status`: `{"id":...,"object":"response",...,"model":...,`
pub fn push_prefix(out: &mut Vec<u8>, id: u64, created: u64, model: &str) {
    push_fmt(
        out,
        format_args!(
            r#"{{"id":"resp_{id}","object":"response","created_at":{created},"model":{model},"#
        ),
    );
}

/// Events before the first delta; deltas are numbered from here.
const HEAD_EVENTS: u32 = 4;

const IN_PROGRESS: &[u8] = br#""status":"in_progress","output":[],"usage":null}"#;

/// One typed event: `event: T`, then `data: {"type":"T","sequence_number":S,` + `rest` + `}`.
fn push_typed(
    out: &mut Vec<u8>,
    chunked: bool,
    kind: &str,
    seq: u32,
    rest: impl FnOnce(&mut Vec<u8>),
) {
    sse::event(out, chunked, |out| {
        push_fmt(
            out,
            format_args!("event: {kind}\ndata: {{\"type\":\"{kind}\",\"sequence_number\":{seq},"),
        );
        rest(out);
        out.extend_from_slice(b"}\n\n");
    });
}

pub fn push_head(r: &Reply, out: &mut Vec<u8>, chunked: bool) {
    for (seq, kind) in ["response.created", "response.in_progress"]
        .iter()
        .enumerate()
    {
        push_typed(out, chunked, kind, seq as u32, |out| {
            out.extend_from_slice(br#""response":"#);
            out.extend_from_slice(&r.prefix);
            out.extend_from_slice(IN_PROGRESS);
        });
    }
    push_typed(out, chunked, "response.output_item.added", 2, |out| {
        push_fmt(
            out,
            format_args!(
                r#""output_index":0,"item":{{"id":"msg_{}","type":"message","role":"assistant","status":"in_progress","content":[]}}"#,
                r.id
            ),
        );
    });
    push_typed(out, chunked, "response.content_part.added", 3, |out| {
        push_part_address(r, out);
        out.extend_from_slice(br#","part":{"type":"output_text","text":"","annotations":[]}"#);
    });
}

/// `"item_id":"msg_N","output_index":0,"content_index":0`
fn push_part_address(r: &Reply, out: &mut Vec<u8>) {
    push_fmt(
        out,
        format_args!(
            r#""item_id":"msg_{}","output_index":0,"content_index":0"#,
            r.id
        ),
    );
}

pub fn push_event(r: &Reply, out: &mut Vec<u8>, chunked: bool, k: u32) {
    push_typed(
        out,
        chunked,
        "response.output_text.delta",
        HEAD_EVENTS + k,
        |out| {
            push_part_address(r, out);
            out.extend_from_slice(br#","delta":""#);
            out.extend_from_slice(word(k).as_bytes());
            out.extend_from_slice(br#"","logprobs":[]"#);
        },
    );
}

pub fn push_tail(r: &Reply, out: &mut Vec<u8>, chunked: bool) {
    let seq = HEAD_EVENTS + r.n;
    push_typed(out, chunked, "response.output_text.done", seq, |out| {
        push_part_address(r, out);
        out.extend_from_slice(br#","text":""#);
        push_words(out, 0..r.n);
        out.extend_from_slice(br#"","logprobs":[]"#);
    });
    push_typed(out, chunked, "response.content_part.done", seq + 1, |out| {
        push_part_address(r, out);
        out.extend_from_slice(br#","part":"#);
        push_output_text(r, out);
    });
    push_typed(out, chunked, "response.output_item.done", seq + 2, |out| {
        out.extend_from_slice(br#""output_index":0,"item":"#);
        push_message(r, out);
    });
    push_typed(out, chunked, "response.completed", seq + 3, |out| {
        out.extend_from_slice(br#""response":"#);
        push_completed(r, out);
    });
}

pub fn push_body(r: &Reply, body: &mut Vec<u8>) {
    push_completed(r, body);
}

/// `{"type":"output_text","text":"...","annotations":[]}`
fn push_output_text(r: &Reply, out: &mut Vec<u8>) {
    out.extend_from_slice(br#"{"type":"output_text","text":""#);
    push_words(out, 0..r.n);
    out.extend_from_slice(br#"","annotations":[]}"#);
}

/// The finished output message item.
fn push_message(r: &Reply, out: &mut Vec<u8>) {
    push_fmt(
        out,
        format_args!(
            r#"{{"id":"msg_{}","type":"message","role":"assistant","status":"completed","content":["#,
            r.id
        ),
    );
    push_output_text(r, out);
    out.extend_from_slice(b"]}");
}

/// The completed response object, with usage.
fn push_completed(r: &Reply, out: &mut Vec<u8>) {
    out.extend_from_slice(&r.prefix);
    out.extend_from_slice(br#""status":"completed","output":["#);
    push_message(r, out);
    out.extend_from_slice(br#"],"usage":"#);
    let n = r.n;
    match r.prompt_tokens {
        Some(p) => push_fmt(
            out,
            format_args!(
                r#"{{"input_tokens":{p},"output_tokens":{n},"total_tokens":{}}}"#,
                p + n as usize
            ),
        ),
        None => push_fmt(out, format_args!(r#"{{"output_tokens":{n}}}"#)),
    }
    out.push(b'}');
}

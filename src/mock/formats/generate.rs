//! `/generate`, which two backends share, told apart by the body: SGLang's native API
//! (`text` or `input_ids`, `sampling_params`) and TGI's (`inputs`, `parameters`); and TGI's
//! `/generate_stream`.
//!
//! SGLang streams one `data:` event per chunk of `--sglang-tokens-per-chunk` tokens (every
//! K-th token and the last, as its `--stream-interval` does), each carrying the *cumulative*
//! text and output ids so far, then `[DONE]`. TGI streams one `data:` event per token (no
//! space after the colon, as its server writes them), the last with the whole text and
//! details; no `[DONE]`.

use std::borrow::Cow;

use serde::Deserialize;

use super::fields::{self, ignore_eos, max_new_tokens, prompt_field, str_field, stream};
use super::{push_fmt, push_words, sse, token_id, Api, GenRequest, Reply};
use crate::mock::completions::{word, Prompt};

#[derive(Deserialize)]
struct RawGenerate<'a> {
    #[serde(borrow, default, deserialize_with = "text")]
    text: Option<Prompt<'a>>,
    #[serde(borrow, default, deserialize_with = "input_ids")]
    input_ids: Option<Prompt<'a>>,
    #[serde(borrow, default, deserialize_with = "inputs")]
    inputs: Option<Cow<'a, str>>,
    #[serde(default)]
    sampling_params: Option<Params>,
    #[serde(default)]
    parameters: Option<Params>,
    #[serde(default, deserialize_with = "stream")]
    stream: Option<bool>,
}

/// SGLang's `sampling_params` and TGI's `parameters` agree on the one field the mock honours.
#[derive(Deserialize)]
struct Params {
    #[serde(default, deserialize_with = "max_new_tokens")]
    max_new_tokens: Option<u64>,
    // Type-checked only: the mock always generates exactly the requested length.
    #[serde(default, deserialize_with = "ignore_eos")]
    #[allow(dead_code)]
    ignore_eos: Option<bool>,
}

prompt_field!(text, "`text` as a string or an array of strings");
prompt_field!(
    input_ids,
    "`input_ids` as an array of token ids or of token-id arrays"
);
str_field!(inputs, "`inputs` as a string");

/// `tgi_stream`: the request came to `/generate_stream` (TGI only, always streamed).
pub fn parse(body: &[u8], tgi_stream: bool) -> Result<GenRequest<'_>, String> {
    let raw: RawGenerate<'_> =
        serde_json::from_slice(body).map_err(|e| format!("invalid generate request: {e}"))?;
    if let Some(inputs) = raw.inputs {
        let max = raw.parameters.and_then(|p| p.max_new_tokens);
        return Ok(GenRequest {
            api: Api::Tgi,
            prompt: Prompt::Text(inputs),
            max_tokens: fields::output_len("parameters.max_new_tokens", max)?,
            stream: tgi_stream,
            include_usage: false,
        });
    }
    if tgi_stream {
        return Err("/generate_stream (TGI) needs `inputs` as a string".into());
    }
    let prompt = match (raw.text, raw.input_ids) {
        (Some(p @ Prompt::Text(_)), None) => p,
        (Some(Prompt::TokenIds(_)), None) => {
            return Err("`text` must be a string or an array of strings".into())
        }
        (None, Some(p @ Prompt::TokenIds(_))) => p,
        (None, Some(Prompt::Text(_))) => {
            return Err("`input_ids` must be an array of token ids".into())
        }
        (Some(_), Some(_)) => return Err("give either `text` or `input_ids`, not both".into()),
        (None, None) => {
            return Err("/generate needs `text` or `input_ids` (SGLang) or `inputs` (TGI)".into())
        }
    };
    let max = raw.sampling_params.and_then(|p| p.max_new_tokens);
    Ok(GenRequest {
        api: Api::Sglang,
        prompt,
        max_tokens: fields::output_len("sampling_params.max_new_tokens", max)?,
        stream: raw.stream.unwrap_or(false),
        include_usage: false,
    })
}

/// The SGLang chunk ending with token `end` (exclusive): everything generated so far.
pub fn push_sglang_event(r: &Reply, out: &mut Vec<u8>, chunked: bool, end: u32) {
    sse::event(out, chunked, |out| {
        out.extend_from_slice(b"data: ");
        push_sglang_json(r, out, end);
        out.extend_from_slice(b"\n\n");
    });
}

/// SGLang's output object after `end` tokens (the unstreamed body when `end` is the last).
pub fn push_sglang_json(r: &Reply, out: &mut Vec<u8>, end: u32) {
    out.extend_from_slice(br#"{"text":""#);
    push_words(out, 0..end);
    out.extend_from_slice(br#"","output_ids":["#);
    for k in 0..end {
        if k > 0 {
            out.push(b',');
        }
        push_fmt(out, format_args!("{}", token_id(k)));
    }
    // SGLang's request ids are 32 hex digits.
    push_fmt(
        out,
        format_args!(r#"],"meta_info":{{"id":"{:032x}","finish_reason":"#, r.id),
    );
    if end == r.n {
        push_fmt(out, format_args!(r#"{{"type":"length","length":{}}}"#, r.n));
    } else {
        out.extend_from_slice(b"null");
    }
    if let Some(p) = r.prompt_tokens {
        push_fmt(out, format_args!(r#","prompt_tokens":{p}"#));
    }
    push_fmt(
        out,
        format_args!(r#","completion_tokens":{end},"cached_tokens":0}}}}"#),
    );
}

/// TGI's event for token `k`; `index` counts from 1, as TGI's does.
pub fn push_tgi_event(r: &Reply, out: &mut Vec<u8>, chunked: bool, k: u32) {
    sse::event(out, chunked, |out| {
        push_fmt(
            out,
            format_args!(
                r#"data:{{"index":{},"token":{{"id":{},"text":""#,
                k + 1,
                token_id(k)
            ),
        );
        out.extend_from_slice(word(k).as_bytes());
        out.extend_from_slice(br#"","logprob":0.0,"special":false},"generated_text":"#);
        if k + 1 == r.n {
            out.push(b'"');
            push_words(out, 0..r.n);
            out.extend_from_slice(br#"","details":"#);
            push_tgi_details(r, out);
        } else {
            out.extend_from_slice(br#"null,"details":null"#);
        }
        out.extend_from_slice(b"}\n\n");
    });
}

/// TGI's unstreamed `/generate` body.
pub fn push_tgi_body(r: &Reply, body: &mut Vec<u8>) {
    body.extend_from_slice(br#"{"generated_text":""#);
    push_words(body, 0..r.n);
    body.extend_from_slice(br#"","details":"#);
    push_tgi_details(r, body);
    body.push(b'}');
}

fn push_tgi_details(r: &Reply, out: &mut Vec<u8>) {
    push_fmt(
        out,
        format_args!(
            r#"{{"finish_reason":"length","generated_tokens":{},"seed":null"#,
            r.n
        ),
    );
    if let Some(p) = r.prompt_tokens {
        push_fmt(out, format_args!(r#","input_length":{p}"#));
    }
    out.push(b'}');
}

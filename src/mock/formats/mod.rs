//! The wire formats of the backends the mock imitates: how each parses its request and
//! which bytes it sends, behind one interface the connection's stream loop uses.
//!
//! A reply is a head (SSE bytes written with the HTTP head: a role chunk, lifecycle events,
//! a comment), one event per token or group of tokens, and a tail (usage, `[DONE]`,
//! completion events); or, unstreamed, one JSON body. Whatever depends only on the request
//! (ids, model name) is formatted once per request into [`Reply`]'s prefix; per token, the
//! formats only copy constants and the token's word into the caller's buffer.

pub mod fields;
pub mod sse;

mod chat;
mod completions;
mod generate;
mod mii;
mod responses;
mod triton;

use std::io::Write;

use super::completions::{self as cmpl, Prompt, Templates};

/// A generation endpoint, as routed from the request line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// `/v1/completions`, and Truss's `/v1/models/model:predict` (same shape).
    Completions,
    Chat,
    Responses,
    /// `/generate`: SGLang's native API, or TGI's unstreamed one when the body has `inputs`.
    Generate,
    /// TGI `/generate_stream`.
    TgiStream,
    /// Triton `/v2/models/ensemble/generate_stream` (`stream` = true) or `/generate`.
    Triton {
        stream: bool,
    },
    /// DeepSpeed-MII `/mii/benchmark`.
    Mii,
}

/// The wire format of one reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Api {
    Completions,
    Chat,
    Responses,
    Sglang,
    Tgi,
    Triton,
    Mii,
}

/// A validated generation request, whatever its backend.
#[derive(Debug, PartialEq, Eq)]
pub struct GenRequest<'a> {
    pub api: Api,
    pub prompt: Prompt<'a>,
    pub max_tokens: u32,
    pub stream: bool,
    /// OpenAI `stream_options.include_usage`.
    pub include_usage: bool,
}

/// Parses a request body for `endpoint`; the error is the message of a 400 reply.
pub fn parse(endpoint: Endpoint, body: &[u8]) -> Result<GenRequest<'_>, String> {
    match endpoint {
        Endpoint::Completions => {
            let c = cmpl::parse(body)?;
            Ok(GenRequest {
                api: Api::Completions,
                prompt: c.prompt,
                max_tokens: c.max_tokens,
                stream: c.stream,
                include_usage: c.include_usage,
            })
        }
        Endpoint::Chat => chat::parse(body),
        Endpoint::Responses => responses::parse(body),
        Endpoint::Generate => generate::parse(body, false),
        Endpoint::TgiStream => generate::parse(body, true),
        Endpoint::Triton { stream } => triton::parse(body, stream),
        Endpoint::Mii => mii::parse(body),
    }
}

/// Server-wide settings that shape replies.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// Chat only: this many leading tokens go to `reasoning_content`.
    pub reasoning_tokens: u32,
    /// SGLang only: tokens per streamed chunk.
    pub sglang_tokens_per_chunk: u32,
    /// Draft size of the speculative-decoding counters on /metrics (0: none).
    pub spec_decode_tokens: u32,
}

/// One reply being sent: what its bytes depend on.
pub struct Reply {
    pub api: Api,
    /// Tokens to generate.
    pub n: u32,
    pub include_usage: bool,
    /// Prompt tokens when known (token-id prompts, or counting on); set by the caller before
    /// the events that carry it (see [`Reply::counts_prompt_early`]) or before the tail.
    pub prompt_tokens: Option<usize>,
    opts: Options,
    id: u64,
    /// Per-request JSON: the part every event or body of this reply starts with.
    prefix: Vec<u8>,
}

impl Reply {
    /// Formats the request's constant parts into `buf` (reused from the previous reply).
    pub fn new(
        req: &GenRequest<'_>,
        templates: &Templates,
        opts: Options,
        id: u64,
        created: u64,
        mut buf: Vec<u8>,
    ) -> Reply {
        buf.clear();
        let model = templates.model_json();
        match req.api {
            Api::Completions => templates.push_response_head(&mut buf, id, created),
            Api::Chat => chat::push_prefix(&mut buf, id, created, model, req.stream),
            Api::Responses => responses::push_prefix(&mut buf, id, created, model),
            Api::Sglang | Api::Tgi | Api::Triton | Api::Mii => {}
        }
        Reply {
            api: req.api,
            n: req.max_tokens,
            include_usage: req.include_usage,
            prompt_tokens: None,
            opts,
            id,
            prefix: buf,
        }
    }

    /// Gives the prefix buffer back for the next reply.
    pub fn into_buffer(self) -> Vec<u8> {
        self.prefix
    }

    /// Whether token events carry the prompt's token count (SGLang's `meta_info`, TGI's last
    /// `details`), so that it must be known before the first event rather than at the tail.
    pub fn counts_prompt_early(&self) -> bool {
        matches!(self.api, Api::Sglang | Api::Tgi)
    }

    /// Whether events may carry several tokens (the truth log then says how many each did).
    pub fn groups_tokens(&self) -> bool {
        self.api == Api::Sglang && self.opts.sglang_tokens_per_chunk > 1
    }

    /// The end (exclusive) of the token range of the event that starts at token `k`.
    pub fn event_end(&self, k: u32) -> u32 {
        if self.groups_tokens() {
            let per = self.opts.sglang_tokens_per_chunk;
            ((k / per + 1) * per).min(self.n)
        } else {
            k + 1
        }
    }

    /// SSE bytes sent together with the response head (before any token).
    pub fn push_head(&self, out: &mut Vec<u8>, chunked: bool) {
        match self.api {
            Api::Chat => chat::push_head(self, out, chunked),
            Api::Responses => responses::push_head(self, out, chunked),
            Api::Triton => triton::push_head(out, chunked),
            Api::Completions | Api::Sglang | Api::Tgi | Api::Mii => {}
        }
    }

    /// The event carrying tokens `k..end` (`end` from [`Reply::event_end`]).
    pub fn push_event(&self, out: &mut Vec<u8>, chunked: bool, k: u32, end: u32) {
        match self.api {
            Api::Completions => completions::push_event(self, out, chunked, k),
            Api::Chat => chat::push_event(self, out, chunked, k),
            Api::Responses => responses::push_event(self, out, chunked, k),
            Api::Sglang => generate::push_sglang_event(self, out, chunked, end),
            Api::Tgi => generate::push_tgi_event(self, out, chunked, k),
            Api::Triton => triton::push_event(out, chunked, k),
            // Never streamed: parse refuses nothing, but the connection only streams what
            // asked to be streamed, and MII requests never do.
            Api::Mii => {}
        }
    }

    /// Everything after the last token event, including the end of the chunked body.
    pub fn push_tail(&self, out: &mut Vec<u8>, chunked: bool) {
        match self.api {
            Api::Completions => completions::push_tail(self, out, chunked),
            Api::Chat => chat::push_tail(self, out, chunked),
            Api::Responses => responses::push_tail(self, out, chunked),
            Api::Sglang => sse::done(out, chunked),
            Api::Tgi | Api::Triton | Api::Mii => {}
        }
        sse::finish(out, chunked);
    }

    /// The whole unstreamed JSON body.
    pub fn push_body(&self, body: &mut Vec<u8>) {
        match self.api {
            Api::Completions => completions::push_body(self, body),
            Api::Chat => chat::push_body(self, body),
            Api::Responses => responses::push_body(self, body),
            Api::Sglang => generate::push_sglang_json(self, body, self.n),
            Api::Tgi => generate::push_tgi_body(self, body),
            Api::Triton => triton::push_body(self, body),
            Api::Mii => mii::push_body(self, body),
        }
    }
}

/// Appends the generated words `range`, ready to sit inside a JSON string (none needs
/// escaping).
fn push_words(out: &mut Vec<u8>, range: std::ops::Range<u32>) {
    for k in range {
        out.extend_from_slice(cmpl::word(k).as_bytes());
    }
}

/// The token id reported for generated token `k`: a stand-in, not a real vocabulary id, but
/// one per distinct word.
fn token_id(k: u32) -> u32 {
    1000 + k % cmpl::WORDS.len() as u32
}

/// Appends formatted text (no allocation: `Vec<u8>` is its own writer).
fn push_fmt(out: &mut Vec<u8>, args: std::fmt::Arguments<'_>) {
    let _ = out.write_fmt(args);
}

#[cfg(test)]
mod tests;

//! OpenAI Completions (`/v1/completions`, Truss): the bytes, from the constants in
//! `mock::completions`.

use super::{push_words, sse, Reply};
use crate::mock::completions::{self as cmpl, push_usage};

pub fn push_event(r: &Reply, out: &mut Vec<u8>, chunked: bool, k: u32) {
    let close = if k + 1 == r.n {
        cmpl::TOKEN_CLOSE_LAST
    } else {
        cmpl::TOKEN_CLOSE
    };
    let word = cmpl::word(k).as_bytes();
    sse::data(out, chunked, &[&r.prefix, cmpl::TOKEN_OPEN, word, close]);
}

pub fn push_tail(r: &Reply, out: &mut Vec<u8>, chunked: bool) {
    if r.include_usage {
        sse::event(out, chunked, |out| {
            out.extend_from_slice(b"data: ");
            out.extend_from_slice(&r.prefix);
            out.extend_from_slice(cmpl::USAGE_OPEN);
            push_usage(out, r.prompt_tokens, r.n);
            out.extend_from_slice(b"}\n\n");
        });
    }
    sse::done(out, chunked);
}

pub fn push_body(r: &Reply, body: &mut Vec<u8>) {
    body.extend_from_slice(&r.prefix);
    body.extend_from_slice(cmpl::TOKEN_OPEN);
    push_words(body, 0..r.n);
    body.extend_from_slice(cmpl::BODY_CLOSE);
    push_usage(body, r.prompt_tokens, r.n);
    body.push(b'}');
}

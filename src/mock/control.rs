//! The calls clients make around a run rather than during it: cache resets, profiler
//! start/stop (acknowledged and ignored) and `/tokenize` (answered with the mock's tokenizer).

use std::borrow::Cow;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Deserialize;

use super::completions::MAX_MODEL_LEN;
use super::formats::fields::str_field;

/// The reply to `/reset_prefix_cache`, `/flush_cache`, `/start_profile` and `/stop_profile`.
pub const ACK: &[u8] = br#"{"status":"ok"}"#;

/// Speculative-decoding counters as vLLM exposes them on `/metrics`, for `--spec-decode-tokens`.
#[derive(Default)]
pub struct SpecStats {
    drafts: AtomicU64,
    draft_tokens: AtomicU64,
    accepted: AtomicU64,
}

impl SpecStats {
    /// A reply of `tokens` tokens drafted `k` at a time, one draft accepted per two tokens.
    pub fn add_reply(&self, tokens: u32, k: u32) {
        let drafts = u64::from(tokens / 2);
        self.drafts.fetch_add(drafts, Ordering::Relaxed);
        self.draft_tokens
            .fetch_add(drafts * u64::from(k), Ordering::Relaxed);
        self.accepted.fetch_add(drafts, Ordering::Relaxed);
    }

    /// The Prometheus text of `GET /metrics`: the counters when `k > 0`, else just a gauge.
    pub fn prometheus(&self, k: u32) -> Vec<u8> {
        let mut out = Vec::with_capacity(1024);
        let _ = writeln!(out, "# TYPE vllm:num_requests_running gauge");
        let _ = writeln!(out, "vllm:num_requests_running{{model_name=\"mock\"}} 0.0");
        if k == 0 {
            return out;
        }
        let accepted = self.accepted.load(Ordering::Relaxed);
        for (name, value) in [
            ("num_drafts", self.drafts.load(Ordering::Relaxed)),
            (
                "num_draft_tokens",
                self.draft_tokens.load(Ordering::Relaxed),
            ),
            ("num_accepted_tokens", accepted),
        ] {
            let _ = writeln!(out, "# TYPE vllm:spec_decode_{name}_total counter");
            let _ = writeln!(
                out,
                "vllm:spec_decode_{name}_total{{engine=\"0\",model_name=\"mock\"}} {value}.0"
            );
        }
        let _ = writeln!(
            out,
            "# TYPE vllm:spec_decode_num_accepted_tokens_per_pos_total counter"
        );
        for pos in 0..k {
            let value = if pos == 0 { accepted } else { 0 };
            let _ = writeln!(
                out,
                "vllm:spec_decode_num_accepted_tokens_per_pos_total{{engine=\"0\",model_name=\"mock\",position=\"{pos}\"}} {value}.0"
            );
        }
        out
    }
}

/// Why `/tokenize` fails when the mock has no tokenizer.
pub const NO_TOKENIZER: &str =
    "/tokenize needs a tokenizer: start the mock with --tokenizer FILE (or --count-prompt-tokens for the embedded one)";

#[derive(Deserialize)]
struct RawTokenize<'a> {
    #[serde(borrow, default, deserialize_with = "prompt")]
    prompt: Option<Cow<'a, str>>,
}

str_field!(prompt, "`prompt` as a string");

/// The text of a `/tokenize` request (`{"prompt": "..."}`, as vLLM takes it).
pub fn parse_tokenize(body: &[u8]) -> Result<Cow<'_, str>, String> {
    let raw: RawTokenize<'_> =
        serde_json::from_slice(body).map_err(|e| format!("invalid tokenize request: {e}"))?;
    raw.prompt
        .ok_or_else(|| "/tokenize needs `prompt` as a string".to_string())
}

/// vLLM's `/tokenize` reply: `{"count":N,"max_model_len":M,"tokens":[...],"token_strs":null}`.
pub fn tokenize_body(ids: &[u32]) -> Vec<u8> {
    let mut body = Vec::with_capacity(64 + ids.len() * 7);
    let _ = write!(
        body,
        r#"{{"count":{},"max_model_len":{MAX_MODEL_LEN},"tokens":["#,
        ids.len()
    );
    for (i, id) in ids.iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        let _ = write!(body, "{id}");
    }
    body.extend_from_slice(br#"],"token_strs":null}"#);
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokenize_request_and_body() {
        assert_eq!(parse_tokenize(br#"{"prompt":"a\"b"}"#).unwrap(), "a\"b");
        for bad in [&br#"{}"#[..], br#"{"prompt":3}"#, b"{"] {
            assert!(parse_tokenize(bad).is_err());
        }
        let v: serde_json::Value = serde_json::from_slice(&tokenize_body(&[5, 7])).unwrap();
        assert_eq!(v["count"], 2);
        assert_eq!(v["tokens"], serde_json::json!([5, 7]));
        assert_eq!(v["max_model_len"], MAX_MODEL_LEN);
    }
}

//! The calls clients make around a run rather than during it: cache resets, profiler
//! start/stop (acknowledged and ignored), `/tokenize` and `/detokenize` (answered with the
//! mock's tokenizer, in the dialect --tokenize-dialect names).

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

/// Which server's `/tokenize` and `/detokenize` the mock imitates (`--tokenize-dialect`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum TokenizeDialect {
    /// `{"prompt"}` → `{"count","max_model_len","tokens","token_strs"}`; detokenize → `{"prompt"}`.
    #[default]
    Vllm,
    /// `{"prompt"}` → `{"tokens","count","max_model_len"}`; detokenize → `{"text"}`.
    Sglang,
    /// `{"content"}` → `{"tokens"}` (no `content`: no tokens); detokenize → `{"content"}`.
    Llamacpp,
    /// Neither route exists (404), like servers without them.
    None,
}

#[derive(Deserialize)]
struct RawTokenize<'a> {
    #[serde(borrow, default, deserialize_with = "prompt")]
    prompt: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "content")]
    content: Option<Cow<'a, str>>,
}

str_field!(prompt, "`prompt` as a string");
str_field!(content, "`content` as a string");

/// The text of a `/tokenize` request: `prompt` (vLLM, SGLang) or `content` (llama.cpp, which
/// tokenizes nothing when `content` is absent).
pub fn parse_tokenize(dialect: TokenizeDialect, body: &[u8]) -> Result<Cow<'_, str>, String> {
    let raw: RawTokenize<'_> =
        serde_json::from_slice(body).map_err(|e| format!("invalid tokenize request: {e}"))?;
    match dialect {
        TokenizeDialect::Llamacpp => Ok(raw.content.unwrap_or(Cow::Borrowed(""))),
        _ => raw
            .prompt
            .ok_or_else(|| "/tokenize needs `prompt` as a string".to_string()),
    }
}

/// The `/tokenize` reply of `dialect`.
pub fn tokenize_body(dialect: TokenizeDialect, ids: &[u32]) -> Vec<u8> {
    let mut list = String::with_capacity(ids.len() * 7);
    for (i, id) in ids.iter().enumerate() {
        if i > 0 {
            list.push(',');
        }
        let _ = std::fmt::Write::write_fmt(&mut list, format_args!("{id}"));
    }
    let n = ids.len();
    match dialect {
        TokenizeDialect::Sglang => {
            format!(r#"{{"tokens":[{list}],"count":{n},"max_model_len":{MAX_MODEL_LEN}}}"#)
        }
        TokenizeDialect::Llamacpp => format!(r#"{{"tokens":[{list}]}}"#),
        _ => format!(
            r#"{{"count":{n},"max_model_len":{MAX_MODEL_LEN},"tokens":[{list}],"token_strs":null}}"#
        ),
    }
    .into_bytes()
}

#[derive(Deserialize)]
struct RawDetokenize {
    tokens: Vec<u32>,
}

/// The ids of a `/detokenize` request (`{"tokens":[...]}` in every dialect).
pub fn parse_detokenize(body: &[u8]) -> Result<Vec<u32>, String> {
    serde_json::from_slice::<RawDetokenize>(body)
        .map(|r| r.tokens)
        .map_err(|e| format!("/detokenize needs `tokens` as a list of token ids: {e}"))
}

/// The `/detokenize` reply of `dialect`.
pub fn detokenize_body(dialect: TokenizeDialect, text: &str) -> Vec<u8> {
    let key = match dialect {
        TokenizeDialect::Sglang => "text",
        TokenizeDialect::Llamacpp => "content",
        _ => "prompt",
    };
    serde_json::json!({ key: text }).to_string().into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokenize_request_and_body() {
        use TokenizeDialect::{Llamacpp, Sglang, Vllm};
        assert_eq!(
            parse_tokenize(Vllm, br#"{"prompt":"a\"b"}"#).unwrap(),
            "a\"b"
        );
        for bad in [
            &br#"{}"#[..],
            br#"{"prompt":3}"#,
            b"{",
            br#"{"content":"x"}"#,
        ] {
            assert!(parse_tokenize(Sglang, bad).is_err());
        }
        assert_eq!(
            parse_tokenize(Llamacpp, br#"{"content":"x"}"#).unwrap(),
            "x"
        );
        assert_eq!(parse_tokenize(Llamacpp, br#"{"prompt":"x"}"#).unwrap(), "");
        let v: serde_json::Value = serde_json::from_slice(&tokenize_body(Vllm, &[5, 7])).unwrap();
        assert_eq!(v["count"], 2);
        assert_eq!(v["tokens"], serde_json::json!([5, 7]));
        assert_eq!(v["max_model_len"], MAX_MODEL_LEN);
        assert!(v["token_strs"].is_null());
        let v: serde_json::Value = serde_json::from_slice(&tokenize_body(Sglang, &[5])).unwrap();
        assert_eq!((v["count"].as_u64(), v.get("token_strs")), (Some(1), None));
        let v: serde_json::Value = serde_json::from_slice(&tokenize_body(Llamacpp, &[])).unwrap();
        assert_eq!(v, serde_json::json!({"tokens": []}));
    }

    #[test]
    fn detokenize_request_and_body() {
        assert_eq!(
            parse_detokenize(br#"{"model":"m","tokens":[1,2]}"#).unwrap(),
            [1, 2]
        );
        assert!(parse_detokenize(br#"{"tokens":[-1]}"#).is_err());
        let body = |d| String::from_utf8(detokenize_body(d, "a\"b")).unwrap();
        assert_eq!(body(TokenizeDialect::Vllm), r#"{"prompt":"a\"b"}"#);
        assert_eq!(body(TokenizeDialect::Sglang), r#"{"text":"a\"b"}"#);
        assert_eq!(body(TokenizeDialect::Llamacpp), r#"{"content":"a\"b"}"#);
    }
}

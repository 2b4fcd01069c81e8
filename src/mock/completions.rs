//! `/v1/completions` for the mock: the request fields it honours, and the response bytes,
//! pre-serialised so that a streamed token costs a few copies and one write.

use std::borrow::Cow;
use std::fmt;
use std::io::Write;
use std::marker::PhantomData;

use serde::de::{self, Deserializer, IgnoredAny, SeqAccess, Visitor};
use serde::Deserialize;

use super::formats::fields::{self, ignore_eos, max_tokens, stream, StreamOptions};

/// Context length reported by /v1/models, and the largest `max_tokens` accepted.
pub const MAX_MODEL_LEN: u32 = 1 << 20;

/// Generated text cycles through these. Each is one token in the embedded tokenizer (and in
/// the usual BPE vocabularies), so retokenizing N generated tokens gives N back; none needs
/// escaping in JSON.
pub const WORDS: [&str; 64] = [
    " the", " quick", " over", " dog", " of", " and", " to", " in", " is", " that", " for", " it",
    " as", " was", " with", " be", " by", " on", " not", " he", " this", " are", " or", " his",
    " from", " at", " which", " but", " have", " an", " had", " they", " you", " were", " their",
    " one", " all", " we", " can", " her", " has", " there", " been", " if", " more", " when",
    " will", " would", " who", " so", " no", " time", " new", " some", " what", " up", " out",
    " into", " only", " about", " could", " than", " like", " other",
];

/// Text of generated token `k`.
pub fn word(k: u32) -> &'static str {
    WORDS[k as usize % WORDS.len()]
}

/// The prompt of a request, reduced to what the mock needs.
#[derive(Debug, PartialEq, Eq)]
pub enum Prompt<'a> {
    Text(Cow<'a, str>),
    /// A prompt of token ids: only their number matters.
    TokenIds(usize),
}

/// A validated completion request.
#[derive(Debug, PartialEq, Eq)]
pub struct Completion<'a> {
    pub prompt: Prompt<'a>,
    pub max_tokens: u32,
    pub stream: bool,
    pub include_usage: bool,
}

#[derive(Deserialize)]
struct RawCompletion<'a> {
    // Type-checked only: any model name is served.
    #[serde(borrow, default)]
    #[allow(dead_code)]
    model: Option<Cow<'a, str>>,
    #[serde(borrow)]
    prompt: Prompt<'a>,
    #[serde(default, deserialize_with = "max_tokens")]
    max_tokens: Option<u64>,
    #[serde(default, deserialize_with = "stream")]
    stream: Option<bool>,
    #[serde(default)]
    stream_options: Option<StreamOptions>,
    // Type-checked only: the mock always generates exactly max_tokens.
    #[serde(default, deserialize_with = "ignore_eos")]
    #[allow(dead_code)]
    ignore_eos: Option<bool>,
}

/// Parses and validates a request body; the error is the message for a 400 reply.
pub fn parse(body: &[u8]) -> Result<Completion<'_>, String> {
    let raw: RawCompletion<'_> =
        serde_json::from_slice(body).map_err(|e| format!("invalid completion request: {e}"))?;
    Ok(Completion {
        prompt: raw.prompt,
        max_tokens: fields::output_len("max_tokens", raw.max_tokens)?,
        stream: raw.stream.unwrap_or(false),
        include_usage: raw
            .stream_options
            .and_then(|o| o.include_usage)
            .unwrap_or(false),
    })
}

// `prompt` is a string, an array of strings, an array of token ids or an array of token-id
// arrays (the first entry of a batch is served). Token ids are counted, never collected.
impl<'de: 'a, 'a> Deserialize<'de> for Prompt<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        prompt_named(
            d,
            "`prompt` as a string, an array of strings, an array of token ids or of token-id arrays",
        )
    }
}

/// Deserialises a prompt-shaped field (string, strings, token ids, token-id arrays); errors
/// describe it as `label`.
pub fn prompt_named<'de: 'a, 'a, D: Deserializer<'de>>(
    d: D,
    label: &'static str,
) -> Result<Prompt<'a>, D::Error> {
    d.deserialize_any(PromptVisitor(label, PhantomData))
}

struct PromptVisitor<'a>(&'static str, PhantomData<&'a ()>);

impl<'de: 'a, 'a> Visitor<'de> for PromptVisitor<'a> {
    type Value = Prompt<'a>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(self.0)
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Prompt::Text(Cow::Borrowed(v)))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Prompt::Text(Cow::Owned(v.to_owned())))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Prompt::Text(Cow::Owned(v)))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let prompt = match seq.next_element::<Item<'a>>()? {
            None => return Err(de::Error::invalid_length(0, &"a non-empty prompt")),
            Some(Item::Id) => return Ok(Prompt::TokenIds(1 + count_ids(&mut seq)?)),
            Some(Item::Text(text)) => Prompt::Text(text),
            Some(Item::Ids(n)) => Prompt::TokenIds(n),
        };
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(prompt)
    }
}

/// The first element of an array prompt.
enum Item<'a> {
    Id,
    Text(Cow<'a, str>),
    Ids(usize),
}

fn count_ids<'de, A: SeqAccess<'de>>(seq: &mut A) -> Result<usize, A::Error> {
    let mut n = 0;
    while seq.next_element::<u32>()?.is_some() {
        n += 1;
    }
    Ok(n)
}

impl<'de: 'a, 'a> Deserialize<'de> for Item<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ItemVisitor(PhantomData))
    }
}

struct ItemVisitor<'a>(PhantomData<&'a ()>);

impl<'de: 'a, 'a> Visitor<'de> for ItemVisitor<'a> {
    type Value = Item<'a>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a token id, a string or an array of token ids")
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        u32::try_from(v)
            .map(|_| Item::Id)
            .map_err(|_| E::invalid_value(de::Unexpected::Unsigned(v), &"a token id"))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        u32::try_from(v)
            .map(|_| Item::Id)
            .map_err(|_| E::invalid_value(de::Unexpected::Signed(v), &"a token id"))
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Item::Text(Cow::Borrowed(v)))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Item::Text(Cow::Owned(v.to_owned())))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Item::Text(Cow::Owned(v)))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        match count_ids(&mut seq)? {
            0 => Err(de::Error::invalid_length(0, &"a non-empty prompt")),
            n => Ok(Item::Ids(n)),
        }
    }
}

// A streamed token event is `data: ` + response head + TOKEN_OPEN + word + TOKEN_CLOSE(_LAST).
/// Opens the single choice of a token event or of the unstreamed body, up to its text.
pub const TOKEN_OPEN: &[u8] = br#"{"index":0,"text":""#;
/// Closes the choice and the event of every streamed token but the last.
pub const TOKEN_CLOSE: &[u8] =
    br#"","logprobs":null,"finish_reason":null,"stop_reason":null}],"usage":null}"#;
/// Closes the choice and the event of the last streamed token.
pub const TOKEN_CLOSE_LAST: &[u8] =
    br#"","logprobs":null,"finish_reason":"length","stop_reason":null}],"usage":null}"#;
/// Closes the non-streamed choice; the usage object and `}` follow.
pub const BODY_CLOSE: &[u8] =
    br#"","logprobs":null,"finish_reason":"length","stop_reason":null}],"usage":"#;
/// Follows the response head in the usage-only event; the usage object and `}` follow.
pub const USAGE_OPEN: &[u8] = br#"],"usage":"#;

/// The parts of every reply that depend only on the served model name.
pub struct Templates {
    model_json: String,
    pub models_body: Vec<u8>,
}

impl Templates {
    pub fn new(model: &str, created: u64) -> Self {
        let model_json = serde_json::Value::from(model).to_string();
        let models_body = format!(
            r#"{{"object":"list","data":[{{"id":{model_json},"object":"model","created":{created},"owned_by":"servebench","root":{model_json},"parent":null,"max_model_len":{MAX_MODEL_LEN}}}]}}"#
        )
        .into_bytes();
        Templates {
            model_json,
            models_body,
        }
    }

    /// The served model name as a JSON string (quoted, escaped).
    pub fn model_json(&self) -> &str {
        &self.model_json
    }

    /// Appends what every JSON object of one response starts with, up to and including
    /// `"choices":[`.
    pub fn push_response_head(&self, out: &mut Vec<u8>, id: u64, created: u64) {
        let _ = write!(
            out,
            r#"{{"id":"cmpl-{id}","object":"text_completion","created":{created},"model":{},"choices":["#,
            self.model_json
        );
    }
}

/// Appends `{"prompt_tokens":P,"total_tokens":P+N,"completion_tokens":N}`, or
/// `{"completion_tokens":N}` when the prompt was not counted.
pub fn push_usage(out: &mut Vec<u8>, prompt_tokens: Option<usize>, completion_tokens: u32) {
    let _ = match prompt_tokens {
        Some(p) => write!(
            out,
            r#"{{"prompt_tokens":{p},"total_tokens":{},"completion_tokens":{completion_tokens}}}"#,
            p + completion_tokens as usize
        ),
        None => write!(out, r#"{{"completion_tokens":{completion_tokens}}}"#),
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn ok(body: &str) -> Completion<'_> {
        parse(body.as_bytes()).unwrap()
    }

    #[test]
    fn defaults() {
        let c = ok(r#"{"model":"m","prompt":"hi","unknown":[1,{"x":2}]}"#);
        assert_eq!(c.prompt, Prompt::Text("hi".into()));
        assert_eq!(
            (c.max_tokens, c.stream, c.include_usage),
            (16, false, false)
        );
    }

    #[test]
    fn prompt_shapes() {
        fn p(s: &str) -> Result<Prompt<'_>, String> {
            parse(s.as_bytes()).map(|c| c.prompt)
        }
        assert_eq!(p(r#"{"prompt":[1,2,3]}"#), Ok(Prompt::TokenIds(3)));
        assert_eq!(p(r#"{"prompt":[[1,2],[3]]}"#), Ok(Prompt::TokenIds(2)));
        assert_eq!(
            p(r#"{"prompt":["a\nb","c"]}"#),
            Ok(Prompt::Text("a\nb".into()))
        );
        assert_eq!(p(r#"{"prompt":"x\"y"}"#), Ok(Prompt::Text("x\"y".into())));
        for bad in [
            r#"{"prompt":[]}"#,
            r#"{"prompt":[1,"a"]}"#,
            r#"{"prompt":[-1]}"#,
            r#"{"prompt":[1.5]}"#,
            r#"{"prompt":[[]]}"#,
            r#"{"prompt":5}"#,
            r#"{"prompt":null}"#,
            r#"{"max_tokens":3}"#,
        ] {
            assert!(p(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn options_and_limits() {
        let c = ok(
            r#"{"prompt":"x","max_tokens":5,"stream":true,"stream_options":{"include_usage":true},"ignore_eos":true}"#,
        );
        assert_eq!((c.max_tokens, c.stream, c.include_usage), (5, true, true));
        let c = ok(r#"{"prompt":"x","max_tokens":null,"stream":null}"#);
        assert_eq!((c.max_tokens, c.stream), (16, false));
        for (bad, named) in [
            (r#"{"prompt":"x","max_tokens":0}"#, "max_tokens"),
            (r#"{"prompt":"x","max_tokens":-2}"#, "max_tokens"),
            (r#"{"prompt":"x","max_tokens":"5"}"#, "max_tokens"),
            (r#"{"prompt":"x","max_tokens":99999999999}"#, "max_tokens"),
            (r#"{"prompt":"x","stream":"yes"}"#, "stream"),
            (
                r#"{"prompt":"x","stream_options":{"include_usage":1}}"#,
                "include_usage",
            ),
            (r#"{"prompt":"x","ignore_eos":1}"#, "ignore_eos"),
            (r#"{"prompt":{}}"#, "prompt"),
            (r#"{"prompt":"x""#, "EOF"),
        ] {
            let e = parse(bad.as_bytes()).unwrap_err();
            assert!(e.contains(named), "{bad}: {e}");
        }
    }

    #[test]
    fn streamed_event_is_valid_json_and_framed() {
        let t = Templates::new("m\"odel", 7);
        let mut head = Vec::new();
        t.push_response_head(&mut head, 42, 1000);
        let mut out = Vec::new();
        crate::mock::formats::sse::data(
            &mut out,
            true,
            &[&head, TOKEN_OPEN, word(1).as_bytes(), TOKEN_CLOSE_LAST],
        );
        let text = std::str::from_utf8(&out).unwrap();
        let (size, rest) = text.split_once("\r\n").unwrap();
        let size = usize::from_str_radix(size, 16).unwrap();
        assert_eq!(rest.len(), size + 2);
        assert!(rest.ends_with("\n\n\r\n"));
        let v: Value = serde_json::from_str(&rest[6..size - 2]).unwrap();
        assert_eq!(v["id"], "cmpl-42");
        assert_eq!(v["model"], "m\"odel");
        assert_eq!(v["created"], 1000);
        assert_eq!(v["choices"][0]["text"], " quick");
        assert_eq!(v["choices"][0]["finish_reason"], "length");
        assert!(v["usage"].is_null());

        let mut usage = Vec::new();
        push_usage(&mut usage, Some(3), 4);
        let json = [&head[..], USAGE_OPEN, &usage, b"}"].concat();
        let v: Value = serde_json::from_slice(&json).unwrap();
        assert_eq!(v["choices"].as_array().unwrap().len(), 0);
        assert_eq!(v["usage"]["total_tokens"], 7);
    }

    #[test]
    fn models_body() {
        let v: Value = serde_json::from_slice(&Templates::new("a/b", 1).models_body).unwrap();
        assert_eq!(v["data"][0]["id"], "a/b");
        assert_eq!(v["data"][0]["root"], "a/b");
        assert_eq!(v["data"][0]["max_model_len"], MAX_MODEL_LEN);
    }

    #[test]
    fn words_retokenize_one_each() {
        let tok = tokenizers::Tokenizer::from_bytes(super::super::DEFAULT_TOKENIZER).unwrap();
        let text: String = (0..200).map(word).collect();
        assert_eq!(tok.encode(text.as_str(), false).unwrap().len(), 200);
    }
}

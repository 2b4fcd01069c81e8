//! The `data` of one stream event for the backends other than OpenAI Completions (which has
//! its own allocation-free decoder in [`completions`](super::completions)): OpenAI Chat,
//! OpenAI Responses, SGLang's native `/generate`, TGI and Triton/TensorRT-LLM.
//!
//! Each decoder reads only the fields the anchor clients read, with their semantics, and
//! returns output text still JSON-escaped (borrowed from the event), as the Completions
//! decoder does, so the engine stores it and unescapes after the clock stops.

use serde::Deserialize;
use serde_json::value::RawValue;

use super::completions::Usage;
use super::error::excerpt;
use super::ProtoError;
use crate::backend::Api;

/// One decoded event of any format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamEvent<'a> {
    /// The end of the stream (`[DONE]`, or a terminal event of the format).
    Done,
    /// An output-carrying event. `text` is still escaped. For SGLang `text` is the whole
    /// output so far and `tokens_so_far` the server's running completion count.
    Token {
        text: &'a str,
        tokens_so_far: Option<u64>,
        usage: Option<Usage>,
    },
    /// Token counts without output (a usage chunk, or a terminal event carrying usage).
    Usage(Usage),
    /// An error the server reported inside the stream.
    Error(String),
    /// Valid, but nothing the benchmark counts (role-only chunks, created events, comments).
    Other,
}

/// Decodes one event of `api`'s stream; `event` is the SSE `event:` field (the Responses API
/// names its events there as well as in `type`).
pub fn decode_stream_event<'a>(
    api: Api,
    event: &[u8],
    data: &'a [u8],
) -> Result<StreamEvent<'a>, ProtoError> {
    let trimmed = data.trim_ascii();
    if trimmed == b"[DONE]" {
        return Ok(StreamEvent::Done);
    }
    if trimmed.is_empty() {
        return Ok(StreamEvent::Other);
    }
    match api {
        Api::Completions => Err(shape(data, "Completions events have their own decoder")),
        Api::Chat => chat(data),
        Api::Responses => responses(event, data),
        Api::SglangGenerate => sglang(data),
        Api::Tgi => tgi(data),
        Api::Triton => triton(data),
        Api::Mii => Err(shape(data, "DeepSpeed-MII replies are not streamed")),
    }
}

/// The output of a whole (not streamed) reply: its text, still escaped, and usage if any.
pub fn decode_whole_body(api: Api, body: &[u8]) -> Result<(&str, Option<Usage>), ProtoError> {
    #[derive(Deserialize)]
    struct Whole<'a> {
        // Completions: choices[0].text; Chat: choices[0].message.content.
        #[serde(borrow, default)]
        choices: Option<Vec<WholeChoice<'a>>>,
        // Responses: output[..].content[..].text.
        #[serde(borrow, default)]
        output: Option<Vec<OutputItem<'a>>>,
        // SGLang: text; MII: text[0].
        #[serde(borrow, default)]
        text: Option<&'a RawValue>,
        #[serde(default)]
        usage: Option<UsageJson>,
        #[serde(default)]
        meta_info: Option<SglangMeta>,
    }
    #[derive(Deserialize)]
    struct WholeChoice<'a> {
        #[serde(borrow, default)]
        text: Option<&'a RawValue>,
        #[serde(borrow, default)]
        message: Option<Delta<'a>>,
    }
    #[derive(Deserialize)]
    struct OutputItem<'a> {
        #[serde(borrow, default)]
        content: Option<Vec<OutputPart<'a>>>,
    }
    #[derive(Deserialize)]
    struct OutputPart<'a> {
        #[serde(borrow, default)]
        text: Option<&'a RawValue>,
    }

    let reply: Whole = match parse(body) {
        Ok(r) => r,
        Err(e) => return Err(error_of(body).map_or(e, |m| shape_msg(body, m))),
    };
    if let Some(m) = error_of(body) {
        return Err(shape_msg(body, m));
    }
    let usage = reply.usage.as_ref().map(UsageJson::usage);
    let text = match api {
        Api::Completions => {
            let choice = reply.choices.as_ref().and_then(|c| c.first());
            raw_str(choice.and_then(|c| c.text), body)?
        }
        Api::Chat => {
            let message = reply
                .choices
                .as_ref()
                .and_then(|c| c.first())
                .and_then(|c| c.message.as_ref());
            match message {
                Some(m) => match raw_str(m.content, body)? {
                    Some(c) if !c.is_empty() => Some(c),
                    _ => raw_str(m.reasoning_content, body)?,
                },
                None => None,
            }
        }
        Api::Responses => {
            let part = reply
                .output
                .iter()
                .flatten()
                .filter_map(|item| item.content.as_ref())
                .flatten()
                .find(|p| p.text.is_some());
            raw_str(part.and_then(|p| p.text), body)?
        }
        Api::SglangGenerate => raw_str(reply.text, body)?,
        Api::Mii => {
            // `{"text": ["..."]}`: the first (only) generation.
            let list = reply.text.ok_or_else(|| shape(body, "no text list"))?;
            let items: Vec<&RawValue> = serde_json::from_str(list.get())
                .map_err(|_| shape(body, "expected a list of strings in text"))?;
            raw_str(items.first().copied(), body)?
        }
        Api::Tgi | Api::Triton => return Err(shape(body, "this backend's replies are streamed")),
    };
    let Some(text) = text else {
        return Err(shape(body, "no output text in the reply"));
    };
    let usage = usage.or_else(|| {
        reply.meta_info.as_ref().map(|m| Usage {
            prompt_tokens: m.prompt_tokens,
            completion_tokens: m.completion_tokens,
        })
    });
    Ok((text, usage))
}

/// A reply that carries the server's own error message.
fn shape_msg(data: &[u8], message: String) -> ProtoError {
    ProtoError::Json {
        offset: 0,
        problem: "the server reported an error",
        excerpt: if message.is_empty() {
            excerpt(data)
        } else {
            message
        },
    }
}

fn parse<'a, T: Deserialize<'a>>(data: &'a [u8]) -> Result<T, ProtoError> {
    serde_json::from_slice(data).map_err(|e| ProtoError::Json {
        offset: e.column().saturating_sub(1),
        problem: if e.is_syntax() || e.is_eof() {
            "malformed JSON"
        } else {
            "unexpected shape"
        },
        excerpt: excerpt(data),
    })
}

fn shape(data: &[u8], problem: &'static str) -> ProtoError {
    ProtoError::Json {
        offset: 0,
        problem,
        excerpt: excerpt(data),
    }
}

/// The escaped contents of a JSON string (without quotes); `None` for null.
fn raw_str<'a>(v: Option<&'a RawValue>, data: &[u8]) -> Result<Option<&'a str>, ProtoError> {
    let Some(v) = v else { return Ok(None) };
    let s = v.get();
    if s == "null" {
        return Ok(None);
    }
    match s.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
        Some(inner) => Ok(Some(inner)),
        None => Err(shape(data, "expected a string")),
    }
}

#[derive(Deserialize)]
struct ServerError<'a> {
    #[serde(borrow, default)]
    error: Option<&'a RawValue>,
}

/// `{"error": ...}` as one line: OpenAI's `{"message",..}` object or a plain string.
fn error_of(data: &[u8]) -> Option<String> {
    let e: ServerError = serde_json::from_slice(data).ok()?;
    let raw = e.error?.get();
    if raw == "null" {
        return None;
    }
    let v: serde_json::Value = serde_json::from_str(raw).ok()?;
    Some(match &v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Object(o) => o
            .get("message")
            .and_then(|m| m.as_str())
            .map_or_else(|| v.to_string(), str::to_string),
        other => other.to_string(),
    })
}

#[derive(Deserialize)]
struct UsageJson {
    prompt_tokens: Option<u64>,
    completion_tokens: Option<u64>,
    input_tokens: Option<u64>,
    output_tokens: Option<u64>,
}

impl UsageJson {
    fn usage(&self) -> Usage {
        Usage {
            prompt_tokens: self.prompt_tokens.or(self.input_tokens),
            completion_tokens: self.completion_tokens.or(self.output_tokens),
        }
    }
}

// --- OpenAI Chat ---------------------------------------------------------------------

#[derive(Deserialize)]
struct ChatChunk<'a> {
    #[serde(borrow, default)]
    choices: Option<Vec<ChatChoice<'a>>>,
    #[serde(default)]
    usage: Option<UsageJson>,
}

#[derive(Deserialize)]
struct ChatChoice<'a> {
    #[serde(borrow, default)]
    delta: Option<Delta<'a>>,
}

#[derive(Deserialize)]
struct Delta<'a> {
    #[serde(borrow, default)]
    role: Option<&'a RawValue>,
    #[serde(borrow, default)]
    content: Option<&'a RawValue>,
    #[serde(borrow, default)]
    reasoning_content: Option<&'a RawValue>,
    #[serde(borrow, default)]
    reasoning: Option<&'a RawValue>,
    #[serde(borrow, default)]
    tool_calls: Option<&'a RawValue>,
}

/// vLLM's openai-chat rules: a chunk with choices carries output when its delta has content,
/// reasoning or tool calls; the first chunk, which carries only the role (and an empty
/// content), is not a token. Usage may come in any chunk.
fn chat(data: &[u8]) -> Result<StreamEvent<'_>, ProtoError> {
    let chunk: ChatChunk = match parse(data) {
        Ok(c) => c,
        Err(e) => return error_of(data).map(StreamEvent::Error).ok_or(e),
    };
    let usage = chunk.usage.as_ref().map(UsageJson::usage);
    if let Some(delta) = chunk
        .choices
        .as_ref()
        .and_then(|c| c.first())
        .and_then(|c| c.delta.as_ref())
    {
        let content = raw_str(delta.content, data)?;
        let reasoning = match raw_str(delta.reasoning_content, data)? {
            Some(r) => Some(r),
            None => raw_str(delta.reasoning, data)?,
        };
        let has_tools = delta.tool_calls.is_some_and(|t| t.get() != "null");
        let role_only = delta.role.is_some() && content.unwrap_or("").is_empty();
        if !role_only && (content.is_some() || reasoning.is_some() || has_tools) {
            // The visible content when there is some, else the reasoning text.
            let text = match content {
                Some(c) if !c.is_empty() => c,
                _ => reasoning.unwrap_or(""),
            };
            return Ok(StreamEvent::Token {
                text,
                tokens_so_far: None,
                usage,
            });
        }
    }
    if let Some(u) = usage {
        return Ok(StreamEvent::Usage(u));
    }
    Ok(error_of(data).map_or(StreamEvent::Other, StreamEvent::Error))
}

// --- OpenAI Responses ----------------------------------------------------------------

#[derive(Deserialize)]
struct ResponsesEvent<'a> {
    #[serde(borrow, rename = "type", default)]
    kind: Option<&'a str>,
    #[serde(borrow, default)]
    delta: Option<&'a RawValue>,
    #[serde(default)]
    response: Option<ResponseObject>,
    #[serde(default)]
    message: Option<String>,
}

#[derive(Deserialize)]
struct ResponseObject {
    #[serde(default)]
    usage: Option<UsageJson>,
    #[serde(default)]
    error: Option<serde_json::Value>,
}

fn responses<'a>(event: &[u8], data: &'a [u8]) -> Result<StreamEvent<'a>, ProtoError> {
    let ev: ResponsesEvent = parse(data)?;
    let kind: &[u8] = ev.kind.map_or(event, str::as_bytes);
    match kind {
        b"response.output_text.delta" | b"response.reasoning_text.delta" => {
            Ok(StreamEvent::Token {
                text: raw_str(ev.delta, data)?.unwrap_or(""),
                tokens_so_far: None,
                usage: None,
            })
        }
        b"response.completed" | b"response.incomplete" => Ok(ev
            .response
            .and_then(|r| r.usage)
            .map_or(StreamEvent::Done, |u| StreamEvent::Usage(u.usage()))),
        b"error" => {
            Ok(StreamEvent::Error(ev.message.unwrap_or_else(|| {
                String::from_utf8_lossy(data).into_owned()
            })))
        }
        b"response.failed" => Ok(StreamEvent::Error(
            ev.response
                .and_then(|r| r.error)
                .map_or_else(|| "response.failed".to_string(), |e| e.to_string()),
        )),
        _ => Ok(StreamEvent::Other),
    }
}

// --- SGLang native /generate -----------------------------------------------------------

#[derive(Deserialize)]
struct SglangChunk<'a> {
    #[serde(borrow, default)]
    text: Option<&'a RawValue>,
    #[serde(default)]
    meta_info: Option<SglangMeta>,
}

#[derive(Deserialize)]
struct SglangMeta {
    prompt_tokens: Option<u64>,
    completion_tokens: Option<u64>,
}

fn sglang(data: &[u8]) -> Result<StreamEvent<'_>, ProtoError> {
    let chunk: SglangChunk = match parse(data) {
        Ok(c) => c,
        Err(e) => return error_of(data).map(StreamEvent::Error).ok_or(e),
    };
    let Some(text) = raw_str(chunk.text, data)? else {
        return Ok(error_of(data).map_or(StreamEvent::Other, StreamEvent::Error));
    };
    let meta = chunk.meta_info.as_ref();
    Ok(StreamEvent::Token {
        text,
        tokens_so_far: meta.and_then(|m| m.completion_tokens),
        usage: meta.map(|m| Usage {
            prompt_tokens: m.prompt_tokens,
            completion_tokens: m.completion_tokens,
        }),
    })
}

// --- TGI /generate_stream ---------------------------------------------------------------

#[derive(Deserialize)]
struct TgiChunk<'a> {
    #[serde(borrow, default)]
    token: Option<TgiToken<'a>>,
    #[serde(default)]
    details: Option<TgiDetails>,
}

#[derive(Deserialize)]
struct TgiToken<'a> {
    #[serde(borrow, default)]
    text: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct TgiDetails {
    generated_tokens: Option<u64>,
}

fn tgi(data: &[u8]) -> Result<StreamEvent<'_>, ProtoError> {
    let chunk: TgiChunk = match parse(data) {
        Ok(c) => c,
        Err(e) => return error_of(data).map(StreamEvent::Error).ok_or(e),
    };
    let Some(token) = chunk.token else {
        return Ok(error_of(data).map_or(StreamEvent::Other, StreamEvent::Error));
    };
    Ok(StreamEvent::Token {
        text: raw_str(token.text, data)?.unwrap_or(""),
        tokens_so_far: None,
        usage: chunk
            .details
            .and_then(|d| d.generated_tokens)
            .map(|n| Usage {
                prompt_tokens: None,
                completion_tokens: Some(n),
            }),
    })
}

// --- Triton / TensorRT-LLM generate_stream ------------------------------------------------

#[derive(Deserialize)]
struct TritonChunk<'a> {
    #[serde(borrow, default)]
    text_output: Option<&'a RawValue>,
}

fn triton(data: &[u8]) -> Result<StreamEvent<'_>, ProtoError> {
    let chunk: TritonChunk = match parse(data) {
        Ok(c) => c,
        Err(e) => return error_of(data).map(StreamEvent::Error).ok_or(e),
    };
    match raw_str(chunk.text_output, data)? {
        Some(text) => Ok(StreamEvent::Token {
            text,
            tokens_so_far: None,
            usage: None,
        }),
        None => Ok(error_of(data).map_or(StreamEvent::Other, StreamEvent::Error)),
    }
}

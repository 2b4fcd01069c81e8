//! JSON request bodies, with the keys in the order `vllm bench serve` sends them.
//!
//! vLLM posts with aiohttp's `json=`, i.e. Python's `json.dumps` with its defaults: `", "` /
//! `": "` separators and non-ASCII escaped as `\uXXXX`. We send compact JSON with UTF-8 as
//! is; a server parses both to the same object, only the byte count differs.

use serde_json::{json, Map, Value};

use crate::backend::Api;
use crate::workload::Message;

/// What one request says, in a form every API can take its part of.
#[derive(Clone, Copy, Debug)]
pub struct Parts<'a> {
    pub input: Input<'a>,
    /// Messages before the user turn (chat-style APIs only).
    pub history: &'a [Message],
    /// `data:` URLs of images sent with the user turn.
    pub images: &'a [String],
}

#[derive(Clone, Copy, Debug)]
pub enum Input<'a> {
    Text(&'a str),
    /// Token ids (Completions' `prompt` as a list, SGLang's `input_ids`).
    Ids(&'a [u32]),
}

impl<'a> Parts<'a> {
    pub fn text(prompt: &'a str) -> Parts<'a> {
        Parts {
            input: Input::Text(prompt),
            history: &[],
            images: &[],
        }
    }

    fn prompt_value(&self) -> Value {
        match self.input {
            Input::Text(t) => Value::from(t),
            Input::Ids(ids) => Value::from(ids.to_vec()),
        }
    }

    fn text_or_empty(&self) -> &'a str {
        match self.input {
            Input::Text(t) => t,
            Input::Ids(_) => "",
        }
    }

    /// Chat messages: the history, then the user turn as a text part followed by one
    /// `image_url` part per image (vLLM's openai-chat order).
    fn chat_messages(&self) -> Value {
        let mut messages: Vec<Value> = self
            .history
            .iter()
            .map(|m| json!({"role": m.role, "content": m.content}))
            .collect();
        let mut content = vec![json!({"type": "text", "text": self.text_or_empty()})];
        content.extend(
            self.images
                .iter()
                .map(|url| json!({"type": "image_url", "image_url": {"url": url}})),
        );
        messages.push(json!({"role": "user", "content": content}));
        Value::Array(messages)
    }
}

/// Body of a streamed `/v1/completions` request:
/// `model, prompt, repetition_penalty, max_tokens, logprobs, stream, stream_options`, then
/// `ignore_eos` when set, then `extra_body` merged like Python's `dict.update` (a key that is
/// already there keeps its place and takes the new value; new keys go last).
pub fn completions_body(
    model: &str,
    prompt: &str,
    max_tokens: u32,
    ignore_eos: bool,
    extra_body: &Map<String, Value>,
) -> Vec<u8> {
    completions_map(
        model,
        Value::from(prompt),
        max_tokens,
        ignore_eos,
        extra_body,
    )
}

fn completions_map(
    model: &str,
    prompt: Value,
    max_tokens: u32,
    ignore_eos: bool,
    extra_body: &Map<String, Value>,
) -> Vec<u8> {
    let mut stream_options = Map::new();
    stream_options.insert("include_usage".into(), Value::Bool(true));

    let mut body = Map::new();
    body.insert("model".into(), Value::from(model));
    body.insert("prompt".into(), prompt);
    body.insert("repetition_penalty".into(), Value::from(1.0));
    body.insert("max_tokens".into(), Value::from(max_tokens));
    body.insert("logprobs".into(), Value::Null);
    body.insert("stream".into(), Value::Bool(true));
    body.insert("stream_options".into(), Value::Object(stream_options));
    if ignore_eos {
        body.insert("ignore_eos".into(), Value::Bool(true));
    }
    for (key, value) in extra_body {
        body.insert(key.clone(), value.clone());
    }
    // Display for Value cannot fail: keys are strings and floats are finite by construction.
    Value::Object(body).to_string().into_bytes()
}

/// The same body asking for one JSON reply: `"stream": false` in place, `stream_options`
/// dropped (OpenAI servers refuse it without streaming).
pub fn without_streaming(body: &[u8]) -> Vec<u8> {
    let Ok(Value::Object(mut map)) = serde_json::from_slice::<Value>(body) else {
        return body.to_vec();
    };
    map.insert("stream".into(), Value::Bool(false));
    map.shift_remove("stream_options");
    Value::Object(map).to_string().into_bytes()
}

/// The body of one streamed request in the format of `api`, with the keys in the order the
/// anchor clients send them, `ignore_eos` where the format has it, and `extra_body` merged
/// last (Python's `dict.update`).
pub fn request_body(
    api: Api,
    model: &str,
    lora: Option<&str>,
    prompt: &str,
    max_tokens: u32,
    ignore_eos: bool,
    extra_body: &Map<String, Value>,
) -> Vec<u8> {
    parts_body(
        api,
        model,
        lora,
        &Parts::text(prompt),
        max_tokens,
        ignore_eos,
        extra_body,
    )
}

/// [`request_body`] for a prompt with history, images or token ids. The caller has checked
/// that `api` can carry them (see `plan::parts_for`): text-only APIs take the text.
pub fn parts_body(
    api: Api,
    model: &str,
    lora: Option<&str>,
    parts: &Parts,
    max_tokens: u32,
    ignore_eos: bool,
    extra_body: &Map<String, Value>,
) -> Vec<u8> {
    let prompt = parts.text_or_empty();
    let mut body = Map::new();
    match api {
        Api::Completions => {
            return completions_map(
                model,
                parts.prompt_value(),
                max_tokens,
                ignore_eos,
                extra_body,
            )
        }
        Api::Chat => {
            // vLLM's openai-chat: the prompt as a text part, max_completion_tokens, usage.
            body.insert("model".into(), Value::from(model));
            body.insert("messages".into(), parts.chat_messages());
            body.insert("max_completion_tokens".into(), Value::from(max_tokens));
            body.insert("stream".into(), Value::Bool(true));
            body.insert("stream_options".into(), json!({"include_usage": true}));
            if ignore_eos {
                body.insert("ignore_eos".into(), Value::Bool(true));
            }
        }
        Api::Responses => {
            body.insert("model".into(), Value::from(model));
            let input = if parts.history.is_empty() {
                Value::from(prompt)
            } else {
                let mut turns: Vec<Value> = parts
                    .history
                    .iter()
                    .map(|m| json!({"role": m.role, "content": m.content}))
                    .collect();
                turns.push(json!({"role": "user", "content": prompt}));
                Value::Array(turns)
            };
            body.insert("input".into(), input);
            body.insert("max_output_tokens".into(), Value::from(max_tokens));
            body.insert("stream".into(), Value::Bool(true));
            body.insert("store".into(), Value::Bool(false));
            if ignore_eos {
                body.insert("ignore_eos".into(), Value::Bool(true));
            }
        }
        Api::SglangGenerate => {
            // SGLang's bench_serving for its native backend.
            match parts.input {
                Input::Text(t) => body.insert("text".into(), Value::from(t)),
                Input::Ids(ids) => body.insert("input_ids".into(), Value::from(ids.to_vec())),
            };
            body.insert(
                "sampling_params".into(),
                json!({"temperature": 0.0, "max_new_tokens": max_tokens, "ignore_eos": ignore_eos}),
            );
            body.insert("stream".into(), Value::Bool(true));
            body.insert("lora_path".into(), lora.map_or(Value::Null, Value::from));
            body.insert("return_logprob".into(), Value::Bool(false));
            body.insert("return_routed_experts".into(), Value::Bool(false));
            body.insert("logprob_start_len".into(), Value::from(-1));
            if !parts.images.is_empty() {
                body.insert("image_data".into(), Value::from(parts.images.to_vec()));
            }
        }
        Api::Tgi => {
            // vLLM's legacy tgi client.
            body.insert("inputs".into(), Value::from(prompt));
            body.insert(
                "parameters".into(),
                json!({"best_of": 1, "max_new_tokens": max_tokens, "do_sample": true,
                       "temperature": 0.01, "top_p": 0.99}),
            );
        }
        Api::Triton => {
            // SGLang's trt client; min_length/end_id make the server ignore EOS.
            body.insert("accumulate_tokens".into(), Value::Bool(true));
            body.insert("text_input".into(), Value::from(prompt));
            body.insert("temperature".into(), Value::from(1e-6));
            body.insert("top_p".into(), Value::from(1.0));
            body.insert("max_tokens".into(), Value::from(max_tokens));
            body.insert("stream".into(), Value::Bool(true));
            if ignore_eos {
                body.insert("min_length".into(), Value::from(max_tokens));
                body.insert("end_id".into(), Value::from(1_048_576));
            }
        }
        Api::Mii => {
            // vLLM's legacy deepspeed-mii client.
            body.insert("prompt".into(), Value::from(prompt));
            body.insert("max_tokens".into(), Value::from(max_tokens));
            body.insert("temperature".into(), Value::from(0.01));
            body.insert("top_p".into(), Value::from(1.0));
        }
    }
    for (key, value) in extra_body {
        body.insert(key.clone(), value.clone());
    }
    Value::Object(body).to_string().into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(bytes: &[u8]) -> Map<String, Value> {
        match serde_json::from_slice(bytes).unwrap() {
            Value::Object(m) => m,
            other => panic!("not an object: {other}"),
        }
    }

    #[test]
    fn keys_in_vllm_order() {
        let body = parse(&completions_body("m", "hi", 7, false, &Map::new()));
        let keys: Vec<&str> = body.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "model",
                "prompt",
                "repetition_penalty",
                "max_tokens",
                "logprobs",
                "stream",
                "stream_options"
            ]
        );
        assert_eq!(body["repetition_penalty"], Value::from(1.0));
        assert!(body["repetition_penalty"].is_f64());
        assert_eq!(body["max_tokens"], Value::from(7));
        assert_eq!(body["logprobs"], Value::Null);
        assert_eq!(body["stream_options"]["include_usage"], Value::Bool(true));
    }

    #[test]
    fn ignore_eos_follows_stream_options() {
        let body = parse(&completions_body("m", "hi", 7, true, &Map::new()));
        let keys: Vec<&str> = body.keys().map(String::as_str).collect();
        assert_eq!(keys[6..], ["stream_options", "ignore_eos"]);
        assert_eq!(body["ignore_eos"], Value::Bool(true));
    }

    #[test]
    fn every_api_names_its_token_limit_and_merges_extra_body_last() {
        let mut extra = Map::new();
        extra.insert("temperature".into(), Value::from(0.5));
        for (api, field) in [
            (Api::Chat, "max_completion_tokens"),
            (Api::Responses, "max_output_tokens"),
            (Api::Tgi, "parameters"),
            (Api::Triton, "max_tokens"),
            (Api::SglangGenerate, "sampling_params"),
        ] {
            let body = parse(&request_body(api, "m", None, "hi", 7, true, &extra));
            assert!(body.contains_key(field), "{api:?}: {body:?}");
            // dict.update: the given value wins; a new key goes last, an existing one stays.
            assert_eq!(body["temperature"], 0.5, "{api:?}");
            if api != Api::Triton {
                assert_eq!(
                    body.keys().next_back().map(String::as_str),
                    Some("temperature")
                );
            }
        }
        let chat = parse(&request_body(
            Api::Chat,
            "m",
            None,
            "hi",
            7,
            false,
            &Map::new(),
        ));
        assert_eq!(chat["messages"][0]["content"][0]["text"], "hi");
        assert_eq!(chat["max_completion_tokens"], 7);
        let sgl = parse(&request_body(
            Api::SglangGenerate,
            "m",
            None,
            "hi",
            7,
            true,
            &Map::new(),
        ));
        assert_eq!(sgl["sampling_params"]["max_new_tokens"], 7);
        assert_eq!(sgl["text"], "hi");
        let lora = parse(&request_body(
            Api::SglangGenerate,
            "m",
            Some("ad1"),
            "hi",
            7,
            true,
            &Map::new(),
        ));
        assert_eq!(lora["lora_path"], "ad1");
        let trt = parse(&request_body(
            Api::Triton,
            "m",
            None,
            "hi",
            7,
            true,
            &Map::new(),
        ));
        assert_eq!(
            (trt["min_length"].as_u64(), trt["text_input"].as_str()),
            (Some(7), Some("hi"))
        );
    }
}

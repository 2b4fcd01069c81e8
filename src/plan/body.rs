//! JSON request bodies, with the keys in the order `vllm bench serve` sends them.
//!
//! vLLM posts with aiohttp's `json=`, i.e. Python's `json.dumps` with its defaults: `", "` /
//! `": "` separators and non-ASCII escaped as `\uXXXX`. We send compact JSON with UTF-8 as
//! is; a server parses both to the same object, only the byte count differs.

use serde_json::{Map, Value};

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
    let mut stream_options = Map::new();
    stream_options.insert("include_usage".into(), Value::Bool(true));

    let mut body = Map::new();
    body.insert("model".into(), Value::from(model));
    body.insert("prompt".into(), Value::from(prompt));
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
}

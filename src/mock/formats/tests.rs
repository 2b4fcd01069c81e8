use serde_json::Value;

use super::*;

fn templates() -> Templates {
    Templates::new("m\"odel", 1)
}

fn opts(reasoning_tokens: u32, sglang_tokens_per_chunk: u32) -> Options {
    Options {
        reasoning_tokens,
        sglang_tokens_per_chunk,
        spec_decode_tokens: 0,
    }
}

fn reply(endpoint: Endpoint, body: &str, opts: Options) -> Reply {
    let req = parse(endpoint, body.as_bytes()).unwrap();
    Reply::new(&req, &templates(), opts, 7, 1234, Vec::new())
}

/// One SSE event of an unchunked body: its `event:` type, its data, or a comment.
#[derive(Debug)]
struct Event {
    kind: Option<String>,
    data: Option<String>,
    comment: bool,
}

fn events(bytes: &[u8]) -> Vec<Event> {
    let text = std::str::from_utf8(bytes).unwrap();
    assert!(text.is_empty() || text.ends_with("\n\n"), "{text:?}");
    text.split_terminator("\n\n")
        .map(|block| {
            let mut e = Event {
                kind: None,
                data: None,
                comment: false,
            };
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("event: ") {
                    e.kind = Some(v.to_string());
                } else if let Some(v) = line.strip_prefix("data:") {
                    e.data = Some(v.trim_start().to_string());
                } else if line.starts_with(':') {
                    e.comment = true;
                } else {
                    panic!("unexpected line {line:?}");
                }
            }
            e
        })
        .collect()
}

fn json(e: &Event) -> Value {
    serde_json::from_str(e.data.as_deref().unwrap()).unwrap()
}

/// The whole stream of `r` (unchunked), as events.
fn stream_of(r: &Reply) -> (Vec<Event>, Vec<Event>, Vec<Event>) {
    let mut head = Vec::new();
    r.push_head(&mut head, false);
    let mut body = Vec::new();
    let mut k = 0;
    while k < r.n {
        let end = r.event_end(k);
        r.push_event(&mut body, false, k, end);
        k = end;
    }
    let mut tail = Vec::new();
    r.push_tail(&mut tail, false);
    (events(&head), events(&body), events(&tail))
}

fn body_of(r: &Reply) -> Value {
    let mut body = Vec::new();
    r.push_body(&mut body);
    serde_json::from_slice(&body).unwrap()
}

fn words(n: u32) -> String {
    (0..n).map(cmpl::word).collect()
}

#[test]
fn chat_stream_and_body() {
    let body = r#"{"model":"x","messages":[{"role":"user","content":"hi"}],"max_completion_tokens":4,"max_tokens":9,"stream":true,"stream_options":{"include_usage":true}}"#;
    let mut r = reply(Endpoint::Chat, body, opts(1, 1));
    assert_eq!(r.n, 4);
    r.prompt_tokens = Some(3);
    let (head, tokens, tail) = stream_of(&r);
    assert_eq!(head.len(), 1);
    let role = json(&head[0]);
    assert_eq!(role["object"], "chat.completion.chunk");
    assert_eq!(role["id"], "chatcmpl-7");
    assert_eq!(role["model"], "m\"odel");
    assert_eq!(role["choices"][0]["delta"]["role"], "assistant");
    assert_eq!(tokens.len(), 4);
    let mut content = String::new();
    for (k, e) in tokens.iter().enumerate() {
        let v = json(e);
        let delta = &v["choices"][0]["delta"];
        let key = if k < 1 {
            "reasoning_content"
        } else {
            "content"
        };
        assert_eq!(delta.as_object().unwrap().len(), 1, "{v}");
        content.push_str(delta[key].as_str().unwrap());
        let finish = &v["choices"][0]["finish_reason"];
        assert_eq!(finish.as_str(), (k == 3).then_some("length"));
    }
    assert_eq!(content, words(4));
    assert_eq!(tail.len(), 2);
    let usage = json(&tail[0]);
    assert_eq!(usage["choices"], serde_json::json!([]));
    assert_eq!(usage["usage"]["total_tokens"], 7);
    assert_eq!(tail[1].data.as_deref(), Some("[DONE]"));

    let body = r#"{"messages":[{"role":"user","content":[{"type":"text","text":"a"}]}]}"#;
    let r = reply(Endpoint::Chat, body, opts(2, 1));
    let v = body_of(&r);
    assert_eq!(v["object"], "chat.completion");
    let message = &v["choices"][0]["message"];
    assert_eq!(message["reasoning_content"], words(2));
    assert_eq!(message["content"], words(16)[words(2).len()..]);
    assert_eq!(v["usage"]["completion_tokens"], 16);
    let v = body_of(&reply(Endpoint::Chat, body, opts(0, 1)));
    assert!(v["choices"][0]["message"]["reasoning_content"].is_null());
}

#[test]
fn conversation_text_is_collected() {
    let req = parse(
        Endpoint::Chat,
        br#"{"messages":[{"role":"system","content":"a"},{"role":"user","content":[{"type":"image_url","image_url":{"url":"x"}},{"type":"text","text":"b"}]},{"role":"assistant","content":null}]}"#,
    )
    .unwrap();
    assert_eq!(req.prompt, Prompt::Text("a\nb".into()));
    let req = parse(
        Endpoint::Responses,
        br#"{"input":[{"role":"user","content":[{"type":"input_text","text":"q"}]}]}"#,
    )
    .unwrap();
    assert_eq!(req.prompt, Prompt::Text("q".into()));
}

#[test]
fn responses_stream_and_body() {
    let mut r = reply(
        Endpoint::Responses,
        r#"{"input":"hi","max_output_tokens":3,"stream":true}"#,
        opts(0, 1),
    );
    r.prompt_tokens = Some(2);
    let (head, tokens, tail) = stream_of(&r);
    let kinds: Vec<&str> = head
        .iter()
        .chain(&tokens)
        .chain(&tail)
        .map(|e| e.kind.as_deref().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.content_part.added",
            "response.output_text.delta",
            "response.output_text.delta",
            "response.output_text.delta",
            "response.output_text.done",
            "response.content_part.done",
            "response.output_item.done",
            "response.completed",
        ]
    );
    let all: Vec<Value> = head.iter().chain(&tokens).chain(&tail).map(json).collect();
    for (seq, (v, kind)) in all.iter().zip(&kinds).enumerate() {
        assert_eq!(v["type"], *kind);
        assert_eq!(v["sequence_number"], seq);
    }
    assert_eq!(all[0]["response"]["status"], "in_progress");
    assert_eq!(all[0]["response"]["model"], "m\"odel");
    for (k, v) in all[4..7].iter().enumerate() {
        assert_eq!(v["delta"], cmpl::word(k as u32));
        assert_eq!(v["item_id"], "msg_7");
        assert_eq!(
            (v["output_index"].as_u64(), v["content_index"].as_u64()),
            (Some(0), Some(0))
        );
    }
    let done = &all[10]["response"];
    assert_eq!(done["status"], "completed");
    assert_eq!(done["output"][0]["content"][0]["text"], words(3));
    assert_eq!(done["usage"]["output_tokens"], 3);
    assert_eq!(done["usage"]["total_tokens"], 5);
    assert_eq!(body_of(&r), *done);
}

#[test]
fn sglang_chunks_are_cumulative() {
    let mut r = reply(
        Endpoint::Generate,
        r#"{"text":"hi","sampling_params":{"max_new_tokens":10,"ignore_eos":true},"stream":true}"#,
        opts(0, 4),
    );
    assert_eq!(r.api, Api::Sglang);
    assert!(r.groups_tokens());
    r.prompt_tokens = Some(5);
    let (head, chunks, tail) = stream_of(&r);
    assert!(head.is_empty());
    let counts: Vec<u64> = chunks
        .iter()
        .map(|e| json(e)["meta_info"]["completion_tokens"].as_u64().unwrap())
        .collect();
    assert_eq!(counts, [4, 8, 10]);
    for (e, n) in chunks.iter().zip(counts) {
        let v = json(e);
        assert_eq!(v["text"], words(n as u32));
        assert_eq!(v["output_ids"].as_array().unwrap().len() as u64, n);
        assert_eq!(v["meta_info"]["prompt_tokens"], 5);
        assert_eq!(v["meta_info"]["cached_tokens"], 0);
        assert_eq!(v["meta_info"]["id"].as_str().unwrap().len(), 32);
        if n == 10 {
            assert_eq!(v["meta_info"]["finish_reason"]["type"], "length");
            assert_eq!(v["meta_info"]["finish_reason"]["length"], 10);
        } else {
            assert!(v["meta_info"]["finish_reason"].is_null());
        }
    }
    assert_eq!(tail.len(), 1);
    assert_eq!(tail[0].data.as_deref(), Some("[DONE]"));
    assert_eq!(body_of(&r), json(&chunks[2]));

    let r = reply(Endpoint::Generate, r#"{"input_ids":[1,2,3]}"#, opts(0, 1));
    assert_eq!((r.api, r.n, r.event_end(3)), (Api::Sglang, 16, 4));
    assert!(!r.groups_tokens());
}

#[test]
fn tgi_events_and_body() {
    let r = reply(
        Endpoint::TgiStream,
        r#"{"inputs":"hi","parameters":{"max_new_tokens":3,"do_sample":true}}"#,
        opts(0, 1),
    );
    let mut raw = Vec::new();
    r.push_event(&mut raw, false, 0, 1);
    assert!(raw.starts_with(b"data:{\"index\":1,"));
    let (head, tokens, tail) = stream_of(&r);
    assert!(head.is_empty() && tail.is_empty());
    for (k, e) in tokens.iter().enumerate() {
        let v = json(e);
        assert_eq!(v["index"], k + 1);
        assert_eq!(v["token"]["text"], cmpl::word(k as u32));
        assert_eq!(v["token"]["special"], false);
        if k == 2 {
            assert_eq!(v["generated_text"], words(3));
            assert_eq!(v["details"]["generated_tokens"], 3);
            assert_eq!(v["details"]["finish_reason"], "length");
        } else {
            assert!(v["generated_text"].is_null() && v["details"].is_null());
        }
    }
    let r = reply(
        Endpoint::Generate,
        r#"{"inputs":"hi","stream":true}"#,
        opts(0, 1),
    );
    assert_eq!(r.api, Api::Tgi);
    let req = parse(Endpoint::Generate, br#"{"inputs":"hi","stream":true}"#).unwrap();
    assert!(!req.stream, "TGI's /generate never streams");
    assert_eq!(body_of(&r)["generated_text"], words(16));
}

#[test]
fn triton_and_mii() {
    let r = reply(
        Endpoint::Triton { stream: true },
        r#"{"accumulate_tokens":true,"text_input":"x","max_tokens":2,"stream":true,"end_id":1048576}"#,
        opts(0, 1),
    );
    let (head, tokens, tail) = stream_of(&r);
    assert!(head.len() == 1 && head[0].comment && head[0].data.is_none());
    assert!(tail.is_empty());
    for (k, e) in tokens.iter().enumerate() {
        let v = json(e);
        assert_eq!(v["text_output"], cmpl::word(k as u32));
        assert_eq!(v["model_name"], "ensemble");
        assert_eq!(v["sequence_end"], false);
    }
    assert_eq!(body_of(&r)["text_output"], words(2));

    let r = reply(
        Endpoint::Mii,
        r#"{"prompt":"p","max_tokens":5}"#,
        opts(0, 1),
    );
    assert_eq!(body_of(&r), serde_json::json!({ "text": [words(5)] }));
}

#[test]
fn bad_requests_name_the_field() {
    for (endpoint, body, named) in [
        (Endpoint::Chat, r#"{"messages":"hi"}"#, "messages"),
        (Endpoint::Chat, r#"{"messages":[]}"#, "messages"),
        (Endpoint::Chat, r#"{"messages":[{"content":5}]}"#, "content"),
        (
            Endpoint::Chat,
            r#"{"messages":[{"content":[{"text":1}]}]}"#,
            "text",
        ),
        (Endpoint::Chat, r#"{"prompt":"x"}"#, "messages"),
        (
            Endpoint::Chat,
            r#"{"messages":[{"content":"a"}],"max_completion_tokens":0}"#,
            "max_completion_tokens",
        ),
        (
            Endpoint::Chat,
            r#"{"messages":[{"content":"a"}],"max_tokens":"3"}"#,
            "max_tokens",
        ),
        (
            Endpoint::Chat,
            r#"{"messages":[{"content":"a"}],"stream":1}"#,
            "stream",
        ),
        (
            Endpoint::Chat,
            r#"{"messages":[{"content":"a"}],"stream_options":{"include_usage":"y"}}"#,
            "include_usage",
        ),
        (Endpoint::Responses, r#"{"input":5}"#, "input"),
        (
            Endpoint::Responses,
            r#"{"input":"a","max_output_tokens":1000001000}"#,
            "max_output_tokens",
        ),
        (
            Endpoint::Generate,
            r#"{"text":"a","sampling_params":{"max_new_tokens":0}}"#,
            "max_new_tokens",
        ),
        (
            Endpoint::Generate,
            r#"{"text":"a","sampling_params":{"max_new_tokens":-1}}"#,
            "max_new_tokens",
        ),
        (Endpoint::Generate, r#"{"text":[1,2]}"#, "text"),
        (Endpoint::Generate, r#"{"text":5}"#, "text"),
        (Endpoint::Generate, r#"{"input_ids":"a"}"#, "input_ids"),
        (
            Endpoint::Generate,
            r#"{"text":"a","input_ids":[1]}"#,
            "input_ids",
        ),
        (Endpoint::Generate, r#"{}"#, "inputs"),
        (Endpoint::Generate, r#"{"inputs":3}"#, "inputs"),
        (
            Endpoint::Generate,
            r#"{"inputs":"a","parameters":{"max_new_tokens":2000000}}"#,
            "max_new_tokens",
        ),
        (Endpoint::TgiStream, r#"{"text":"a"}"#, "inputs"),
        (
            Endpoint::Triton { stream: true },
            r#"{"max_tokens":3}"#,
            "text_input",
        ),
        (
            Endpoint::Triton { stream: true },
            r#"{"text_input":"a","max_tokens":0}"#,
            "max_tokens",
        ),
        (Endpoint::Mii, r#"{"prompt":[1,2]}"#, "prompt"),
        (
            Endpoint::Mii,
            r#"{"prompt":"a","max_tokens":true}"#,
            "max_tokens",
        ),
        (
            Endpoint::Completions,
            r#"{"prompt":"a","max_tokens":0}"#,
            "max_tokens",
        ),
        (Endpoint::Mii, "{", "EOF"),
    ] {
        match parse(endpoint, body.as_bytes()) {
            Ok(req) => panic!("{body} accepted as {req:?}"),
            Err(e) => assert!(e.contains(named), "{body}: {e}"),
        }
    }
}

#[test]
fn chunked_framing_matches_unchunked() {
    let mut r = reply(
        Endpoint::Generate,
        r#"{"text":"a","sampling_params":{"max_new_tokens":3},"stream":true}"#,
        opts(0, 1),
    );
    r.prompt_tokens = None;
    let (mut plain, mut chunked) = (Vec::new(), Vec::new());
    r.push_event(&mut plain, false, 0, 1);
    r.push_event(&mut chunked, true, 0, 1);
    let text = std::str::from_utf8(&chunked).unwrap();
    let (size, rest) = text.split_once("\r\n").unwrap();
    assert_eq!(usize::from_str_radix(size, 16).unwrap(), plain.len());
    assert_eq!(&rest.as_bytes()[..plain.len()], &plain[..]);
    assert!(json(&events(&plain)[0])["meta_info"]
        .get("prompt_tokens")
        .is_none());
}

//! Every backend wire format of the mock over real sockets: event shapes, token counts,
//! timing, the truth log, `/generate` dispatch, errors and the control endpoints.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use servebench::mock::{spawn, MockArgs, MockHandle};

const TTFT_MS: u64 = 30;
const ITL_MS: u64 = 10;

fn mock_with(args: MockArgs) -> MockHandle {
    spawn(&MockArgs {
        port: 0,
        ttft_ms: TTFT_MS as f64,
        itl_ms: ITL_MS as f64,
        ..args
    })
    .expect("mock starts")
}

fn mock() -> MockHandle {
    mock_with(MockArgs::default())
}

/// One SSE event as a client sees it.
#[derive(Debug)]
struct Event {
    at: Instant,
    /// The `event:` line's value.
    kind: Option<String>,
    /// The `data:` line's value (leading space stripped).
    data: Option<String>,
    /// A `:` comment line was seen.
    comment: bool,
}

impl Event {
    fn json(&self) -> Value {
        let data = self.data.as_deref().expect("a data line");
        serde_json::from_str(data).unwrap_or_else(|e| panic!("{data}: {e}"))
    }
}

struct Response {
    status: u16,
    content_type: String,
    body: Vec<u8>,
    events: Vec<Event>,
    sent: Instant,
}

impl Response {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }

    /// Events that carry data (comments left out).
    fn data_events(&self) -> Vec<&Event> {
        self.events.iter().filter(|e| e.data.is_some()).collect()
    }
}

fn read_line(conn: &mut BufReader<TcpStream>) -> String {
    let mut line = String::new();
    conn.read_line(&mut line).unwrap();
    assert!(line.ends_with("\r\n"), "{line:?}");
    line.truncate(line.len() - 2);
    line
}

fn parse_event(block: &str, at: Instant) -> Event {
    let mut e = Event {
        at,
        kind: None,
        data: None,
        comment: false,
    };
    for line in block.split('\n') {
        if let Some(v) = line.strip_prefix("event:") {
            e.kind = Some(v.trim_start().to_string());
        } else if let Some(v) = line.strip_prefix("data:") {
            assert!(e.data.is_none(), "one data line per event: {block:?}");
            e.data = Some(v.strip_prefix(' ').unwrap_or(v).to_string());
        } else if line.starts_with(':') {
            e.comment = true;
        } else {
            panic!("unexpected SSE line {line:?}");
        }
    }
    e
}

/// Sends `body` to `path` (with `extra` header lines) and reads the whole response.
fn request(addr: SocketAddr, method: &str, path: &str, body: &str, extra: &str) -> Response {
    let mut conn = BufReader::new(TcpStream::connect(addr).unwrap());
    conn.get_ref()
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let raw = format!(
        "{method} {path} HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n{extra}Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let sent = Instant::now();
    conn.get_mut().write_all(raw.as_bytes()).unwrap();
    let status: u16 = read_line(&mut conn)[9..12].parse().unwrap();
    let (mut length, mut chunked, mut content_type) = (None, false, String::new());
    loop {
        let line = read_line(&mut conn);
        if line.is_empty() {
            break;
        }
        let (name, value) = line.split_once(':').unwrap();
        match name.to_ascii_lowercase().as_str() {
            "content-length" => length = Some(value.trim().parse::<usize>().unwrap()),
            "transfer-encoding" => chunked = value.trim() == "chunked",
            "content-type" => content_type = value.trim().to_string(),
            _ => {}
        }
    }
    let mut r = Response {
        status,
        content_type,
        body: Vec::new(),
        events: Vec::new(),
        sent,
    };
    if let Some(len) = length {
        r.body = vec![0; len];
        conn.read_exact(&mut r.body).unwrap();
        return r;
    }
    assert!(chunked, "neither Content-Length nor chunked");
    let mut pending = Vec::new();
    loop {
        let size = usize::from_str_radix(&read_line(&mut conn), 16).unwrap();
        let mut chunk = vec![0; size + 2];
        conn.read_exact(&mut chunk).unwrap();
        let at = Instant::now();
        if size == 0 {
            break;
        }
        pending.extend_from_slice(&chunk[..size]);
        while let Some(end) = pending.windows(2).position(|w| w == b"\n\n") {
            let block: Vec<u8> = pending.drain(..end + 2).collect();
            let block = String::from_utf8(block).unwrap();
            r.events.push(parse_event(&block[..block.len() - 2], at));
        }
    }
    assert!(pending.is_empty(), "bytes after the last event");
    r
}

fn post(addr: SocketAddr, path: &str, body: &str) -> Response {
    request(addr, "POST", path, body, "")
}

fn words(n: usize) -> String {
    const WORDS: [&str; 4] = [" the", " quick", " over", " dog"];
    assert!(n <= WORDS.len());
    WORDS[..n].concat()
}

/// The token events arrive on the latency model: the first no earlier than TTFT after the
/// request, the gaps about ITL each (late by at most a generous scheduling margin).
fn assert_timing(sent: Instant, token_events: &[&Event], tokens_per_event: u64) {
    let first = token_events[0].at - sent;
    assert!(first >= Duration::from_millis(TTFT_MS + (tokens_per_event - 1) * ITL_MS));
    assert!(first < Duration::from_millis(TTFT_MS + 300), "{first:?}");
    for pair in token_events.windows(2) {
        let gap = pair[1].at - pair[0].at;
        let want = Duration::from_millis(ITL_MS * tokens_per_event);
        // The client stamps arrivals, so a gap may shrink by scheduling jitter, not grow much.
        assert!(gap + Duration::from_millis(5) >= want, "{gap:?}");
        assert!(gap < want + Duration::from_millis(200), "{gap:?}");
    }
}

#[test]
fn chat_streams_role_tokens_usage_done() {
    let m = mock();
    let body = r#"{"model":"x","messages":[{"role":"user","content":[{"type":"text","text":"hi"}]}],"max_completion_tokens":4,"stream":true,"stream_options":{"include_usage":true},"ignore_eos":true}"#;
    let r = post(m.addr(), "/v1/chat/completions", body);
    assert_eq!(
        (r.status, r.content_type.as_str()),
        (200, "text/event-stream")
    );
    let ev = r.data_events();
    assert_eq!(ev.len(), 1 + 4 + 1 + 1, "role, tokens, usage, [DONE]");
    let role = ev[0].json();
    assert_eq!(role["object"], "chat.completion.chunk");
    assert!(role["id"].as_str().unwrap().starts_with("chatcmpl-"));
    assert_eq!(role["model"], "servebench-mock");
    assert_eq!(
        role["choices"][0]["delta"],
        json!({"role": "assistant", "content": ""})
    );
    let mut text = String::new();
    for (k, e) in ev[1..5].iter().enumerate() {
        let v = e.json();
        assert_eq!(v["id"], role["id"]);
        text.push_str(v["choices"][0]["delta"]["content"].as_str().unwrap());
        let finish = v["choices"][0]["finish_reason"].as_str();
        assert_eq!(finish, (k == 3).then_some("length"));
    }
    assert_eq!(text, words(4));
    let usage = ev[5].json();
    assert_eq!(usage["choices"], json!([]));
    assert_eq!(usage["usage"]["completion_tokens"], 4);
    assert_eq!(ev[6].data.as_deref(), Some("[DONE]"));
    assert_timing(r.sent, &ev[1..5], 1);
    // The role chunk went out with the head, before the first token was due.
    assert!(ev[0].at - r.sent < Duration::from_millis(TTFT_MS));

    let body = r#"{"messages":[{"role":"user","content":"hi"}],"max_tokens":3}"#;
    let r = post(m.addr(), "/v1/chat/completions", body);
    assert!(r.sent.elapsed() >= Duration::from_millis(TTFT_MS + 2 * ITL_MS));
    let v = r.json();
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(v["choices"][0]["message"]["content"], words(3));
    assert_eq!(v["choices"][0]["finish_reason"], "length");
    assert_eq!(v["usage"]["completion_tokens"], 3);
}

#[test]
fn chat_reasoning_tokens_come_first() {
    let m = mock_with(MockArgs {
        reasoning_tokens: 2,
        ..MockArgs::default()
    });
    let body = r#"{"messages":[{"role":"user","content":"hi"}],"max_tokens":4,"stream":true}"#;
    let r = post(m.addr(), "/v1/chat/completions", body);
    let ev = r.data_events();
    assert_eq!(
        ev.len(),
        6,
        "role, 4 tokens, [DONE] (no usage unless asked)"
    );
    let deltas: Vec<Value> = ev[1..5]
        .iter()
        .map(|e| e.json()["choices"][0]["delta"].clone())
        .collect();
    assert_eq!(deltas[0], json!({"reasoning_content": " the"}));
    assert_eq!(deltas[1], json!({"reasoning_content": " quick"}));
    assert_eq!(deltas[2], json!({"content": " over"}));
    assert_eq!(deltas[3], json!({"content": " dog"}));
    let body = r#"{"messages":[{"role":"user","content":"hi"}],"max_tokens":3}"#;
    let v = post(m.addr(), "/v1/chat/completions", body).json();
    assert_eq!(v["choices"][0]["message"]["reasoning_content"], words(2));
    assert_eq!(v["choices"][0]["message"]["content"], " over");
}

#[test]
fn responses_stream_typed_events() {
    let m = mock();
    let body = r#"{"model":"x","input":"hi","max_output_tokens":3,"stream":true,"store":false}"#;
    let r = post(m.addr(), "/v1/responses", body);
    assert_eq!(r.status, 200);
    let kinds: Vec<&str> = r
        .events
        .iter()
        .map(|e| e.kind.as_deref().unwrap())
        .collect();
    assert_eq!(kinds[0], "response.created");
    assert_eq!(kinds.last(), Some(&"response.completed"));
    let deltas: Vec<&Event> = r
        .events
        .iter()
        .filter(|e| e.kind.as_deref() == Some("response.output_text.delta"))
        .collect();
    assert_eq!(deltas.len(), 3);
    let mut seq = Vec::new();
    for e in &r.events {
        let v = e.json();
        assert_eq!(v["type"].as_str(), e.kind.as_deref(), "type matches event:");
        seq.push(v["sequence_number"].as_u64().unwrap());
    }
    assert_eq!(seq, (0..r.events.len() as u64).collect::<Vec<_>>());
    let mut text = String::new();
    for e in &deltas {
        let v = e.json();
        assert_eq!(
            (v["output_index"].as_u64(), v["content_index"].as_u64()),
            (Some(0), Some(0))
        );
        assert!(v["item_id"].as_str().unwrap().starts_with("msg_"));
        text.push_str(v["delta"].as_str().unwrap());
    }
    assert_eq!(text, words(3));
    assert!(r.events.iter().all(|e| e.data.as_deref() != Some("[DONE]")));
    let done = r.events.last().unwrap().json();
    assert_eq!(done["response"]["status"], "completed");
    assert_eq!(done["response"]["usage"]["output_tokens"], 3);
    assert_eq!(
        done["response"]["output"][0]["content"][0]["text"],
        words(3)
    );
    assert_timing(r.sent, &deltas, 1);

    let r = post(
        m.addr(),
        "/v1/responses",
        r#"{"input":[{"role":"user","content":"hi"}],"max_output_tokens":2}"#,
    );
    let v = r.json();
    assert_eq!(v["object"], "response");
    assert_eq!(v["output"][0]["content"][0]["text"], words(2));
    assert_eq!(v["usage"]["output_tokens"], 2);
}

#[test]
fn sglang_generate_is_cumulative() {
    let m = mock();
    let body = r#"{"text":"hi","sampling_params":{"temperature":0.0,"max_new_tokens":4,"ignore_eos":true},"stream":true,"lora_path":null,"return_logprob":false,"logprob_start_len":-1}"#;
    let r = post(m.addr(), "/generate", body);
    let ev = r.data_events();
    assert_eq!(ev.len(), 5, "4 chunks, [DONE]");
    for (k, e) in ev[..4].iter().enumerate() {
        let v = e.json();
        assert_eq!(v["text"], words(k + 1), "cumulative text");
        assert_eq!(v["output_ids"].as_array().unwrap().len(), k + 1);
        let meta = &v["meta_info"];
        assert_eq!(meta["completion_tokens"], k + 1);
        assert_eq!(meta["cached_tokens"], 0);
        assert!(
            meta.get("prompt_tokens").is_none(),
            "text prompts are not counted"
        );
        if k == 3 {
            assert_eq!(
                meta["finish_reason"],
                json!({"type": "length", "length": 4})
            );
        } else {
            assert!(meta["finish_reason"].is_null());
        }
    }
    assert_eq!(ev[4].data.as_deref(), Some("[DONE]"));
    assert_timing(r.sent, &ev[..4], 1);

    let r = post(
        m.addr(),
        "/generate",
        r#"{"input_ids":[5,6,7],"sampling_params":{"max_new_tokens":2}}"#,
    );
    let v = r.json();
    assert_eq!(v["text"], words(2));
    assert_eq!(v["meta_info"]["prompt_tokens"], 3);
    assert_eq!(v["meta_info"]["completion_tokens"], 2);
}

#[test]
fn sglang_tokens_per_chunk_groups_tokens() {
    let m = mock_with(MockArgs {
        sglang_tokens_per_chunk: 4,
        ..MockArgs::default()
    });
    let body = r#"{"input_ids":[1,2],"sampling_params":{"max_new_tokens":10},"stream":true}"#;
    let r = post(m.addr(), "/generate", body);
    let ev = r.data_events();
    let counts: Vec<u64> = ev[..ev.len() - 1]
        .iter()
        .map(|e| e.json()["meta_info"]["completion_tokens"].as_u64().unwrap())
        .collect();
    assert_eq!(counts, [4, 8, 10]);
    assert_eq!(ev[0].json()["meta_info"]["prompt_tokens"], 2);
    // Each chunk goes out when its last token is due.
    assert!(ev[0].at - r.sent >= Duration::from_millis(TTFT_MS + 3 * ITL_MS));
    assert!(ev[1].at - ev[0].at + Duration::from_millis(5) >= Duration::from_millis(4 * ITL_MS));
    assert!(ev[2].at - r.sent >= Duration::from_millis(TTFT_MS + 9 * ITL_MS));
}

#[test]
fn tgi_generate_stream_and_dispatch_by_body() {
    let m = mock();
    let body = r#"{"inputs":"hi","parameters":{"best_of":1,"max_new_tokens":3,"do_sample":true,"temperature":0.01,"top_p":0.99}}"#;
    let r = post(m.addr(), "/generate_stream", body);
    let ev = r.data_events();
    assert_eq!(ev.len(), 3, "one per token, no [DONE]");
    for (k, e) in ev.iter().enumerate() {
        let v = e.json();
        assert_eq!(v["index"], k + 1);
        assert_eq!(v["token"]["text"], words(k + 1)[words(k).len()..]);
        assert_eq!(v["token"]["special"], false);
        assert!(v["token"]["id"].is_u64());
        if k == 2 {
            assert_eq!(v["generated_text"], words(3));
            assert_eq!(v["details"]["finish_reason"], "length");
            assert_eq!(v["details"]["generated_tokens"], 3);
        } else {
            assert!(v["generated_text"].is_null() && v["details"].is_null());
        }
    }
    assert_timing(r.sent, &ev, 1);

    // /generate: `inputs` is TGI (a TGI body), `text` is SGLang (an SGLang body).
    let tgi = post(
        m.addr(),
        "/generate",
        r#"{"inputs":"hi","parameters":{"max_new_tokens":2}}"#,
    );
    assert!(tgi.sent.elapsed() >= Duration::from_millis(TTFT_MS + ITL_MS));
    let v = tgi.json();
    assert_eq!(v["generated_text"], words(2));
    assert!(v.get("meta_info").is_none());
    let v = post(
        m.addr(),
        "/generate",
        r#"{"text":"hi","sampling_params":{"max_new_tokens":2}}"#,
    )
    .json();
    assert_eq!(v["text"], words(2));
    assert!(v.get("generated_text").is_none());
}

#[test]
fn triton_sends_a_comment_then_tokens() {
    let m = mock();
    let body = r#"{"accumulate_tokens":true,"text_input":"hi","temperature":1e-6,"top_p":1.0,"max_tokens":4,"stream":true,"min_length":4,"end_id":1048576}"#;
    let r = post(m.addr(), "/v2/models/ensemble/generate_stream", body);
    assert!(
        r.events[0].comment && r.events[0].data.is_none(),
        "{:?}",
        r.events[0]
    );
    assert!(r.events[0].at - r.sent < Duration::from_millis(TTFT_MS));
    let ev = r.data_events();
    assert_eq!(ev.len(), 4, "no [DONE]");
    let mut text = String::new();
    for e in &ev {
        let v = e.json();
        assert_eq!(v["model_name"], "ensemble");
        assert_eq!(v["model_version"], "1");
        assert_eq!(v["sequence_end"], false);
        text.push_str(v["text_output"].as_str().unwrap());
    }
    assert_eq!(text, words(4));
    assert_timing(r.sent, &ev, 1);
}

#[test]
fn mii_and_truss() {
    let m = mock();
    let r = post(
        m.addr(),
        "/mii/benchmark",
        r#"{"prompt":"hi","max_tokens":3,"temperature":0.01,"top_p":1.0}"#,
    );
    assert!(r.sent.elapsed() >= Duration::from_millis(TTFT_MS + 2 * ITL_MS));
    assert_eq!(r.json(), json!({ "text": [words(3)] }));

    let body = r#"{"model":"x","prompt":"hi","max_tokens":3,"stream":true}"#;
    let r = post(m.addr(), "/v1/models/model:predict", body);
    let ev = r.data_events();
    assert_eq!(ev.len(), 4, "3 tokens, [DONE]");
    let text: String = ev[..3]
        .iter()
        .map(|e| e.json()["choices"][0]["text"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(text, words(3));
    assert_eq!(ev[0].json()["object"], "text_completion");
    assert_timing(r.sent, &ev[..3], 1);
}

#[test]
fn bad_requests_get_400_naming_the_field() {
    let m = mock();
    for (path, body, named) in [
        (
            "/v1/chat/completions",
            r#"{"messages":[{"role":"user","content":"a"}],"max_completion_tokens":0}"#,
            "max_completion_tokens",
        ),
        ("/v1/chat/completions", r#"{"messages":{}}"#, "messages"),
        (
            "/v1/responses",
            r#"{"input":"a","max_output_tokens":2000000}"#,
            "max_output_tokens",
        ),
        (
            "/generate",
            r#"{"text":"a","sampling_params":{"max_new_tokens":"4"}}"#,
            "max_new_tokens",
        ),
        ("/generate", r#"{"prompt":"a"}"#, "inputs"),
        (
            "/generate_stream",
            r#"{"inputs":"a","parameters":{"max_new_tokens":0}}"#,
            "max_new_tokens",
        ),
        (
            "/v2/models/ensemble/generate_stream",
            r#"{"text_input":7}"#,
            "text_input",
        ),
        (
            "/mii/benchmark",
            r#"{"prompt":"a","max_tokens":-1}"#,
            "max_tokens",
        ),
        (
            "/v1/models/model:predict",
            r#"{"prompt":"a","stream":"yes"}"#,
            "stream",
        ),
        ("/v1/chat/completions", "not json", "chat"),
    ] {
        let r = post(m.addr(), path, body);
        assert_eq!(r.status, 400, "{path} {body}");
        let v = r.json();
        assert_eq!(v["error"]["type"], "BadRequestError");
        assert_eq!(v["error"]["code"], 400);
        let message = v["error"]["message"].as_str().unwrap();
        assert!(message.contains(named), "{path} {body}: {message}");
    }
}

#[test]
fn control_calls_and_tokenize() {
    let m = mock();
    for path in [
        "/reset_prefix_cache",
        "/flush_cache",
        "/start_profile",
        "/stop_profile",
    ] {
        for method in ["POST", "GET"] {
            let r = request(m.addr(), method, path, "{}", "");
            assert_eq!(r.status, 200, "{method} {path}");
            assert_eq!(r.json()["status"], "ok");
        }
    }
    let r = post(m.addr(), "/tokenize", r#"{"prompt":"hello world"}"#);
    assert_eq!(r.status, 501);
    let message = r.json()["error"]["message"].as_str().unwrap().to_string();
    assert!(message.contains("--tokenizer"), "{message}");

    let r = request(m.addr(), "GET", "/nowhere", "", "");
    assert_eq!(r.status, 404);
    let message = r.json()["error"]["message"].as_str().unwrap().to_string();
    for route in [
        "/v1/chat/completions",
        "/v1/responses",
        "/generate_stream",
        "/mii/benchmark",
        "/tokenize",
        "/v1/models/model:predict",
    ] {
        assert!(message.contains(route), "{route} missing from {message}");
    }

    let m = mock_with(MockArgs {
        count_prompt_tokens: true,
        ..MockArgs::default()
    });
    let tok = tokenizers::Tokenizer::from_bytes(include_bytes!("../assets/default-tokenizer.json"))
        .unwrap();
    for text in [
        "hello world".to_string(),
        "The quick brown fox. ".repeat(100),
    ] {
        let body = json!({ "prompt": text }).to_string();
        let r = post(m.addr(), "/tokenize", &body);
        assert_eq!(r.status, 200);
        let v = r.json();
        let want = tok.encode(text.as_str(), false).unwrap().get_ids().to_vec();
        assert_eq!(v["count"], want.len());
        assert_eq!(v["tokens"], json!(want));
        assert!(v["max_model_len"].as_u64().unwrap() > 0);
    }
    assert_eq!(post(m.addr(), "/tokenize", r#"{"prompt":1}"#).status, 400);
    // Counting on: SGLang's chunks carry the prompt's count.
    let r = post(
        m.addr(),
        "/generate",
        r#"{"text":"hello world","sampling_params":{"max_new_tokens":1},"stream":true}"#,
    );
    let want = tok.encode("hello world", false).unwrap().len();
    assert_eq!(
        r.data_events()[0].json()["meta_info"]["prompt_tokens"],
        want
    );
}

/// One streamed request of each format, each named by its x-request-id, and the truth log's
/// record of it: one event time per token event written (per chunk for grouped SGLang).
#[test]
fn truth_log_has_one_event_per_token_event_for_every_format() {
    let path = std::env::temp_dir().join(format!(
        "servebench-backends-truth-{}.jsonl",
        std::process::id()
    ));
    let m = mock_with(MockArgs {
        truth_log: Some(path.clone()),
        sglang_tokens_per_chunk: 3,
        ..MockArgs::default()
    });
    let cases: [(&str, &str, &str, usize); 7] = [
        (
            "chat",
            "/v1/chat/completions",
            r#"{"messages":[{"role":"user","content":"a"}],"max_tokens":4,"stream":true,"stream_options":{"include_usage":true}}"#,
            4,
        ),
        (
            "responses",
            "/v1/responses",
            r#"{"input":"a","max_output_tokens":4,"stream":true}"#,
            4,
        ),
        (
            "sglang",
            "/generate",
            r#"{"text":"a","sampling_params":{"max_new_tokens":7},"stream":true}"#,
            3,
        ),
        (
            "tgi",
            "/generate_stream",
            r#"{"inputs":"a","parameters":{"max_new_tokens":4}}"#,
            4,
        ),
        (
            "triton",
            "/v2/models/ensemble/generate_stream",
            r#"{"text_input":"a","max_tokens":4,"stream":true}"#,
            4,
        ),
        (
            "truss",
            "/v1/models/model:predict",
            r#"{"prompt":"a","max_tokens":4,"stream":true}"#,
            4,
        ),
        (
            "mii",
            "/mii/benchmark",
            r#"{"prompt":"a","max_tokens":4}"#,
            0,
        ),
    ];
    for (id, route, body, _) in cases {
        let r = request(
            m.addr(),
            "POST",
            route,
            body,
            &format!("x-request-id: {id}\r\n"),
        );
        assert_eq!(r.status, 200, "{id}");
    }
    assert_eq!(m.shutdown().unwrap(), Some(cases.len() as u64));
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    let records: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    for (id, _, _, events) in cases {
        let rec = records
            .iter()
            .find(|r| r["request_id"] == id)
            .unwrap_or_else(|| panic!("no record for {id}"));
        let event_ns = rec["event_ns"].as_array().unwrap();
        assert_eq!(event_ns.len(), events, "{id}: {rec}");
        assert_eq!(rec["stream"], id != "mii");
        let read = rec["read_ns"].as_u64().unwrap();
        let ns: Vec<u64> = event_ns.iter().map(|n| n.as_u64().unwrap()).collect();
        if let Some(&first) = ns.first() {
            assert!(first >= read + TTFT_MS * 1_000_000, "{id}");
        }
        assert!(
            ns.windows(2)
                .all(|w| w[1] >= w[0] + ITL_MS * 1_000_000 - 1_000_000),
            "{id}: {ns:?}"
        );
        if id == "sglang" {
            assert_eq!(rec["event_tokens"], json!([3, 3, 1]));
            let keys: Vec<&String> = rec.as_object().unwrap().keys().collect();
            assert_eq!(keys.last().map(|k| k.as_str()), Some("event_tokens"));
        } else {
            assert!(rec.get("event_tokens").is_none(), "{id}: {rec}");
        }
    }
}

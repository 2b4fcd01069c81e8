//! Every non-Completions stream format, in the shape real servers send it, fed through the
//! response parser whole, split at every byte boundary and one byte at a time: the decoded
//! events must be the same every way.

use proptest::prelude::*;
use servebench::backend::Api;
use servebench::proto::{
    decode_completion_event, decode_stream_event, decode_whole_body, unescape_into,
    CompletionEvent, Event, Progress, ResponseParser, StreamEvent,
};

#[derive(Debug, Clone, PartialEq)]
enum Seen {
    Token(String, Option<u64>),
    Usage(Option<u64>, Option<u64>),
    Done,
    Error(String),
    Other,
}

fn decode(api: Api, event: &[u8], data: &[u8]) -> Seen {
    match decode_stream_event(api, event, data).expect("event decodes") {
        StreamEvent::Token {
            text,
            tokens_so_far,
            ..
        } => {
            let mut s = String::new();
            unescape_into(text.as_bytes(), &mut s).expect("text unescapes");
            Seen::Token(s, tokens_so_far)
        }
        StreamEvent::Usage(u) => Seen::Usage(u.prompt_tokens, u.completion_tokens),
        StreamEvent::Done => Seen::Done,
        StreamEvent::Error(m) => Seen::Error(m),
        StreamEvent::Other => Seen::Other,
    }
}

fn feed(api: Api, input: &[u8], cuts: &[usize]) -> Vec<Seen> {
    let mut parser = ResponseParser::new();
    let mut seen = Vec::new();
    let mut start = 0;
    for cut in cuts.iter().copied().chain(std::iter::once(input.len())) {
        let part = &input[start..cut];
        let progress = parser
            .feed(part, &mut |e| {
                if let Event::Sse(sse) = e {
                    seen.push(decode(api, sse.event, sse.data));
                }
            })
            .expect("response parses");
        if let Progress::Done { .. } = progress {
            return seen;
        }
        start = cut;
    }
    panic!("response did not complete");
}

fn assert_split_invariant(api: Api, input: &[u8]) -> Vec<Seen> {
    let expected = feed(api, input, &[]);
    for i in 0..=input.len() {
        assert_eq!(feed(api, input, &[i]), expected, "split at {i}");
    }
    let every: Vec<usize> = (1..input.len()).collect();
    assert_eq!(feed(api, input, &every), expected, "byte at a time");
    expected
}

/// A 200 text/event-stream response with `body` in chunks of 37 bytes.
fn response(body: &str) -> Vec<u8> {
    let mut out =
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
            .to_vec();
    for c in body.as_bytes().chunks(37) {
        out.extend_from_slice(format!("{:x}\r\n", c.len()).as_bytes());
        out.extend_from_slice(c);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}

fn tok(s: &str) -> Seen {
    Seen::Token(s.into(), None)
}

#[test]
fn chat_role_chunk_is_not_a_token_and_reasoning_counts() {
    let body = concat!(
        "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}]}\n\n",
        "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"reasoning_content\":\"think\"},\"finish_reason\":null}]}\n\n",
        "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hé\\n\"},\"finish_reason\":null}]}\n\n",
        "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0}]},\"finish_reason\":null}]}\n\n",
        "data: {\"id\":\"c\",\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":3,\"total_tokens\":8}}\n\n",
        "data: [DONE]\n\n",
    );
    let seen = assert_split_invariant(Api::Chat, &response(body));
    assert_eq!(
        seen,
        vec![
            Seen::Other,
            tok("think"),
            tok("Hé\n"),
            tok(""),
            Seen::Usage(Some(5), Some(3)),
            Seen::Done
        ]
    );
}

#[test]
fn chat_error_event_is_reported() {
    let body =
        "data: {\"error\":{\"message\":\"out of memory\",\"type\":\"InternalServerError\"}}\n\n";
    let seen = assert_split_invariant(Api::Chat, &response(body));
    assert_eq!(seen, vec![Seen::Error("out of memory".into())]);
}

#[test]
fn responses_events_by_type_with_event_lines() {
    let body = concat!(
        "event: response.created\r\ndata: {\"type\":\"response.created\",\"response\":{\"status\":\"in_progress\"}}\r\n\r\n",
        "event: response.output_text.delta\r\ndata: {\"type\":\"response.output_text.delta\",\"delta\":\"Hi\",\"sequence_number\":1}\r\n\r\n",
        "event: response.reasoning_text.delta\r\ndata: {\"type\":\"response.reasoning_text.delta\",\"delta\":\" there\"}\r\n\r\n",
        "event: response.completed\r\ndata: {\"type\":\"response.completed\",\"response\":{\"status\":\"completed\",\"usage\":{\"input_tokens\":4,\"output_tokens\":2,\"total_tokens\":6}}}\r\n\r\n",
    );
    let seen = assert_split_invariant(Api::Responses, &response(body));
    assert_eq!(
        seen,
        vec![
            Seen::Other,
            tok("Hi"),
            tok(" there"),
            Seen::Usage(Some(4), Some(2))
        ]
    );
    let failed = "event: response.failed\ndata: {\"type\":\"response.failed\",\"response\":{\"error\":{\"code\":\"server_error\"}}}\n\n";
    let seen = assert_split_invariant(Api::Responses, &response(failed));
    assert!(
        matches!(&seen[0], Seen::Error(m) if m.contains("server_error")),
        "{seen:?}"
    );
}

#[test]
fn sglang_text_is_cumulative_with_running_counts() {
    let body = concat!(
        "data: {\"text\":\"Hello\",\"output_ids\":[1],\"meta_info\":{\"id\":\"a\",\"finish_reason\":null,\"prompt_tokens\":9,\"completion_tokens\":1,\"cached_tokens\":0}}\n\n",
        "data: {\"text\":\"Hello wor\",\"output_ids\":[1,2,3],\"meta_info\":{\"id\":\"a\",\"finish_reason\":null,\"prompt_tokens\":9,\"completion_tokens\":3,\"cached_tokens\":0}}\n\n",
        "data: {\"text\":\"Hello world\",\"meta_info\":{\"id\":\"a\",\"finish_reason\":{\"type\":\"length\",\"length\":4},\"prompt_tokens\":9,\"completion_tokens\":4}}\n\n",
        "data: [DONE]\n\n",
    );
    let seen = assert_split_invariant(Api::SglangGenerate, &response(body));
    assert_eq!(
        seen,
        vec![
            Seen::Token("Hello".into(), Some(1)),
            Seen::Token("Hello wor".into(), Some(3)),
            Seen::Token("Hello world".into(), Some(4)),
            Seen::Done
        ]
    );
}

#[test]
fn tgi_skips_pings_and_reads_tokens() {
    let body = concat!(
        ":ping\n\n",
        "data:{\"index\":1,\"token\":{\"id\":5,\"text\":\"Hi\",\"logprob\":-0.1,\"special\":false},\"generated_text\":null,\"details\":null}\n\n",
        "data:{\"index\":2,\"token\":{\"id\":6,\"text\":\"!\",\"logprob\":-0.2,\"special\":false},\"generated_text\":\"Hi!\",\"details\":{\"finish_reason\":\"length\",\"generated_tokens\":2,\"seed\":null}}\n\n",
    );
    let seen = assert_split_invariant(Api::Tgi, &response(body));
    assert_eq!(seen, vec![tok("Hi"), tok("!")]);
}

#[test]
fn triton_text_output_without_done() {
    let body = concat!(
        ": keep-alive\n\n",
        "data: {\"model_name\":\"ensemble\",\"model_version\":\"1\",\"sequence_end\":false,\"sequence_id\":0,\"text_output\":\"a\"}\n\n",
        "data: {\"model_name\":\"ensemble\",\"model_version\":\"1\",\"sequence_end\":false,\"sequence_id\":0,\"text_output\":\"\\u00e9\"}\n\n",
    );
    let seen = assert_split_invariant(Api::Triton, &response(body));
    assert_eq!(seen, vec![tok("a"), tok("é")]);
}

#[test]
fn malformed_events_are_errors_not_panics() {
    for api in [
        Api::Chat,
        Api::Responses,
        Api::SglangGenerate,
        Api::Tgi,
        Api::Triton,
    ] {
        for data in [&b"{"[..], b"[1,2]", b"\xff", b"{\"a\":1} x", b"\"text\""] {
            assert!(
                decode_stream_event(api, b"", data).is_err(),
                "{api:?} accepted {:?}",
                String::from_utf8_lossy(data)
            );
        }
    }
    // Valid JSON with a field of the wrong type.
    let cases: [(Api, &[u8]); 4] = [
        (Api::Chat, br#"{"choices":[{"delta":{"content":7}}]}"#),
        (Api::SglangGenerate, br#"{"text":5,"meta_info":{}}"#),
        (Api::Tgi, br#"{"token":{"text":[1]}}"#),
        (Api::Triton, br#"{"text_output":{"a":1}}"#),
    ];
    for (api, data) in cases {
        assert!(decode_stream_event(api, b"", data).is_err(), "{api:?}");
    }
}

#[test]
fn a_whole_reply_is_body_bytes_however_split() {
    let body = r#"{"text":["Hello \u00e9 world"]}"#;
    let input = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    let collect = |cuts: &[usize]| {
        let mut parser = ResponseParser::new();
        parser.set_streamed(false);
        let mut got = Vec::new();
        let mut start = 0;
        for cut in cuts.iter().copied().chain(std::iter::once(input.len())) {
            parser
                .feed(&input.as_bytes()[start..cut], &mut |e| {
                    if let Event::Body(b) = e {
                        got.extend_from_slice(b);
                    }
                })
                .unwrap();
            start = cut;
        }
        got
    };
    for i in 0..=input.len() {
        assert_eq!(collect(&[i]), body.as_bytes(), "split at {i}");
    }
    let (text, usage) = decode_whole_body(Api::Mii, body.as_bytes()).unwrap();
    let mut s = String::new();
    unescape_into(text.as_bytes(), &mut s).unwrap();
    assert_eq!((s.as_str(), usage), ("Hello é world", None));
    assert!(decode_whole_body(Api::Mii, b"{\"text\":\"no list\"}").is_err());
    assert!(decode_whole_body(Api::Chat, body.as_bytes()).is_err());
}

#[test]
fn whole_replies_of_every_api() {
    let text = |api, body: &str| {
        let (t, u) = decode_whole_body(api, body.as_bytes()).unwrap();
        let mut s = String::new();
        unescape_into(t.as_bytes(), &mut s).unwrap();
        (s, u.and_then(|u| u.completion_tokens))
    };
    assert_eq!(
        text(
            Api::Completions,
            r#"{"id":"c","object":"text_completion","choices":[{"index":0,"text":"a\nb","finish_reason":"length"}],"usage":{"prompt_tokens":3,"completion_tokens":2}}"#
        ),
        ("a\nb".into(), Some(2))
    );
    assert_eq!(
        text(
            Api::Chat,
            r#"{"choices":[{"index":0,"message":{"role":"assistant","content":null,"reasoning_content":"hmm"},"finish_reason":"length"}],"usage":{"completion_tokens":1}}"#
        ),
        ("hmm".into(), Some(1))
    );
    assert_eq!(
        text(
            Api::Responses,
            r#"{"id":"r","output":[{"type":"reasoning","summary":[]},{"type":"message","content":[{"type":"output_text","text":"hi"}]}],"usage":{"input_tokens":4,"output_tokens":1}}"#
        ),
        ("hi".into(), Some(1))
    );
    assert_eq!(
        text(
            Api::SglangGenerate,
            r#"{"text":"x y","meta_info":{"prompt_tokens":2,"completion_tokens":2}}"#
        ),
        ("x y".into(), Some(2))
    );
    let e = decode_whole_body(Api::Chat, br#"{"error":{"message":"model overloaded"}}"#)
        .unwrap_err()
        .to_string();
    assert!(e.contains("model overloaded"), "{e}");
    assert!(decode_whole_body(Api::Completions, br#"{"choices":[]}"#).is_err());
}

// --- Property: any generated stream of any backend, cut into any number of pieces ----------

/// Every streamed backend, Completions included.
const STREAMED: [Api; 6] = [
    Api::Completions,
    Api::Chat,
    Api::Responses,
    Api::SglangGenerate,
    Api::Tgi,
    Api::Triton,
];

/// Like [`decode`], for every streamed API (Completions has its own decoder).
fn decode_any(api: Api, event: &[u8], data: &[u8]) -> Seen {
    if api != Api::Completions {
        return decode(api, event, data);
    }
    match decode_completion_event(data).expect("event decodes") {
        CompletionEvent::Token { text, .. } => {
            Seen::Token(text.unescaped().expect("text unescapes").into_owned(), None)
        }
        CompletionEvent::Usage(u) => Seen::Usage(u.prompt_tokens, u.completion_tokens),
        CompletionEvent::Done => Seen::Done,
        CompletionEvent::Error(m) => Seen::Error(m),
        CompletionEvent::Other => Seen::Other,
    }
}

/// `input` fed in the pieces `cuts` makes; the events decoded as `api`'s.
fn feed_any(api: Api, input: &[u8], cuts: &[usize]) -> Vec<Seen> {
    let mut parser = ResponseParser::new();
    let mut seen = Vec::new();
    let mut start = 0;
    for cut in cuts.iter().copied().chain(std::iter::once(input.len())) {
        let progress = parser
            .feed(&input[start..cut], &mut |e| {
                if let Event::Sse(sse) = e {
                    seen.push(decode_any(api, sse.event, sse.data));
                }
            })
            .expect("response parses");
        if let Progress::Done { .. } = progress {
            return seen;
        }
        start = cut;
    }
    panic!("response did not complete");
}

/// The stream `api`'s server sends for `tokens` (events end with `eol` twice), and the
/// events it must decode to.
fn backend_stream(api: Api, tokens: &[String], eol: &str) -> (String, Vec<Seen>) {
    let q = |s: &str| serde_json::to_string(s).unwrap();
    let mut body = String::new();
    let mut want = Vec::new();
    let mut so_far = String::new();
    for (i, t) in tokens.iter().enumerate() {
        so_far.push_str(t);
        let (event, data, seen) = match api {
            Api::Completions => (
                "",
                format!("{{\"choices\":[{{\"index\":0,\"text\":{},\"finish_reason\":null}}]}}", q(t)),
                tok(t),
            ),
            Api::Chat => (
                "",
                format!("{{\"choices\":[{{\"index\":0,\"delta\":{{\"content\":{}}}}}]}}", q(t)),
                tok(t),
            ),
            Api::Responses => (
                "response.output_text.delta",
                format!("{{\"type\":\"response.output_text.delta\",\"delta\":{}}}", q(t)),
                tok(t),
            ),
            // SGLang repeats the whole text so far, with the running token count.
            Api::SglangGenerate => (
                "",
                format!(
                    "{{\"text\":{},\"meta_info\":{{\"prompt_tokens\":3,\"completion_tokens\":{}}}}}",
                    q(&so_far),
                    i + 1
                ),
                Seen::Token(so_far.clone(), Some(i as u64 + 1)),
            ),
            Api::Tgi => (
                "",
                format!("{{\"token\":{{\"id\":{i},\"text\":{},\"special\":false}}}}", q(t)),
                tok(t),
            ),
            Api::Triton => (
                "",
                format!("{{\"model_name\":\"ensemble\",\"text_output\":{}}}", q(t)),
                tok(t),
            ),
            Api::Mii => unreachable!("not streamed"),
        };
        if !event.is_empty() {
            body.push_str(&format!("event: {event}{eol}"));
        }
        body.push_str(&format!("data: {data}{eol}{eol}"));
        want.push(seen);
    }
    if matches!(api, Api::Completions | Api::Chat | Api::SglangGenerate) {
        body.push_str(&format!("data: [DONE]{eol}{eol}"));
        want.push(Seen::Done);
    }
    (body, want)
}

/// A chunked 200 event-stream reply carrying `body` in chunks of `size` bytes.
fn chunked_reply(body: &[u8], size: usize) -> Vec<u8> {
    servebench::fuzzing::chunked_event_stream(body, size)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    /// Any tokens (any Unicode, quotes, backslashes, control characters), in any backend's
    /// stream, chunked at any size, read in any number of pieces: the decoded events are the
    /// tokens, every time.
    #[test]
    fn every_backend_decodes_any_split_of_any_stream(
        api in prop::sample::select(STREAMED.to_vec()),
        tokens in prop::collection::vec("(?s).{0,12}", 1..12),
        eol in prop::sample::select(vec!["\n", "\r\n", "\r"]),
        chunk in 1..200usize,
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..40),
    ) {
        let (body, want) = backend_stream(api, &tokens, eol);
        let reply = chunked_reply(body.as_bytes(), chunk);
        let mut cuts: Vec<usize> = cuts.iter().map(|i| i.index(reply.len() + 1)).collect();
        cuts.sort_unstable();
        prop_assert_eq!(&feed_any(api, &reply, &[]), &want);
        prop_assert_eq!(&feed_any(api, &reply, &cuts), &want, "cuts {:?}", cuts);
    }
}

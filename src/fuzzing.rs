//! The bodies of the cargo-fuzz targets in `fuzz/`, here so that `tests/fuzz_replay.rs` runs
//! the same checks on the stable toolchain in every `cargo test`.
//!
//! Each function takes the fuzzer's bytes and panics when an invariant breaks: the parsers
//! never panic on their own, a stream cut into pieces decodes exactly as the whole stream does,
//! and every text a decoder accepts unescapes to what serde_json reads from the same string.
//! Leading bytes of the input choose the cut points (and the API where one target serves
//! several), so the fuzzer steers them too.

use std::io::Write;
use std::sync::OnceLock;

use crate::backend::Api;
use crate::proto::{
    decode_completion_event, decode_stream_event, decode_whole_body, unescape_into, ChunkedDecoder,
    CompletionEvent, Event, Framing, Progress, ProtoError, ResponseHead, ResponseParser, SseParser,
    StreamEvent, MAX_HEAD_BYTES,
};
use crate::tokenizer::Tokenizer;
use crate::workload::{self, image, Ctx, DatasetArgs};

/// One fuzz target: its name in `fuzz/Cargo.toml` and its check.
pub struct Target {
    pub name: &'static str,
    pub check: fn(&[u8]),
}

/// Every target, in the order `scripts/fuzz.sh` runs them.
pub const TARGETS: &[Target] = &[
    Target {
        name: "http_head",
        check: http_head,
    },
    Target {
        name: "chunked",
        check: chunked,
    },
    Target {
        name: "sse",
        check: sse,
    },
    Target {
        name: "response",
        check: response,
    },
    Target {
        name: "completions",
        check: completions,
    },
    Target {
        name: "formats",
        check: formats,
    },
    Target {
        name: "whole_body",
        check: whole_body,
    },
    Target {
        name: "stream_completions",
        check: stream_completions,
    },
    Target {
        name: "stream_chat",
        check: stream_chat,
    },
    Target {
        name: "stream_responses",
        check: stream_responses,
    },
    Target {
        name: "stream_sglang",
        check: stream_sglang,
    },
    Target {
        name: "stream_tgi",
        check: stream_tgi,
    },
    Target {
        name: "stream_triton",
        check: stream_triton,
    },
    Target {
        name: "datasets",
        check: datasets,
    },
];

/// The stream decoders, as the `formats` and `whole_body` targets pick them.
const STREAMED: [Api; 5] = [
    Api::Chat,
    Api::Responses,
    Api::SglangGenerate,
    Api::Tgi,
    Api::Triton,
];
const ALL_APIS: [Api; 7] = [
    Api::Completions,
    Api::Chat,
    Api::Responses,
    Api::SglangGenerate,
    Api::Tgi,
    Api::Triton,
    Api::Mii,
];

/// Ascending cut points in `0..=len`, one per selector byte.
fn cuts(selectors: &[u8], len: usize) -> Vec<usize> {
    let mut v: Vec<usize> = selectors.iter().map(|&k| k as usize * len / 255).collect();
    v.sort_unstable();
    v
}

/// `input` cut at `cuts` (ascending) into `cuts.len() + 1` pieces.
fn pieces<'a>(input: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
    let mut out = Vec::with_capacity(cuts.len() + 1);
    let mut start = 0;
    for &c in cuts {
        out.push(&input[start..c]);
        start = c;
    }
    out.push(&input[start..]);
    out
}

/// Our unescaper and serde_json agree on a JSON string's raw contents: same text or both
/// refuse it.
fn assert_unescapes_like_serde(raw: &str) {
    let mut ours = String::new();
    let ours = unescape_into(raw.as_bytes(), &mut ours).map(|()| ours);
    let theirs: Result<String, _> = serde_json::from_str(&format!("\"{raw}\""));
    match (&ours, &theirs) {
        (Ok(a), Ok(b)) => assert_eq!(a, b, "unescaped text of {raw:?}"),
        (Err(_), Err(_)) => {}
        _ => panic!("unescape of {raw:?}: ours {ours:?}, serde_json {theirs:?}"),
    }
}

/// The head parser alone: a prefix is either incomplete or answers as the whole does, the
/// head alone answers as head plus body does, and an accepted head is self-consistent.
pub fn http_head(data: &[u8]) {
    let Some((&k, input)) = data.split_first() else {
        return;
    };
    let whole = ResponseHead::parse(input);
    if let Ok(Some((h, n))) = &whole {
        assert!(*n <= input.len(), "head length {n} past the input");
        assert!((100..=999).contains(&h.status), "status {}", h.status);
        assert!(h.reason().len() <= 48);
        if matches!(h.status, 100..=199 | 204 | 304) {
            assert_eq!(h.framing, Framing::Empty, "bodiless status {}", h.status);
        }
        if h.framing == Framing::UntilClose {
            assert!(
                !h.keep_alive,
                "a close-delimited body cannot keep the connection"
            );
        }
        assert_eq!(ResponseHead::parse(&input[..*n]), whole, "the head alone");
    }
    if input.len() < MAX_HEAD_BYTES {
        let cut = cuts(&[k], input.len())[0];
        let prefix = ResponseHead::parse(&input[..cut]);
        assert!(
            prefix == Ok(None) || prefix == whole,
            "prefix of {cut} bytes: {prefix:?}, whole: {whole:?}"
        );
    }
}

fn chunked_run(parts: &[&[u8]]) -> (Vec<u8>, Result<Option<usize>, ProtoError>) {
    let mut dec = ChunkedDecoder::new();
    let mut out = Vec::new();
    let mut offset = 0;
    for part in parts {
        let mut rest = *part;
        loop {
            match dec.decode(&mut rest) {
                Ok(Some(d)) => {
                    assert!(!d.is_empty(), "an empty data slice");
                    out.extend_from_slice(d);
                }
                Ok(None) => break,
                Err(e) => return (out, Err(e)),
            }
        }
        if dec.is_done() {
            return (out, Ok(Some(offset + part.len() - rest.len())));
        }
        assert!(rest.is_empty(), "input left over before the end");
        offset += part.len();
    }
    (out, Ok(None))
}

/// The chunked decoder, whole and cut in three: same data, same end, same error.
pub fn chunked(data: &[u8]) {
    if data.len() < 2 {
        return;
    }
    let (k, input) = data.split_at(2);
    let whole = chunked_run(&[input]);
    let cut = cuts(k, input.len());
    assert_eq!(whole, chunked_run(&pieces(input, &cut)), "cuts at {cut:?}");
}

type SseSeen = (Vec<(Vec<u8>, Vec<u8>)>, Result<(), ProtoError>);

fn sse_run(p: &mut SseParser, parts: &[&[u8]]) -> SseSeen {
    p.reset();
    let mut out = Vec::new();
    for part in parts {
        if let Err(e) = p.feed(part, &mut |e| out.push((e.event.to_vec(), e.data.to_vec()))) {
            return (out, Err(e));
        }
    }
    (out, Ok(()))
}

/// The SSE splitter, whole and cut in four: same events, same error; no event over the limit.
pub fn sse(data: &[u8]) {
    const LIMIT: usize = 256;
    if data.len() < 3 {
        return;
    }
    let (k, input) = data.split_at(3);
    let mut p = SseParser::with_max_event_size(LIMIT);
    let whole = sse_run(&mut p, &[input]);
    for (_, d) in &whole.0 {
        assert!(d.len() <= LIMIT, "an event of {} bytes", d.len());
    }
    let cut = cuts(k, input.len());
    assert_eq!(
        whole,
        sse_run(&mut p, &pieces(input, &cut)),
        "cuts at {cut:?}"
    );
}

#[derive(Debug, PartialEq)]
enum Seen {
    Head(u16, bool),
    Sse(Vec<u8>, Vec<u8>),
    Body(Vec<u8>),
}

type ResponseSeen = (Vec<Seen>, Result<Option<usize>, ProtoError>);

fn response_run(p: &mut ResponseParser, parts: &[&[u8]]) -> ResponseSeen {
    p.reset();
    let mut seen = Vec::new();
    let mut record = |e: Event<'_>| match e {
        Event::Head(h) => seen.push(Seen::Head(h.status, h.keep_alive)),
        Event::Sse(e) => seen.push(Seen::Sse(e.event.to_vec(), e.data.to_vec())),
        // Body slices follow the reads; only their concatenation is defined.
        Event::Body(b) => match seen.last_mut() {
            Some(Seen::Body(prev)) => prev.extend_from_slice(b),
            _ => seen.push(Seen::Body(b.to_vec())),
        },
    };
    let mut start = 0;
    for part in parts {
        match p.feed(part, &mut record) {
            Ok(Progress::NeedMore) => {}
            Ok(Progress::Done { consumed }) => {
                assert!(consumed <= part.len(), "consumed past the read");
                return (seen, Ok(Some(start + consumed)));
            }
            Err(e) => return (seen, Err(e)),
        }
        start += part.len();
    }
    let end = p.eof(&mut record).map(|()| None);
    (seen, end)
}

/// The whole response parser (head, framing, SSE or whole body), whole and cut in three.
pub fn response(data: &[u8]) {
    if data.len() < 2 {
        return;
    }
    let (k, input) = data.split_at(2);
    let mut p = ResponseParser::with_max_event_size(1024);
    // The low bit of the first selector picks a streamed or a whole-body reply.
    p.set_streamed(k[0] & 1 == 0);
    let whole = response_run(&mut p, &[input]);
    let cut = cuts(k, input.len());
    let split = response_run(&mut p, &pieces(input, &cut));
    assert_eq!(whole, split, "cuts at {cut:?}");
}

/// One Completions event's data: no panic; what is accepted is JSON serde_json accepts too,
/// and its strings unescape as serde_json unescapes them.
pub fn completions(data: &[u8]) {
    let _ = unescape_into(data, &mut String::new());
    let Ok(event) = decode_completion_event(data) else {
        return;
    };
    if let CompletionEvent::Token {
        text,
        finish_reason,
        ..
    } = &event
    {
        assert_unescapes_like_serde(text.raw());
        text.unescape_into(&mut String::new())
            .expect("accepted text unescapes");
        if let Some(f) = finish_reason {
            assert_unescapes_like_serde(f.raw());
        }
    }
    if event == CompletionEvent::Done || data.trim_ascii().is_empty() {
        return;
    }
    if let Err(e) = serde_json::from_slice::<serde::de::IgnoredAny>(data) {
        // Python (and this decoder) read 1e400 as infinity; serde_json refuses it.
        assert!(
            e.to_string().contains("out of range"),
            "accepted what serde_json refuses: {e}"
        );
    }
}

/// One event's data for every other stream format: no panic, and accepted text unescapes as
/// serde_json unescapes it. The first byte picks the API (and, high bit, the Responses event
/// name).
pub fn formats(data: &[u8]) {
    let Some((&k, data)) = data.split_first() else {
        return;
    };
    let api = STREAMED[k as usize % STREAMED.len()];
    let event: &[u8] = if k & 0x80 != 0 {
        b"response.output_text.delta"
    } else {
        b""
    };
    if let Ok(StreamEvent::Token { text, .. }) = decode_stream_event(api, event, data) {
        assert_unescapes_like_serde(text);
    }
}

/// A whole (not streamed) reply of any API: no panic, accepted text unescapes like serde_json.
pub fn whole_body(data: &[u8]) {
    let Some((&k, body)) = data.split_first() else {
        return;
    };
    let api = ALL_APIS[k as usize % ALL_APIS.len()];
    if let Ok((text, _)) = decode_whole_body(api, body) {
        assert_unescapes_like_serde(text);
    }
}

/// One decoded event, comparable across runs.
#[derive(Debug, PartialEq)]
enum Decoded {
    Token(String, Option<u64>, Option<(Option<u64>, Option<u64>)>),
    Usage(Option<u64>, Option<u64>),
    Done,
    Error(String),
    Other,
    Failed(String),
}

fn decode_event(api: Api, event: &[u8], data: &[u8]) -> Decoded {
    if api == Api::Completions {
        return match decode_completion_event(data) {
            Ok(CompletionEvent::Token { text, usage, .. }) => {
                assert_unescapes_like_serde(text.raw());
                let u = usage.map(|u| (u.prompt_tokens, u.completion_tokens));
                Decoded::Token(text.raw().to_string(), None, u)
            }
            Ok(CompletionEvent::Usage(u)) => Decoded::Usage(u.prompt_tokens, u.completion_tokens),
            Ok(CompletionEvent::Done) => Decoded::Done,
            Ok(CompletionEvent::Error(m)) => Decoded::Error(m),
            Ok(CompletionEvent::Other) => Decoded::Other,
            Err(e) => Decoded::Failed(e.to_string()),
        };
    }
    match decode_stream_event(api, event, data) {
        Ok(StreamEvent::Token {
            text,
            tokens_so_far,
            usage,
        }) => {
            assert_unescapes_like_serde(text);
            let u = usage.map(|u| (u.prompt_tokens, u.completion_tokens));
            Decoded::Token(text.to_string(), tokens_so_far, u)
        }
        Ok(StreamEvent::Usage(u)) => Decoded::Usage(u.prompt_tokens, u.completion_tokens),
        Ok(StreamEvent::Done) => Decoded::Done,
        Ok(StreamEvent::Error(m)) => Decoded::Error(m),
        Ok(StreamEvent::Other) => Decoded::Other,
        Err(e) => Decoded::Failed(e.to_string()),
    }
}

fn stream_run(api: Api, parts: &[&[u8]]) -> (Vec<Decoded>, Result<bool, ProtoError>) {
    let mut p = ResponseParser::with_max_event_size(2048);
    let mut seen = Vec::new();
    for part in parts {
        let progress = p.feed(part, &mut |e| {
            if let Event::Sse(sse) = e {
                seen.push(decode_event(api, sse.event, sse.data));
            }
        });
        match progress {
            Ok(Progress::NeedMore) => {}
            Ok(Progress::Done { .. }) => return (seen, Ok(true)),
            Err(e) => return (seen, Err(e)),
        }
    }
    (seen, Ok(false))
}

/// A backend's event stream end to end: the fuzzer's bytes are the SSE body of a chunked
/// 200 reply (first byte: chunk size); the decoded events are the same when the reply arrives
/// whole or in three reads (next two bytes: cut points).
fn stream(api: Api, data: &[u8]) {
    if data.len() < 3 {
        return;
    }
    let (k, body) = data.split_at(3);
    let reply = chunked_event_stream(body, usize::from(k[0]).max(1));
    let whole = stream_run(api, &[&reply]);
    let cut = cuts(&k[1..], reply.len());
    assert_eq!(
        whole,
        stream_run(api, &pieces(&reply, &cut)),
        "cuts at {cut:?}"
    );
}

pub fn stream_completions(data: &[u8]) {
    stream(Api::Completions, data);
}

pub fn stream_chat(data: &[u8]) {
    stream(Api::Chat, data);
}

pub fn stream_responses(data: &[u8]) {
    stream(Api::Responses, data);
}

pub fn stream_sglang(data: &[u8]) {
    stream(Api::SglangGenerate, data);
}

pub fn stream_tgi(data: &[u8]) {
    stream(Api::Tgi, data);
}

pub fn stream_triton(data: &[u8]) {
    stream(Api::Triton, data);
}

/// Arbitrary bytes as a dataset file for every file-reading dataset, and as the text of the
/// image flags: each either loads or returns an error, never panics or hangs.
pub fn datasets(data: &[u8]) {
    const DATASETS: [&str; 7] = [
        "custom",
        "sharegpt",
        "timed_trace",
        "mooncake",
        "burstgpt",
        "hf",
        "sonnet",
    ];
    static TOK: OnceLock<Tokenizer> = OnceLock::new();
    let tok = TOK.get_or_init(Tokenizer::embedded_default);
    let Some((&k, data)) = data.split_first() else {
        return;
    };
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = image::parse_buckets(text);
        let _ = image::parse_limits(text);
        let _ = image::Resolution::parse(text);
    }
    let name = DATASETS[k as usize % DATASETS.len()];
    // One file per process and thread: the replay test runs targets on several threads.
    let path = std::env::temp_dir().join(format!(
        "servebench-fuzz-{}-{:?}.data",
        std::process::id(),
        std::thread::current().id()
    ));
    let written = std::fs::File::create(&path).and_then(|mut f| f.write_all(data));
    if written.is_err() {
        return;
    }
    let args = DatasetArgs {
        dataset_name: name.into(),
        dataset_path: Some(path.to_string_lossy().into_owned()),
        hf_name: Some("likaixin/InstructCoder".into()),
        // Small lengths keep each input fast; the fuzzer is after the parsers.
        sonnet_input_len: 60,
        sonnet_prefix_len: 20,
        sonnet_output_len: 4,
        timed_trace_chunk_hash_size: 4,
        mooncake_block_size: 4,
        skip_chat_template: true,
        // The high bit of the selector reads ShareGPT as whole conversations.
        multi_turn: name == "sharegpt" && k >= 128,
        ..DatasetArgs::default()
    };
    let ctx = Ctx {
        num_prompts: 4,
        seed: 0,
        api: if k >= 128 {
            Api::Chat
        } else {
            Api::Completions
        },
    };
    let _ = workload::load(&args, &ctx, tok);
    let _ = std::fs::remove_file(&path);
}

/// A chunked 200 `text/event-stream` reply carrying `body` in chunks of `size` bytes (also
/// used by the split property tests).
pub fn chunked_event_stream(body: &[u8], size: usize) -> Vec<u8> {
    let mut out =
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
            .to_vec();
    for c in body.chunks(size.max(1)) {
        out.extend_from_slice(format!("{:x}\r\n", c.len()).as_bytes());
        out.extend_from_slice(c);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}

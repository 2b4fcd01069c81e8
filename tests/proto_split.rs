//! Split invariance of the whole wire protocol: a response decodes to the same events and the
//! same end whether it arrives in one read, in two reads cut at any byte, one byte at a time,
//! or in random pieces; and no input whatsoever makes a parser panic or hang.

use proptest::prelude::*;
use servebench::proto::{
    decode_completion_event, unescape_into, ChunkedDecoder, CompletionEvent, Event, Framing,
    Progress, ProtoError, ResponseHead, ResponseParser, SseParser,
};

/// An owned copy of everything the parser reported, with SSE data decoded as completions.
#[derive(Debug, Clone, PartialEq)]
enum Seen {
    Head {
        status: u16,
        keep_alive: bool,
        framing: Framing,
        event_stream: bool,
    },
    Token {
        text: String,
        finish_reason: Option<String>,
    },
    Usage(Option<u64>, Option<u64>),
    Done,
    ServerError(String),
    OtherEvent(Vec<u8>),
    Body(Vec<u8>),
}

/// What feeding a whole response produced.
#[derive(Debug, Clone, PartialEq)]
struct Outcome {
    /// Events, with raw body bytes merged (their cut points depend on the reads).
    seen: Vec<Seen>,
    /// Offset in the whole input just past the response, or the error, or None if the parser
    /// still wanted more at the end of the input and accepted the close.
    end: Result<Option<usize>, ProtoError>,
}

fn record(seen: &mut Vec<Seen>, event: Event<'_>) {
    let item = match event {
        Event::Head(h) => Seen::Head {
            status: h.status,
            keep_alive: h.keep_alive,
            framing: h.framing,
            event_stream: h.is_event_stream,
        },
        Event::Sse(e) => match decode_completion_event(e.data) {
            Ok(CompletionEvent::Token {
                text,
                finish_reason,
                ..
            }) => {
                let mut s = String::new();
                text.unescape_into(&mut s).expect("text unescapes");
                Seen::Token {
                    text: s,
                    finish_reason: finish_reason.map(|f| f.raw().to_owned()),
                }
            }
            Ok(CompletionEvent::Usage(u)) => Seen::Usage(u.prompt_tokens, u.completion_tokens),
            Ok(CompletionEvent::Done) => Seen::Done,
            Ok(CompletionEvent::Error(m)) => Seen::ServerError(m),
            Ok(CompletionEvent::Other) | Err(_) => Seen::OtherEvent(e.data.to_vec()),
        },
        Event::Body(b) => {
            if let Some(Seen::Body(prev)) = seen.last_mut() {
                prev.extend_from_slice(b);
                return;
            }
            Seen::Body(b.to_vec())
        }
    };
    seen.push(item);
}

/// Feeds `input` cut at `cuts` (sorted offsets) into one parser, then reports EOF if the
/// response was not complete.
fn feed_split(parser: &mut ResponseParser, input: &[u8], cuts: &[usize]) -> Outcome {
    parser.reset();
    let mut seen = Vec::new();
    let mut start = 0;
    let bounds = cuts.iter().copied().chain(std::iter::once(input.len()));
    for cut in bounds {
        let part = &input[start..cut];
        match parser.feed(part, &mut |e| record(&mut seen, e)) {
            Ok(Progress::NeedMore) => {}
            Ok(Progress::Done { consumed }) => {
                assert!(consumed <= part.len());
                return Outcome {
                    seen,
                    end: Ok(Some(start + consumed)),
                };
            }
            Err(e) => return Outcome { seen, end: Err(e) },
        }
        start = cut;
    }
    let end = parser.eof(&mut |e| record(&mut seen, e)).map(|()| None);
    Outcome { seen, end }
}

fn whole(input: &[u8]) -> Outcome {
    feed_split(&mut ResponseParser::new(), input, &[])
}

/// Whole, every two-way split, one byte at a time: all the same, with one parser reused.
fn assert_split_invariant(input: &[u8]) -> Outcome {
    let expected = whole(input);
    let mut parser = ResponseParser::new();
    for i in 0..=input.len() {
        let got = feed_split(&mut parser, input, &[i]);
        assert_eq!(got, expected, "split at {i}");
    }
    let every: Vec<usize> = (1..input.len()).collect();
    assert_eq!(
        feed_split(&mut parser, input, &every),
        expected,
        "byte at a time"
    );
    expected
}

const TEXTS: [&str; 20] = [
    " héllo",
    " 世界",
    " 🎉",
    "",
    " quote \\\"x\\\"",
    "\\n",
    " tab\\t",
    " \\u00e9t\\u00e9",
    " \\ud83c\\udf89",
    " back\\\\slash",
    " slash\\/",
    " plain",
    " ascii",
    " 😀😀",
    " Ωmega",
    " \\u4e16\\u754c",
    " naïve",
    " end",
    " of",
    " text",
];

fn decoded(raw: &str) -> String {
    let mut s = String::new();
    unescape_into(raw.as_bytes(), &mut s).unwrap();
    s
}

/// The SSE body vLLM sends for a 20-token completion with usage, in mixed line-end styles
/// and with a keep-alive comment.
fn completion_stream() -> Vec<u8> {
    let mut body = String::new();
    for (i, t) in TEXTS.iter().enumerate() {
        let finish = if i == TEXTS.len() - 1 {
            "\"length\""
        } else {
            "null"
        };
        let json = format!(
            "{{\"id\":\"cmpl-1\",\"object\":\"text_completion\",\"created\":1,\"model\":\"m\",\
             \"choices\":[{{\"index\":0,\"text\":\"{t}\",\"logprobs\":null,\
             \"finish_reason\":{finish},\"stop_reason\":null}}],\"usage\":null}}"
        );
        let end = match i % 3 {
            0 => "\n\n",
            1 => "\r\n\r\n",
            _ => "\r\r",
        };
        body.push_str(&format!("data: {json}{end}"));
        if i == 7 {
            body.push_str(": keep-alive\n\n");
        }
    }
    body.push_str(
        "data: {\"id\":\"cmpl-1\",\"choices\":[],\"usage\":{\"prompt_tokens\":17,\
         \"completion_tokens\":20,\"total_tokens\":37}}\n\ndata: [DONE]\n\n",
    );
    body.into_bytes()
}

fn expected_stream_events() -> Vec<Seen> {
    let mut seen: Vec<Seen> = TEXTS
        .iter()
        .enumerate()
        .map(|(i, t)| Seen::Token {
            text: decoded(t),
            finish_reason: (i == TEXTS.len() - 1).then(|| "length".to_owned()),
        })
        .collect();
    seen.push(Seen::Usage(Some(17), Some(20)));
    seen.push(Seen::Done);
    seen
}

/// Chunked transfer coding of `body` with chunk boundaries at `cuts` (sorted), and an
/// extension on some chunk lines.
fn chunk_at(body: &[u8], cuts: &[usize]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut start = 0;
    let ends = cuts.iter().copied().filter(|&c| c > 0 && c < body.len());
    for (k, end) in ends.chain(std::iter::once(body.len())).enumerate() {
        if end <= start {
            continue;
        }
        let ext = if k % 4 == 1 { ";ext=1" } else { "" };
        out.extend_from_slice(format!("{:x}{ext}\r\n", end - start).as_bytes());
        out.extend_from_slice(&body[start..end]);
        out.extend_from_slice(b"\r\n");
        start = end;
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}

/// Chunks of `size` bytes.
fn chunk(body: &[u8], size: usize) -> Vec<u8> {
    let cuts: Vec<usize> = (size..body.len()).step_by(size).collect();
    chunk_at(body, &cuts)
}

/// Chunk boundaries for the completion stream: every 37 bytes, plus cuts placed inside a
/// UTF-8 sequence, between a CR and its LF, and inside every event's JSON.
fn stream_cuts(body: &[u8]) -> Vec<usize> {
    let mut cuts: Vec<usize> = (37..body.len()).step_by(37).collect();
    for i in 1..body.len() {
        let in_utf8 = body[i] & 0xC0 == 0x80;
        let in_crlf = body[i - 1] == b'\r' && body[i] == b'\n';
        if in_utf8 || in_crlf || body[i - 1..].starts_with(b"\"text\"") {
            cuts.push(i);
        }
    }
    cuts.sort_unstable();
    cuts.dedup();
    cuts
}

fn chunked_sse_response() -> Vec<u8> {
    let body = completion_stream();
    let mut resp = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\
                     transfer-encoding: chunked\r\ndate: Sun, 22 Nov 2026 17:00:00 GMT\r\n\r\n"
        .to_vec();
    resp.extend_from_slice(&chunk_at(&body, &stream_cuts(&body)));
    resp
}

/// The chunk boundaries of `chunked_sse_response` really do cut what they should.
#[test]
fn chunk_boundaries_cut_utf8_crlf_and_events() {
    let body = completion_stream();
    let cuts = stream_cuts(&body);
    let inside_utf8 = cuts.iter().filter(|&&c| body[c] & 0xC0 == 0x80).count();
    let inside_crlf = cuts
        .iter()
        .filter(|&&c| body[c - 1] == b'\r' && body[c] == b'\n')
        .count();
    let inside_event = cuts.iter().filter(|&&c| body[c - 1] == b'"').count();
    assert!(
        inside_utf8 >= 5,
        "{inside_utf8} cuts inside UTF-8 sequences"
    );
    assert!(inside_crlf >= 5, "{inside_crlf} cuts between CR and LF");
    assert!(inside_event >= 20, "{inside_event} cuts inside events");
}

#[test]
fn chunked_completion_stream() {
    let mut input = chunked_sse_response();
    let response_len = input.len();
    input.extend_from_slice(b"HTTP/1.1 200 OK\r\n"); // a server bug: bytes after the response
    let outcome = assert_split_invariant(&input);
    let mut expected = vec![Seen::Head {
        status: 200,
        keep_alive: true,
        framing: Framing::Chunked,
        event_stream: true,
    }];
    expected.extend(expected_stream_events());
    assert_eq!(outcome.seen, expected);
    assert_eq!(outcome.end, Ok(Some(response_len)));
}

#[test]
fn content_length_completion_stream() {
    let body = completion_stream();
    let mut input = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    input.extend_from_slice(&body);
    let outcome = assert_split_invariant(&input);
    assert_eq!(outcome.seen[1..], expected_stream_events()[..]);
    assert_eq!(outcome.end, Ok(Some(input.len())));
}

#[test]
fn close_delimited_stream() {
    let mut input = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n".to_vec();
    input.extend_from_slice(&completion_stream());
    input.extend_from_slice(b"data: {\"choices\":[{\"text\":\"never finished\"}]}\n");
    let outcome = assert_split_invariant(&input);
    assert_eq!(
        outcome.seen[0],
        Seen::Head {
            status: 200,
            keep_alive: false,
            framing: Framing::UntilClose,
            event_stream: true
        }
    );
    assert_eq!(outcome.seen[1..], expected_stream_events()[..]);
    assert_eq!(outcome.end, Ok(None));
}

#[test]
fn not_found_json_error() {
    let body = br#"{"object":"error","message":"The model `x` does not exist.","type":"NotFoundError","param":null,"code":404}"#;
    let mut input = format!(
        "HTTP/1.1 404 Not Found\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    input.extend_from_slice(body);
    let outcome = assert_split_invariant(&input);
    assert_eq!(
        outcome.seen,
        vec![
            Seen::Head {
                status: 404,
                keep_alive: true,
                framing: Framing::Length(body.len() as u64),
                event_stream: false
            },
            Seen::Body(body.to_vec())
        ]
    );
    assert_eq!(outcome.end, Ok(Some(input.len())));
}

#[test]
fn chunked_error_body_and_mid_stream_error_event() {
    let body = b"{\"error\":{\"message\":\"overloaded \xe2\x80\x94 retry\",\"code\":503}}";
    let mut input =
        b"HTTP/1.1 503 Service Unavailable\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    input.extend_from_slice(&chunk(body, 3));
    let outcome = assert_split_invariant(&input);
    assert_eq!(outcome.seen[1], Seen::Body(body.to_vec()));
    assert_eq!(outcome.end, Ok(Some(input.len())));

    let mut stream = b"data: {\"choices\":[{\"text\":\"a\"}]}\n\n".to_vec();
    stream.extend_from_slice(b"data: ");
    stream.extend_from_slice(body);
    stream.extend_from_slice(b"\n\n");
    let mut input = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    input.extend_from_slice(&chunk(&stream, 9));
    let outcome = assert_split_invariant(&input);
    assert_eq!(
        outcome.seen[1..],
        [
            Seen::Token {
                text: "a".into(),
                finish_reason: None
            },
            Seen::ServerError("overloaded — retry (code 503)".into())
        ]
    );
}

#[test]
fn broken_responses_fail_the_same_way_however_split() {
    let good = chunked_sse_response();
    // A chunk size line corrupted, a missing CRLF after data, and a truncated response.
    let head_len = good.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let mut bad_size = good.clone();
    bad_size[head_len] = b'z';
    let first_size = stream_cuts(&completion_stream())[0];
    let mut missing_crlf = good.clone();
    // "25\r\n", 37 bytes of data, then the CR that must follow them.
    assert_eq!(first_size, 37);
    missing_crlf[head_len + 4 + first_size] = b'X';
    let truncated = good[..good.len() - 3].to_vec();
    for (input, want) in [
        (
            bad_size,
            "invalid chunked body: chunk size is not a hex number",
        ),
        (
            missing_crlf,
            "invalid chunked body: missing CRLF after chunk data",
        ),
        (truncated, "connection closed after"),
    ] {
        let outcome = assert_split_invariant(&input);
        let err = outcome.end.expect_err("must fail");
        assert!(err.to_string().starts_with(want), "{err}");
    }
}

/// Offsets in `0..=len`, sorted, without duplicates.
fn cuts(len: usize) -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(0..=len, 0..24).prop_map(|mut v| {
        v.sort_unstable();
        v.dedup();
        v
    })
}

fn samples() -> Vec<Vec<u8>> {
    let mut cl = b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\ndata: x\n\n".to_vec();
    cl.extend_from_slice(b"extra");
    vec![chunked_sse_response(), cl]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_multi_splits(which in 0..2usize, seed_cuts in cuts(4000)) {
        let input = &samples()[which];
        let cuts: Vec<usize> = seed_cuts.into_iter().filter(|&c| c <= input.len()).collect();
        let expected = whole(input);
        prop_assert_eq!(feed_split(&mut ResponseParser::new(), input, &cuts), expected);
    }

    /// Mutated real responses reach deep states; arbitrary bytes reach the odd ones.
    #[test]
    fn response_parser_never_panics(
        which in 0..2usize,
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0..3u8), 0..8),
        noise in prop::collection::vec(any::<u8>(), 0..300),
        split in any::<prop::sample::Index>(),
    ) {
        let mut input = samples()[which].clone();
        for (at, byte, op) in edits {
            let i = at.index(input.len());
            match op {
                0 => input[i] = byte,
                1 => input.insert(i, byte),
                _ => { input.remove(i); }
            }
        }
        for candidate in [input, noise] {
            let cut = split.index(candidate.len() + 1);
            let a = feed_split(&mut ResponseParser::new(), &candidate, &[cut]);
            let b = whole(&candidate);
            prop_assert_eq!(a, b);
        }
    }

    #[test]
    fn small_parsers_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..600), split in any::<prop::sample::Index>()) {
        let cut = split.index(bytes.len() + 1);
        let _ = ResponseHead::parse(&bytes);

        let mut sse = SseParser::with_max_event_size(64);
        let mut n = 0;
        if sse.feed(&bytes[..cut], &mut |_| n += 1).is_ok() {
            let _ = sse.feed(&bytes[cut..], &mut |_| n += 1);
        }

        let mut dec = ChunkedDecoder::new();
        for part in [&bytes[..cut], &bytes[cut..]] {
            let mut rest = part;
            loop {
                match dec.decode(&mut rest) {
                    Ok(Some(data)) => prop_assert!(!data.is_empty()),
                    Ok(None) => break,
                    Err(_) => break,
                }
            }
        }

        let _ = decode_completion_event(&bytes);
        let _ = unescape_into(&bytes, &mut String::new());
    }
}

/// Counts heap allocations made by the current thread (tests run on several threads).
mod alloc_count {
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::cell::Cell;

    pub struct Counting;

    thread_local! {
        static COUNT: Cell<u64> = const { Cell::new(0) };
    }

    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            let _ = COUNT.try_with(|c| c.set(c.get() + 1));
            unsafe { System.alloc(layout) }
        }
        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            unsafe { System.dealloc(ptr, layout) }
        }
        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            let _ = COUNT.try_with(|c| c.set(c.get() + 1));
            unsafe { System.realloc(ptr, layout, new_size) }
        }
    }

    pub fn allocations() -> u64 {
        COUNT.with(Cell::get)
    }
}

#[global_allocator]
static ALLOCATOR: alloc_count::Counting = alloc_count::Counting;

/// Once a parser has seen one response, parsing the next one (head and events split across
/// reads, every event decoded) allocates nothing.
#[test]
fn steady_state_allocates_nothing() {
    let input = chunked_sse_response();
    // The head arrives split, so the head buffer is exercised too.
    let reads: Vec<&[u8]> = std::iter::once(&input[..20])
        .chain(input[20..].chunks(1460))
        .collect();
    let mut parser = ResponseParser::new();
    let run = |parser: &mut ResponseParser| {
        parser.reset();
        let (mut tokens, mut done) = (0, false);
        for read in &reads {
            let progress = parser.feed(read, &mut |e| {
                if let Event::Sse(e) = e {
                    match decode_completion_event(e.data) {
                        Ok(CompletionEvent::Token { .. }) => tokens += 1,
                        Ok(CompletionEvent::Done) => done = true,
                        _ => {}
                    }
                }
            });
            if progress != Ok(Progress::NeedMore) {
                return (tokens, done, progress);
            }
        }
        (tokens, done, Ok(Progress::NeedMore))
    };
    let before = alloc_count::allocations();
    let first = run(&mut parser);
    assert!(
        alloc_count::allocations() > before,
        "the first response sizes the buffers"
    );
    assert_eq!((first.0, first.1), (TEXTS.len(), true));
    assert!(matches!(first.2, Ok(Progress::Done { .. })));
    let before = alloc_count::allocations();
    let again = run(&mut parser);
    let allocated = alloc_count::allocations() - before;
    assert_eq!(again, first);
    assert_eq!(allocated, 0, "allocations while parsing a second response");
}

// --- Properties of the SSE splitter and the chunked decoder alone, in any number of pieces --

/// `input` cut at the (unsorted) `at` offsets.
fn cut_into<'a>(input: &'a [u8], at: &[prop::sample::Index]) -> Vec<&'a [u8]> {
    let mut cuts: Vec<usize> = at.iter().map(|i| i.index(input.len() + 1)).collect();
    cuts.sort_unstable();
    let mut parts = Vec::new();
    let mut start = 0;
    for c in cuts {
        parts.push(&input[start..c]);
        start = c;
    }
    parts.push(&input[start..]);
    parts
}

/// One generated event: its name, its data lines, and whether a comment and an id precede it.
type GenEvent = (String, Vec<String>, bool, bool);

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// Generated streams (names, multi-line data, comments, ids, any line ending, a BOM):
    /// the splitter yields exactly the events written, however the bytes arrive.
    #[test]
    fn sse_events_survive_any_pieces(
        events in prop::collection::vec(
            ("[a-z.]{0,8}", prop::collection::vec("[^\r\n]{0,20}", 1..4), any::<bool>(), any::<bool>()),
            0..8,
        ),
        eol in prop::sample::select(vec!["\n", "\r\n", "\r"]),
        bom in any::<bool>(),
        at in prop::collection::vec(any::<prop::sample::Index>(), 0..30),
    ) {
        let events: Vec<GenEvent> = events;
        let mut stream = if bom { "\u{feff}".to_string() } else { String::new() };
        let mut want = Vec::new();
        for (name, lines, comment, id) in &events {
            if *comment {
                stream.push_str(&format!(": keep-alive{eol}"));
            }
            if *id {
                stream.push_str(&format!("id: 7{eol}"));
            }
            if !name.is_empty() {
                stream.push_str(&format!("event: {name}{eol}"));
            }
            for l in lines {
                stream.push_str(&format!("data: {l}{eol}"));
            }
            stream.push_str(eol);
            want.push((name.as_bytes().to_vec(), lines.join("\n").into_bytes()));
        }
        let mut p = SseParser::new();
        let mut got = Vec::new();
        for part in cut_into(stream.as_bytes(), &at) {
            p.feed(part, &mut |e| got.push((e.event.to_vec(), e.data.to_vec()))).unwrap();
        }
        prop_assert_eq!(got, want);
    }

    /// Any body, framed in chunks of any sizes (with extensions and trailers), decodes back
    /// to the same bytes and ends at the same offset, however the bytes arrive.
    #[test]
    fn chunked_bodies_survive_any_pieces(
        body in prop::collection::vec(any::<u8>(), 0..2000),
        sizes in prop::collection::vec(1..300usize, 1..20),
        ext in any::<bool>(),
        trailer in any::<bool>(),
        at in prop::collection::vec(any::<prop::sample::Index>(), 0..30),
    ) {
        let mut wire = Vec::new();
        let mut rest = &body[..];
        let mut i = 0;
        while !rest.is_empty() {
            let n = sizes[i % sizes.len()].min(rest.len());
            let e = if ext { ";name=\"v\"" } else { "" };
            wire.extend_from_slice(format!("{n:X}{e}\r\n").as_bytes());
            wire.extend_from_slice(&rest[..n]);
            wire.extend_from_slice(b"\r\n");
            rest = &rest[n..];
            i += 1;
        }
        wire.extend_from_slice(b"0\r\n");
        if trailer {
            wire.extend_from_slice(b"X-Checksum: abc\r\n");
        }
        wire.extend_from_slice(b"\r\nNEXT");
        let end = wire.len() - 4;
        let mut dec = ChunkedDecoder::new();
        let mut got = Vec::new();
        let mut offset = 0;
        let mut done_at = None;
        for part in cut_into(&wire, &at) {
            let mut left = part;
            while let Some(d) = dec.decode(&mut left).unwrap() {
                got.extend_from_slice(d);
            }
            if dec.is_done() && done_at.is_none() {
                done_at = Some(offset + part.len() - left.len());
            }
            offset += part.len();
        }
        prop_assert_eq!(got, body);
        prop_assert_eq!(done_at, Some(end));
    }
}

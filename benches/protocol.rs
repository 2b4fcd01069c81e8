//! Wire-protocol costs per operation: response head, chunked decoding, SSE splitting,
//! completions-event decoding, and the whole response parser over a 128-token stream.
//!
//! `cargo bench --bench protocol -- --quick` for a fast look.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use servebench::proto::{
    decode_completion_event, ChunkedDecoder, CompletionEvent, Event, Progress, ResponseHead,
    ResponseParser, SseParser,
};

const TOKENS: usize = 128;
/// A typical Ethernet TCP segment's payload: the size of the reads the engine will see.
const READ_SIZE: usize = 1460;

const HEAD: &[u8] = b"HTTP/1.1 200 OK\r\ndate: Sun, 22 Nov 2026 17:00:00 GMT\r\n\
    server: uvicorn\r\ncontent-type: text/event-stream; charset=utf-8\r\n\
    transfer-encoding: chunked\r\n\r\n";

fn token_event(i: usize) -> String {
    let finish = if i == TOKENS - 1 {
        "\"length\""
    } else {
        "null"
    };
    format!(
        "{{\"id\":\"cmpl-9f3c2a7be1d04c5a8e6f1b2c3d4e5f60\",\"object\":\"text_completion\",\
         \"created\":1795000000,\"model\":\"meta-llama/Llama-3.1-8B-Instruct\",\
         \"choices\":[{{\"index\":0,\"text\":\" token{i}\",\"logprobs\":null,\
         \"finish_reason\":{finish},\"stop_reason\":null}}],\"usage\":null}}"
    )
}

const USAGE_EVENT: &str = "{\"id\":\"cmpl-9f3c2a7be1d04c5a8e6f1b2c3d4e5f60\",\
    \"object\":\"text_completion\",\"created\":1795000000,\"model\":\"m\",\"choices\":[],\
    \"usage\":{\"prompt_tokens\":1024,\"total_tokens\":1152,\"completion_tokens\":128}}";

/// The SSE events of a 128-token completion with usage and `[DONE]`, one per item.
fn sse_events() -> Vec<String> {
    let mut events: Vec<String> = (0..TOKENS)
        .map(|i| format!("data: {}\n\n", token_event(i)))
        .collect();
    events.push(format!("data: {USAGE_EVENT}\n\n"));
    events.push("data: [DONE]\n\n".to_owned());
    events
}

/// One chunk per event, as uvicorn writes them.
fn chunked_body() -> Vec<u8> {
    let mut body = Vec::new();
    for e in sse_events() {
        body.extend_from_slice(format!("{:x}\r\n{e}\r\n", e.len()).as_bytes());
    }
    body.extend_from_slice(b"0\r\n\r\n");
    body
}

fn head_parse(c: &mut Criterion) {
    c.bench_function("head_parse", |b| {
        b.iter(|| {
            ResponseHead::parse(black_box(HEAD))
                .ok()
                .flatten()
                .map(|h| h.1)
        })
    });
}

fn chunked_decode(c: &mut Criterion) {
    let body = chunked_body();
    let mut group = c.benchmark_group("chunked_decode_128_events");
    group.throughput(Throughput::Bytes(body.len() as u64));
    let mut dec = ChunkedDecoder::new();
    group.bench_function("whole", |b| {
        b.iter(|| {
            dec.reset();
            let mut rest: &[u8] = black_box(&body);
            let mut n = 0;
            while let Ok(Some(data)) = dec.decode(&mut rest) {
                n += data.len();
            }
            n
        })
    });
    group.finish();
}

fn sse_split(c: &mut Criterion) {
    let stream = sse_events().concat().into_bytes();
    let mut group = c.benchmark_group("sse_split_128_events");
    group.throughput(Throughput::Bytes(stream.len() as u64));
    let mut parser = SseParser::new();
    group.bench_function("whole", |b| {
        b.iter(|| {
            parser.reset();
            let mut n = 0;
            let _ = parser.feed(black_box(&stream), &mut |e| n += e.data.len());
            n
        })
    });
    group.bench_function("1460_byte_reads", |b| {
        b.iter(|| {
            parser.reset();
            let mut n = 0;
            for read in black_box(&stream).chunks(READ_SIZE) {
                let _ = parser.feed(read, &mut |e| n += e.data.len());
            }
            n
        })
    });
    group.finish();
}

fn completions_decode(c: &mut Criterion) {
    let token = token_event(7);
    let mut group = c.benchmark_group("completions_decode");
    group.bench_function("token_event", |b| {
        b.iter(
            || match decode_completion_event(black_box(token.as_bytes())) {
                Ok(CompletionEvent::Token { text, .. }) => text.raw().len(),
                _ => 0,
            },
        )
    });
    group.bench_function("usage_event", |b| {
        b.iter(|| decode_completion_event(black_box(USAGE_EVENT.as_bytes())).is_ok())
    });
    group.bench_function("done", |b| {
        b.iter(|| decode_completion_event(black_box(b"[DONE]")).is_ok())
    });
    // The cost this decoder avoids: a full serde_json::Value per event.
    group.bench_function("serde_json_value_baseline", |b| {
        b.iter(|| {
            serde_json::from_slice::<serde_json::Value>(black_box(token.as_bytes()))
                .map(|v| v["choices"][0]["text"].as_str().map_or(0, str::len))
        })
    });
    // simd-json parses in place, so each event is copied into a scratch buffer first (as a
    // client using it would have to: the read buffer holds the next event's bytes too).
    let mut scratch = Vec::with_capacity(token.len());
    group.bench_function("simd_json_borrowed_baseline", |b| {
        b.iter(|| {
            scratch.clear();
            scratch.extend_from_slice(black_box(token.as_bytes()));
            simd_json::to_borrowed_value(&mut scratch).map(|v| {
                use simd_json::prelude::*;
                v.get("choices")
                    .and_then(|c| c.get_idx(0))
                    .and_then(|c| c.get_str("text"))
                    .map_or(0, str::len)
            })
        })
    });
    group.finish();
}

fn whole_response(c: &mut Criterion) {
    let mut response = HEAD.to_vec();
    response.extend_from_slice(&chunked_body());
    let reads: Vec<&[u8]> = response.chunks(READ_SIZE).collect();
    let mut group = c.benchmark_group("response_128_tokens");
    group.throughput(Throughput::Elements(TOKENS as u64));
    let mut parser = ResponseParser::new();
    let run = |parser: &mut ResponseParser| {
        parser.reset();
        let mut tokens = 0;
        let mut text_bytes = 0;
        for read in &reads {
            let progress = parser.feed(black_box(read), &mut |e| {
                if let Event::Sse(e) = e {
                    if let Ok(CompletionEvent::Token { text, .. }) = decode_completion_event(e.data)
                    {
                        tokens += 1;
                        text_bytes += text.raw().len();
                    }
                }
            });
            if let Ok(Progress::Done { .. }) | Err(_) = progress {
                break;
            }
        }
        (tokens, text_bytes)
    };
    assert_eq!(
        run(&mut parser).0,
        TOKENS,
        "the benchmark must see every token"
    );
    group.bench_function("1460_byte_reads_with_decode", |b| {
        b.iter(|| run(&mut parser))
    });
    group.finish();
}

/// One token event of each other format, through `decode_stream_event` (serde with borrowed
/// raw strings), beside the Completions decoder's figure above.
fn other_formats_decode(c: &mut Criterion) {
    use servebench::backend::Api;
    use servebench::proto::decode_stream_event;
    let events: [(&str, Api, &[u8]); 5] = [
        ("chat", Api::Chat, br#"{"id":"chatcmpl-7","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":" quick"},"logprobs":null,"finish_reason":null}]}"#),
        ("responses", Api::Responses, br#"{"type":"response.output_text.delta","sequence_number":5,"item_id":"msg_7","output_index":0,"content_index":0,"delta":" quick","logprobs":[]}"#),
        ("sglang", Api::SglangGenerate, br#"{"text":" the quick brown fox","output_ids":[1000,1001,1002,1003],"meta_info":{"id":"0123456789abcdef","finish_reason":null,"prompt_tokens":256,"completion_tokens":4,"cached_tokens":0}}"#),
        ("tgi", Api::Tgi, br#"{"index":2,"token":{"id":1001,"text":" quick","logprob":0.0,"special":false},"generated_text":null,"details":null}"#),
        ("triton", Api::Triton, br#"{"model_name":"ensemble","model_version":"1","sequence_end":false,"sequence_id":0,"text_output":" quick"}"#),
    ];
    let mut group = c.benchmark_group("format_decode");
    for (name, api, data) in events {
        group.bench_function(name, |b| {
            b.iter(|| decode_stream_event(api, b"", black_box(data)).is_ok())
        });
    }
    group.finish();
}

criterion_group!(
    benches,
    head_parse,
    chunked_decode,
    sse_split,
    completions_decode,
    other_formats_decode,
    whole_response
);
criterion_main!(benches);

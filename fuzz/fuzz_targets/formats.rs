//! Arbitrary event data into every non-Completions stream decoder: never a panic, and any
//! text it returns is valid escaped JSON string content (it unescapes).
#![no_main]

use libfuzzer_sys::fuzz_target;
use servebench::backend::Api;
use servebench::proto::{decode_stream_event, unescape_into, StreamEvent};

fuzz_target!(|data: &[u8]| {
    let Some((&k, data)) = data.split_first() else {
        return;
    };
    let api = [Api::Chat, Api::Responses, Api::SglangGenerate, Api::Tgi, Api::Triton]
        [k as usize % 5];
    let event: &[u8] = if k & 0x80 != 0 { b"response.output_text.delta" } else { b"" };
    if let Ok(StreamEvent::Token { text, .. }) = decode_stream_event(api, event, data) {
        let mut s = String::new();
        unescape_into(text.as_bytes(), &mut s).expect("decoded text unescapes");
    }
});

//! Arbitrary bytes into the SSE parser, whole and cut in three: same events, same error.
#![no_main]

use libfuzzer_sys::fuzz_target;
use servebench::proto::{ProtoError, SseParser};

fn run(p: &mut SseParser, parts: &[&[u8]]) -> (Vec<(Vec<u8>, Vec<u8>)>, Result<(), ProtoError>) {
    p.reset();
    let mut out = Vec::new();
    for part in parts {
        if let Err(e) = p.feed(part, &mut |e| out.push((e.event.to_vec(), e.data.to_vec()))) {
            return (out, Err(e));
        }
    }
    (out, Ok(()))
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let (k, input) = data.split_at(2);
    let a = (k[0] as usize * input.len()) / 255;
    let b = a + ((k[1] as usize * (input.len() - a)) / 255);
    let mut p = SseParser::with_max_event_size(256);
    let whole = run(&mut p, &[input]);
    let split = run(&mut p, &[&input[..a], &input[a..b], &input[b..]]);
    assert_eq!(whole, split, "cuts at {a} and {b}");
});

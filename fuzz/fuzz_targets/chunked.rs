//! Arbitrary bytes into the chunked decoder, whole and cut: same data, same end, same error.
#![no_main]

use libfuzzer_sys::fuzz_target;
use servebench::proto::{ChunkedDecoder, ProtoError};

fn run(parts: &[&[u8]]) -> (Vec<u8>, Result<Option<usize>, ProtoError>) {
    let mut dec = ChunkedDecoder::new();
    let mut out = Vec::new();
    let mut offset = 0;
    for part in parts {
        let mut rest = *part;
        loop {
            match dec.decode(&mut rest) {
                Ok(Some(d)) => {
                    assert!(!d.is_empty());
                    out.extend_from_slice(d);
                }
                Ok(None) => break,
                Err(e) => return (out, Err(e)),
            }
        }
        if dec.is_done() {
            return (out, Ok(Some(offset + part.len() - rest.len())));
        }
        assert!(rest.is_empty());
        offset += part.len();
    }
    (out, Ok(None))
}

fuzz_target!(|data: &[u8]| {
    let Some((&k, input)) = data.split_first() else {
        return;
    };
    let cut = (k as usize * input.len()) / 255;
    assert_eq!(
        run(&[input]),
        run(&[&input[..cut], &input[cut..]]),
        "cut at {cut}"
    );
});

//! Arbitrary bytes, cut at an arbitrary point, into a ResponseParser: it must not panic, and
//! the two-read feed must report exactly what the one-read feed reports.
#![no_main]

use libfuzzer_sys::fuzz_target;
use servebench::proto::{Event, Progress, ProtoError, ResponseParser};

#[derive(Debug, PartialEq)]
enum Seen {
    Head(u16, bool),
    Sse(Vec<u8>, Vec<u8>),
    Body(Vec<u8>),
}

fn run(
    p: &mut ResponseParser,
    input: &[u8],
    cut: usize,
) -> (Vec<Seen>, Result<Option<usize>, ProtoError>) {
    p.reset();
    let mut seen = Vec::new();
    let mut record = |e: Event<'_>| match e {
        Event::Head(h) => seen.push(Seen::Head(h.status, h.keep_alive)),
        Event::Sse(e) => seen.push(Seen::Sse(e.event.to_vec(), e.data.to_vec())),
        Event::Body(b) => match seen.last_mut() {
            Some(Seen::Body(prev)) => prev.extend_from_slice(b),
            _ => seen.push(Seen::Body(b.to_vec())),
        },
    };
    let mut start = 0;
    for end in [cut, input.len()] {
        match p.feed(&input[start..end], &mut record) {
            Ok(Progress::NeedMore) => {}
            Ok(Progress::Done { consumed }) => {
                assert!(consumed <= end - start);
                return (seen, Ok(Some(start + consumed)));
            }
            Err(e) => return (seen, Err(e)),
        }
        start = end;
    }
    let end = p.eof(&mut record).map(|()| None);
    (seen, end)
}

fuzz_target!(|data: &[u8]| {
    let Some((&k, input)) = data.split_first() else {
        return;
    };
    let cut = (k as usize * input.len()) / 255;
    let mut p = ResponseParser::with_max_event_size(1024);
    let whole = run(&mut p, input, input.len());
    let split = run(&mut p, input, cut);
    assert_eq!(whole, split, "cut at {cut}");
});

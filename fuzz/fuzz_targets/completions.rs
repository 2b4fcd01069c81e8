//! Arbitrary bytes as a stream event's data: no panic; whatever is accepted is valid JSON to
//! serde_json too, and its strings unescape.
#![no_main]

use libfuzzer_sys::fuzz_target;
use servebench::proto::{decode_completion_event, unescape_into, CompletionEvent};

fuzz_target!(|data: &[u8]| {
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
        text.unescape_into(&mut String::new())
            .expect("accepted text unescapes");
        if let Some(f) = finish_reason {
            f.unescape_into(&mut String::new())
                .expect("accepted finish_reason unescapes");
        }
    }
    let trimmed = data.trim_ascii();
    if event == CompletionEvent::Done || trimmed.is_empty() {
        return;
    }
    if let Err(e) = serde_json::from_slice::<serde::de::IgnoredAny>(data) {
        // Python (and this decoder) read 1e400 as infinity; serde_json refuses it.
        assert!(
            e.to_string().contains("out of range"),
            "accepted what serde_json refuses: {e}"
        );
    }
});

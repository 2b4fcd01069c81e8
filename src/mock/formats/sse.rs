//! Server-sent-event framing, inside HTTP/1.1 chunks (or raw for HTTP/1.0 clients).

use std::io::Write;

/// Appends one event: whatever `write` appends (it ends the event with its blank line), then
/// frames it as one HTTP chunk when `chunked`. The chunk size is only known afterwards, so the
/// size line is appended and rotated in front: no second buffer.
pub fn event(out: &mut Vec<u8>, chunked: bool, write: impl FnOnce(&mut Vec<u8>)) {
    let start = out.len();
    write(out);
    if chunked {
        let len = out.len() - start;
        let body_end = out.len();
        let _ = write!(out, "{len:x}\r\n");
        let size_len = out.len() - body_end;
        out[start..].rotate_right(size_len);
        out.extend_from_slice(b"\r\n");
    }
}

/// Appends `data: <parts>\n\n` as one event.
pub fn data(out: &mut Vec<u8>, chunked: bool, parts: &[&[u8]]) {
    event(out, chunked, |out| {
        out.extend_from_slice(b"data: ");
        for p in parts {
            out.extend_from_slice(p);
        }
        out.extend_from_slice(b"\n\n");
    });
}

/// Appends `data: [DONE]`.
pub fn done(out: &mut Vec<u8>, chunked: bool) {
    data(out, chunked, &[b"[DONE]"]);
}

/// Ends the body: the last (empty) chunk when chunked; HTTP/1.0 bodies end with the
/// connection.
pub fn finish(out: &mut Vec<u8>, chunked: bool) {
    if chunked {
        out.extend_from_slice(b"0\r\n\r\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_size_is_prefixed() {
        let mut out = b"xx".to_vec();
        data(&mut out, true, &[b"{\"a\":", b"1}"]);
        assert_eq!(out, b"xxf\r\ndata: {\"a\":1}\n\n\r\n");
        let mut out = Vec::new();
        data(&mut out, false, &[b"[DONE]"]);
        finish(&mut out, false);
        assert_eq!(out, b"data: [DONE]\n\n");
        let mut out = Vec::new();
        event(&mut out, true, |o| o.extend_from_slice(&[b'x'; 300]));
        assert!(out.starts_with(b"12c\r\nxxx"));
        assert_eq!(out.len(), 5 + 300 + 2);
    }
}

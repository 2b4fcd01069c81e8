//! The HTTP/1.x response head: status, persistence and body framing.
//!
//! httparse does the syntax; this module applies RFC 9112 §6.3 the way hyper's client does and
//! keeps only what the engine needs in a small `Copy` struct, so a parsed head borrows nothing
//! and allocates nothing.

use std::fmt;

use super::ProtoError;

/// Header lines kept per response; more is an error (LLM servers send about ten).
pub const MAX_HEADERS: usize = 64;
/// Largest response head accepted, status line to blank line included.
pub const MAX_HEAD_BYTES: usize = 64 * 1024;
/// Bytes of the reason phrase kept for error messages (longer ones are cut at a char boundary).
const REASON_CAP: usize = 48;

/// How the body of a response is delimited (RFC 9112 §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No body at all (1xx, 204, 304).
    Empty,
    /// Exactly this many bytes (Content-Length).
    Length(u64),
    /// Transfer-Encoding with `chunked` as the last coding.
    Chunked,
    /// The body runs until the server closes the connection.
    UntilClose,
}

/// What the engine needs from a response head.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ResponseHead {
    pub status: u16,
    /// The connection may carry another request after this response.
    pub keep_alive: bool,
    pub framing: Framing,
    /// `Content-Type: text/event-stream` (parameters ignored).
    pub is_event_stream: bool,
    reason: [u8; REASON_CAP],
    reason_len: u8,
}

impl ResponseHead {
    /// Parses a head at the start of `buf`.
    ///
    /// `Ok(None)`: the head is not complete yet. `Ok(Some((head, len)))`: the head took `len`
    /// bytes (stray empty lines before the status line included); the body starts there.
    pub fn parse(buf: &[u8]) -> Result<Option<(ResponseHead, usize)>, ProtoError> {
        let skipped = leading_newlines(buf);
        let rest = &buf[skipped..];
        match find_head_end(rest, 0) {
            Some(end) => Ok(Some((parse_complete(&rest[..end])?, skipped + end))),
            None if rest.len() >= MAX_HEAD_BYTES => Err(ProtoError::HeadTooLarge {
                limit: MAX_HEAD_BYTES,
            }),
            None => Ok(None),
        }
    }

    /// The reason phrase as sent (at most 48 bytes of it), for error messages.
    pub fn reason(&self) -> &str {
        std::str::from_utf8(&self.reason[..self.reason_len as usize]).unwrap_or_default()
    }

    /// 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

impl fmt::Debug for ResponseHead {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseHead")
            .field("status", &self.status)
            .field("reason", &self.reason())
            .field("keep_alive", &self.keep_alive)
            .field("framing", &self.framing)
            .field("is_event_stream", &self.is_event_stream)
            .finish()
    }
}

/// Count of CR/LF bytes before the status line. A server that ends a previous body with an
/// extra CRLF is common enough to tolerate, and skipping them here means a blank line found by
/// [`find_head_end`] always ends a head.
pub(crate) fn leading_newlines(buf: &[u8]) -> usize {
    buf.iter()
        .position(|&b| b != b'\r' && b != b'\n')
        .unwrap_or(buf.len())
}

/// Length of the head in `buf` (which must not start with CR/LF), looking only at line feeds at
/// or after `from`: a head ends at the first empty line, `\n\n` or `\n\r\n` (httparse accepts
/// bare LF line ends in responses, so this does too).
pub(crate) fn find_head_end(buf: &[u8], from: usize) -> Option<usize> {
    for p in memchr::memchr_iter(b'\n', &buf[from..]).map(|p| p + from) {
        let blank = match p {
            0 => false,
            1 => buf[0] == b'\n',
            _ => buf[p - 1] == b'\n' || (buf[p - 1] == b'\r' && buf[p - 2] == b'\n'),
        };
        if blank {
            return Some(p + 1);
        }
    }
    None
}

/// Parses a head known to end exactly at the end of `head`.
pub(crate) fn parse_complete(head: &[u8]) -> Result<ResponseHead, ProtoError> {
    if head.len() > MAX_HEAD_BYTES {
        return Err(ProtoError::HeadTooLarge {
            limit: MAX_HEAD_BYTES,
        });
    }
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut headers);
    match resp.parse(head) {
        Ok(httparse::Status::Complete(n)) if n == head.len() => {}
        // The blank line we found is not where httparse ends the head: a malformed line.
        Ok(_) => return Err(ProtoError::InvalidHead(httparse::Error::NewLine)),
        Err(httparse::Error::TooManyHeaders) => {
            return Err(ProtoError::TooManyHeaders { limit: MAX_HEADERS })
        }
        Err(e) => return Err(ProtoError::InvalidHead(e)),
    }
    let status = resp.code.unwrap_or(0);
    if !(100..=999).contains(&status) {
        return Err(ProtoError::InvalidStatus(status));
    }
    let http11 = resp.version == Some(1);

    let mut content_length: Option<u64> = None;
    let mut transfer_encoding: Option<&[u8]> = None;
    let mut close = false;
    let mut keep_alive_token = false;
    let mut is_event_stream = false;
    for h in resp.headers.iter() {
        let name = h.name.as_bytes();
        if name.eq_ignore_ascii_case(b"content-length") {
            for value in h.value.split(|&b| b == b',') {
                let n = parse_decimal(trim_ows(value)).ok_or(ProtoError::InvalidContentLength)?;
                if content_length.is_some_and(|prev| prev != n) {
                    return Err(ProtoError::ConflictingContentLength);
                }
                content_length = Some(n);
            }
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            // Only the last coding of the last field line decides (RFC 9112 §6.3 item 4).
            transfer_encoding = Some(h.value);
        } else if name.eq_ignore_ascii_case(b"connection") {
            for token in h.value.split(|&b| b == b',').map(trim_ows) {
                close |= token.eq_ignore_ascii_case(b"close");
                keep_alive_token |= token.eq_ignore_ascii_case(b"keep-alive");
            }
        } else if name.eq_ignore_ascii_case(b"content-type") {
            let media_type = h.value.split(|&b| b == b';').next().unwrap_or_default();
            is_event_stream = trim_ows(media_type).eq_ignore_ascii_case(b"text/event-stream");
        }
    }

    let framing = match status {
        100..=199 | 204 | 304 => Framing::Empty,
        _ => match transfer_encoding {
            Some(_) if !http11 => return Err(ProtoError::TransferEncodingInHttp10),
            Some(te) => {
                let last = te.rsplit(|&b| b == b',').next().unwrap_or_default();
                if trim_ows(last).eq_ignore_ascii_case(b"chunked") {
                    Framing::Chunked
                } else {
                    Framing::UntilClose
                }
            }
            None => content_length.map_or(Framing::UntilClose, Framing::Length),
        },
    };
    let persistent = if http11 {
        !close
    } else {
        keep_alive_token && !close
    };

    let reason_src = resp.reason.unwrap_or_default();
    let mut reason_len = reason_src.len().min(REASON_CAP);
    while !reason_src.is_char_boundary(reason_len) {
        reason_len -= 1;
    }
    let mut reason = [0u8; REASON_CAP];
    reason[..reason_len].copy_from_slice(&reason_src.as_bytes()[..reason_len]);

    Ok(ResponseHead {
        status,
        keep_alive: persistent && framing != Framing::UntilClose,
        framing,
        is_event_stream,
        reason,
        reason_len: reason_len as u8,
    })
}

fn trim_ows(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

/// Digits only (no sign, no spaces), without overflow.
fn parse_decimal(s: &[u8]) -> Option<u64> {
    if s.is_empty() {
        return None;
    }
    s.iter().try_fold(0u64, |n, &b| {
        if b.is_ascii_digit() {
            n.checked_mul(10)?.checked_add(u64::from(b - b'0'))
        } else {
            None
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(s: &str) -> Result<ResponseHead, ProtoError> {
        match ResponseHead::parse(s.as_bytes())? {
            Some((h, n)) => {
                assert_eq!(n, s.len(), "head length");
                Ok(h)
            }
            None => panic!("incomplete head: {s:?}"),
        }
    }

    #[test]
    fn chunked_event_stream() {
        let h = head(
            "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream; charset=utf-8\r\n\
             transfer-encoding: chunked\r\n\r\n",
        )
        .unwrap();
        assert_eq!(h.status, 200);
        assert_eq!(h.reason(), "OK");
        assert!(h.keep_alive && h.is_event_stream && h.is_success());
        assert_eq!(h.framing, Framing::Chunked);
    }

    #[test]
    fn content_length_and_lists() {
        let h = head("HTTP/1.1 404 Not Found\r\nContent-Length: 12\r\n\r\n").unwrap();
        assert_eq!(
            (h.status, h.framing, h.reason()),
            (404, Framing::Length(12), "Not Found")
        );
        assert!(!h.is_event_stream && !h.is_success());
        let h = head("HTTP/1.1 200 OK\r\nContent-Length: 7, 7\r\ncontent-length:7\r\n\r\n");
        assert_eq!(h.unwrap().framing, Framing::Length(7));
    }

    #[test]
    fn conflicting_or_invalid_content_length() {
        let e = head("HTTP/1.1 200 OK\r\nContent-Length: 7\r\nContent-Length: 8\r\n\r\n");
        assert_eq!(e.unwrap_err(), ProtoError::ConflictingContentLength);
        let e = head("HTTP/1.1 200 OK\r\nContent-Length: 7, 9\r\n\r\n");
        assert_eq!(e.unwrap_err(), ProtoError::ConflictingContentLength);
        for bad in ["+7", "", "0x10", "99999999999999999999", "1 2"] {
            let e = head(&format!("HTTP/1.1 200 OK\r\nContent-Length: {bad}\r\n\r\n"));
            assert_eq!(e.unwrap_err(), ProtoError::InvalidContentLength, "{bad:?}");
        }
    }

    #[test]
    fn transfer_encoding_rules() {
        let te = |v: &str| {
            head(&format!(
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: {v}\r\nContent-Length: 5\r\n\r\n"
            ))
            .unwrap()
        };
        assert_eq!(te("gzip, Chunked").framing, Framing::Chunked);
        let h = te("chunked, gzip");
        assert_eq!(h.framing, Framing::UntilClose);
        assert!(
            !h.keep_alive,
            "a close-delimited body cannot leave the connection reusable"
        );
        let h = head(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n",
        );
        assert_eq!(h.unwrap().framing, Framing::UntilClose);
        let e = head("HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
        assert_eq!(e.unwrap_err(), ProtoError::TransferEncodingInHttp10);
    }

    #[test]
    fn bodiless_statuses() {
        for code in [100, 103, 204, 304] {
            let h = head(&format!("HTTP/1.1 {code} X\r\nContent-Length: 10\r\n\r\n")).unwrap();
            assert_eq!(h.framing, Framing::Empty, "{code}");
        }
        let h = head("HTTP/1.1 500 Internal Server Error\r\n\r\n").unwrap();
        assert_eq!(h.framing, Framing::UntilClose);
    }

    #[test]
    fn persistence() {
        let ka = |s: &str| head(s).unwrap().keep_alive;
        assert!(ka("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"));
        assert!(!ka(
            "HTTP/1.1 200 OK\r\nConnection: Close\r\nContent-Length: 0\r\n\r\n"
        ));
        assert!(!ka(
            "HTTP/1.1 200 OK\r\nConnection: upgrade, close\r\nContent-Length: 0\r\n\r\n"
        ));
        assert!(!ka("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n"));
        assert!(ka(
            "HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 0\r\n\r\n"
        ));
    }

    #[test]
    fn partial_heads_and_limits() {
        assert_eq!(
            ResponseHead::parse(b"HTTP/1.1 200 OK\r\nA: b\r\n").unwrap(),
            None
        );
        assert_eq!(ResponseHead::parse(b"").unwrap(), None);
        let mut big = b"HTTP/1.1 200 OK\r\n".to_vec();
        while big.len() < MAX_HEAD_BYTES {
            big.extend_from_slice(b"x-filler: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n");
        }
        let e = ResponseHead::parse(&big).unwrap_err();
        assert_eq!(
            e,
            ProtoError::HeadTooLarge {
                limit: MAX_HEAD_BYTES
            }
        );
        big.extend_from_slice(b"\r\n");
        assert!(
            ResponseHead::parse(&big).is_err(),
            "a complete but oversized head"
        );

        let mut many = b"HTTP/1.1 200 OK\r\n".to_vec();
        for i in 0..=MAX_HEADERS {
            many.extend_from_slice(format!("h{i}: v\r\n").as_bytes());
        }
        many.extend_from_slice(b"\r\n");
        let e = ResponseHead::parse(&many).unwrap_err();
        assert_eq!(e, ProtoError::TooManyHeaders { limit: MAX_HEADERS });
    }

    #[test]
    fn malformed_heads() {
        for bad in [
            "HTTP/1.1 2x0 OK\r\n\r\n",
            "HTTP/2 200 OK\r\n\r\n",
            "HTTP/1.1 200 OK\r\nbad header\r\n\r\n",
            "HTTP/1.1 200 OK\r\nA: b\rc\r\n\r\n",
            "SSH-2.0-OpenSSH\r\n\r\n",
        ] {
            assert!(
                matches!(head(bad), Err(ProtoError::InvalidHead(_))),
                "{bad:?} -> {:?}",
                head(bad)
            );
        }
        assert_eq!(
            head("HTTP/1.1 099 X\r\n\r\n").unwrap_err(),
            ProtoError::InvalidStatus(99)
        );
    }

    #[test]
    fn bare_lf_and_leading_newlines() {
        let h = head("\r\n\r\nHTTP/1.1 201 Created\nContent-Length: 3\n\n").unwrap();
        assert_eq!((h.status, h.framing), (201, Framing::Length(3)));
        let (_, n) = ResponseHead::parse(b"HTTP/1.1 200 OK\r\n\r\nbody")
            .unwrap()
            .unwrap();
        assert_eq!(n, 19);
    }

    #[test]
    fn long_reason_is_cut_at_a_char_boundary() {
        let reason = "é".repeat(40);
        let h = head(&format!("HTTP/1.1 500 {reason}\r\n\r\n"));
        // httparse accepts obs-text in the reason only as bytes; either way nothing panics.
        if let Ok(h) = h {
            assert!(h.reason().len() <= REASON_CAP);
            assert!(reason.starts_with(h.reason()));
        }
    }
}

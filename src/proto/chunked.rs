//! Incremental decoder for `Transfer-Encoding: chunked` (RFC 9112 §7.1).
//!
//! A byte-wise state machine for the framing (size lines, CRLFs, trailers) and whole borrowed
//! slices for the data, so decoding never copies a payload byte and any split of the input
//! decodes the same. States and limits follow hyper's decoder. The size line is parsed here
//! rather than with `httparse::parse_chunk_size` because that function needs the whole line in
//! one slice, which a split read does not give.

use super::ProtoError;

/// Bytes of chunk extensions accepted over a whole body (hyper's limit).
pub const CHUNK_EXTENSIONS_LIMIT: usize = 16 * 1024;
/// Bytes of trailer section accepted (hyper's limit).
pub const TRAILER_LIMIT: usize = 16 * 1024;
/// A size of more hex digits than fit in a u64 is refused (as httparse does).
const MAX_SIZE_DIGITS: u8 = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Hex digits of a chunk size.
    Size,
    /// Spaces or tabs after the size.
    SizeLws,
    /// `;ext=...` up to the CR.
    Extension,
    SizeLf,
    Data,
    DataCr,
    DataLf,
    /// Start of a trailer line, or the CR of the final empty line.
    TrailerStart,
    TrailerName,
    TrailerValue,
    TrailerLf,
    EndLf,
    Done,
}

/// One chunked body's decoding state; [`reset`](Self::reset) it for the next body.
#[derive(Debug, Clone)]
pub struct ChunkedDecoder {
    state: State,
    /// Size being read, then bytes of the current chunk still to come.
    size: u64,
    digits: u8,
    extension_bytes: usize,
    trailer_bytes: usize,
}

impl Default for ChunkedDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl ChunkedDecoder {
    pub fn new() -> Self {
        ChunkedDecoder {
            state: State::Size,
            size: 0,
            digits: 0,
            extension_bytes: 0,
            trailer_bytes: 0,
        }
    }

    pub fn reset(&mut self) {
        *self = Self::new();
    }

    /// The terminating zero-size chunk, trailers and final CRLF have all been read.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Where the decoder stands, in words, for "connection closed while ..." messages.
    pub fn position(&self) -> &'static str {
        match self.state {
            State::Size | State::SizeLws | State::Extension | State::SizeLf => {
                "in a chunk size line"
            }
            State::Data | State::DataCr | State::DataLf => "inside a chunk",
            State::TrailerStart
            | State::TrailerName
            | State::TrailerValue
            | State::TrailerLf
            | State::EndLf => "in the chunked trailer",
            State::Done => "after the chunked body",
        }
    }

    /// Decodes from the front of `*input` and advances it past what was used.
    ///
    /// Returns the next run of chunk data (a slice of the input), or `None` once `*input` is
    /// used up or the body is complete ([`is_done`](Self::is_done)); bytes after the body are
    /// left in `*input`.
    pub fn decode<'a>(&mut self, input: &mut &'a [u8]) -> Result<Option<&'a [u8]>, ProtoError> {
        loop {
            match self.state {
                State::Done => return Ok(None),
                State::Data => {
                    if input.is_empty() {
                        return Ok(None);
                    }
                    let n = usize::try_from(self.size).map_or(input.len(), |s| s.min(input.len()));
                    let (data, rest) = input.split_at(n);
                    *input = rest;
                    self.size -= n as u64;
                    if self.size == 0 {
                        self.state = State::DataCr;
                    }
                    return Ok(Some(data));
                }
                _ => {}
            }
            let Some((&b, rest)) = input.split_first() else {
                return Ok(None);
            };
            *input = rest;
            self.state = self.step(b)?;
        }
    }

    /// One framing byte.
    fn step(&mut self, b: u8) -> Result<State, ProtoError> {
        let bad = |what| Err(ProtoError::Chunked(what));
        match (self.state, b) {
            (State::Size, _) if hex_value(b).is_some() => {
                if self.digits == MAX_SIZE_DIGITS {
                    return bad("chunk size has more than 16 hex digits");
                }
                self.digits += 1;
                self.size = (self.size << 4) | u64::from(hex_value(b).unwrap_or(0));
                Ok(State::Size)
            }
            (State::Size, _) if self.digits == 0 => bad("chunk size is not a hex number"),
            (State::Size | State::SizeLws, b' ' | b'\t') => Ok(State::SizeLws),
            (State::Size | State::SizeLws, b';') => Ok(State::Extension),
            (State::Size | State::SizeLws, b'\r') => Ok(State::SizeLf),
            (State::Size | State::SizeLws, _) => bad("invalid byte after the chunk size"),
            (State::Extension, b'\r') => Ok(State::SizeLf),
            (State::Extension, b'\n') => bad("bare LF in a chunk extension"),
            (State::Extension, _) => {
                self.extension_bytes += 1;
                if self.extension_bytes > CHUNK_EXTENSIONS_LIMIT {
                    return Err(ProtoError::ChunkExtensionsTooLarge {
                        limit: CHUNK_EXTENSIONS_LIMIT,
                    });
                }
                Ok(State::Extension)
            }
            (State::SizeLf, b'\n') if self.size == 0 => Ok(State::TrailerStart),
            (State::SizeLf, b'\n') => Ok(State::Data),
            (State::SizeLf, _) => bad("missing LF after the chunk size"),
            (State::DataCr, b'\r') => Ok(State::DataLf),
            (State::DataLf, b'\n') => {
                self.size = 0;
                self.digits = 0;
                Ok(State::Size)
            }
            (State::DataCr | State::DataLf, _) => bad("missing CRLF after chunk data"),
            (State::TrailerStart, b'\r') => Ok(State::EndLf),
            (State::TrailerStart | State::TrailerName | State::TrailerValue, _) => {
                self.trailer_bytes += 1;
                if self.trailer_bytes > TRAILER_LIMIT {
                    return Err(ProtoError::TrailersTooLarge {
                        limit: TRAILER_LIMIT,
                    });
                }
                match (self.state, b) {
                    (State::TrailerName, b':') => Ok(State::TrailerValue),
                    (State::TrailerStart | State::TrailerName, _) if is_tchar(b) => {
                        Ok(State::TrailerName)
                    }
                    (State::TrailerStart | State::TrailerName, _) => {
                        bad("invalid trailer field name")
                    }
                    (_, b'\r') => Ok(State::TrailerLf),
                    (_, b'\n') => bad("bare LF in a trailer field"),
                    (_, 0..=8 | 0x0a..=0x1f | 0x7f) => bad("control byte in a trailer field"),
                    _ => Ok(State::TrailerValue),
                }
            }
            (State::TrailerLf, b'\n') => Ok(State::TrailerStart),
            (State::TrailerLf, _) => bad("missing LF after a trailer field"),
            (State::EndLf, b'\n') => Ok(State::Done),
            (State::EndLf, _) => bad("missing LF after the last chunk"),
            (State::Data | State::Done, _) => bad("internal: framing byte in a data state"),
        }
    }
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// RFC 9110 token characters.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decodes `parts` in order; returns the data and how many bytes of the last part were left.
    fn decode_parts(parts: &[&[u8]]) -> Result<(Vec<u8>, bool, usize), ProtoError> {
        let mut dec = ChunkedDecoder::new();
        let mut out = Vec::new();
        let mut left = 0;
        for part in parts {
            let mut rest: &[u8] = part;
            while let Some(data) = dec.decode(&mut rest)? {
                out.extend_from_slice(data);
            }
            left = rest.len();
        }
        Ok((out, dec.is_done(), left))
    }

    fn decode_all(s: &[u8]) -> Result<(Vec<u8>, bool, usize), ProtoError> {
        decode_parts(&[s])
    }

    #[test]
    fn simple_body_with_leftover() {
        let (data, done, left) =
            decode_all(b"3\r\nhel\r\nB\r\nlo world!!!\r\n0\r\n\r\nNEXT").unwrap();
        assert_eq!(data, b"hello world!!!");
        assert!(done);
        assert_eq!(left, 4);
    }

    #[test]
    fn every_split_point_gives_the_same_result() {
        let body: &[u8] = b"5;name=v\r\nhello\r\n1a  \r\nabcdefghijklmnopqrstuvwxyz\r\n\
                            0\r\nX-Trailer: yes\r\nOther: 1\r\n\r\n";
        let whole = decode_all(body).unwrap();
        assert_eq!(whole.0, b"helloabcdefghijklmnopqrstuvwxyz");
        assert!(whole.1);
        for i in 0..=body.len() {
            let (a, b) = body.split_at(i);
            assert_eq!(decode_parts(&[a, b]).unwrap(), whole, "split at {i}");
        }
        let bytes: Vec<&[u8]> = body.chunks(1).collect();
        assert_eq!(decode_parts(&bytes).unwrap(), whole);
    }

    #[test]
    fn incomplete_body_is_not_done() {
        let (data, done, _) = decode_all(b"5\r\nhel").unwrap();
        assert_eq!((data.as_slice(), done), (&b"hel"[..], false));
        let (_, done, _) = decode_all(b"0\r\n\r").unwrap();
        assert!(!done);
    }

    fn error_of(s: &[u8]) -> ProtoError {
        decode_all(s).expect_err("should fail")
    }

    #[test]
    fn bad_sizes() {
        assert_eq!(
            error_of(b"x\r\n"),
            ProtoError::Chunked("chunk size is not a hex number")
        );
        assert_eq!(
            error_of(b"\r\n"),
            ProtoError::Chunked("chunk size is not a hex number")
        );
        assert_eq!(
            error_of(b";ext\r\n"),
            ProtoError::Chunked("chunk size is not a hex number")
        );
        assert_eq!(
            error_of(b"10000000000000000\r\n"),
            ProtoError::Chunked("chunk size has more than 16 hex digits")
        );
        assert_eq!(
            error_of(b"5g\r\n"),
            ProtoError::Chunked("invalid byte after the chunk size")
        );
        assert_eq!(
            error_of(b"5 x\r\n"),
            ProtoError::Chunked("invalid byte after the chunk size")
        );
        assert_eq!(
            error_of(b"5\rx"),
            ProtoError::Chunked("missing LF after the chunk size")
        );
        assert_eq!(
            error_of(b"5\n"),
            ProtoError::Chunked("invalid byte after the chunk size")
        );
        // The largest size that fits is accepted (and then waits for data).
        assert!(decode_all(b"ffffffffffffffff\r\nabc").is_ok());
    }

    #[test]
    fn missing_crlf_after_data() {
        let e = ProtoError::Chunked("missing CRLF after chunk data");
        assert_eq!(error_of(b"3\r\nhelX"), e);
        assert_eq!(error_of(b"3\r\nhel\rX"), e);
        assert_eq!(error_of(b"3\r\nhel\n"), e);
        assert_eq!(
            error_of(b"0\r\n\rX"),
            ProtoError::Chunked("missing LF after the last chunk")
        );
    }

    #[test]
    fn extensions_limit_counts_the_whole_body() {
        let mut body = Vec::new();
        let ext = "e".repeat(1000);
        for _ in 0..16 {
            body.extend_from_slice(format!("1;{ext}\r\nx\r\n").as_bytes());
        }
        assert!(
            decode_all(&body).is_ok(),
            "16 000 bytes of extensions are fine"
        );
        body.extend_from_slice(format!("1;{ext}\r\nx\r\n").as_bytes());
        assert_eq!(
            error_of(&body),
            ProtoError::ChunkExtensionsTooLarge {
                limit: CHUNK_EXTENSIONS_LIMIT
            }
        );
        assert_eq!(
            error_of(b"1;a\nb"),
            ProtoError::Chunked("bare LF in a chunk extension")
        );
    }

    #[test]
    fn trailers() {
        assert!(decode_all(b"0\r\nA: b\r\n\r\n").unwrap().1);
        assert_eq!(
            error_of(b"0\r\nA b\r\n\r\n"),
            ProtoError::Chunked("invalid trailer field name")
        );
        assert_eq!(
            error_of(b"0\r\n: b\r\n\r\n"),
            ProtoError::Chunked("invalid trailer field name")
        );
        assert_eq!(
            error_of(b"0\r\nA: b\n\r\n"),
            ProtoError::Chunked("bare LF in a trailer field")
        );
        assert_eq!(
            error_of(b"0\r\nA: b\rx"),
            ProtoError::Chunked("missing LF after a trailer field")
        );
        let huge = format!("0\r\nA: {}\r\n\r\n", "v".repeat(TRAILER_LIMIT));
        assert_eq!(
            error_of(huge.as_bytes()),
            ProtoError::TrailersTooLarge {
                limit: TRAILER_LIMIT
            }
        );
    }

    #[test]
    fn reset_reuses_the_decoder() {
        let mut dec = ChunkedDecoder::new();
        let mut input: &[u8] = b"0\r\n\r\n";
        assert_eq!(dec.decode(&mut input).unwrap(), None);
        assert!(dec.is_done());
        let mut after: &[u8] = b"more";
        assert_eq!(dec.decode(&mut after).unwrap(), None);
        assert_eq!(after, b"more", "nothing is read past the end of the body");
        dec.reset();
        let mut input: &[u8] = b"2\r\nok\r\n";
        assert_eq!(dec.decode(&mut input).unwrap(), Some(&b"ok"[..]));
        assert!(!dec.is_done());
    }
}

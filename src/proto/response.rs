//! One HTTP/1.1 response, from the first byte to the end of its framing: head, body framing,
//! and for 2xx bodies the event stream.
//!
//! The engine keeps one [`ResponseParser`] per connection, [`reset`](ResponseParser::reset)s
//! it before each request and feeds it every read. Every event of one `feed` call belongs to
//! that read, so the engine stamps them all with the read's time.

use super::chunked::ChunkedDecoder;
use super::http_head::{self, Framing, ResponseHead, MAX_HEAD_BYTES};
use super::sse::{SseEvent, SseParser};
use super::ProtoError;

/// What a response yields, in order: one `Head`, then for a 2xx response its server-sent
/// events, for any other status its raw body bytes (chunked framing removed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event<'a> {
    Head(&'a ResponseHead),
    Sse(SseEvent<'a>),
    Body(&'a [u8]),
}

/// The outcome of one `feed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// All input was used and the response is not complete yet.
    NeedMore,
    /// The response is complete; its last byte was `input[consumed - 1]`. Anything after it is
    /// not part of this response (without pipelining, a server bug).
    Done { consumed: usize },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Head,
    Length { remaining: u64 },
    Chunked,
    UntilClose,
    Done,
    Failed,
}

/// Parses one response at a time on a connection; buffers are kept across [`reset`](Self::reset).
#[derive(Debug, Clone)]
pub struct ResponseParser {
    stage: Stage,
    /// The head so far, when a read ended inside it.
    head_buf: Vec<u8>,
    head: Option<ResponseHead>,
    chunked: ChunkedDecoder,
    sse: SseParser,
    body_is_sse: bool,
    /// See [`ResponseParser::set_streamed`].
    streamed: bool,
    received: u64,
}

impl Default for ResponseParser {
    fn default() -> Self {
        Self::new()
    }
}

impl ResponseParser {
    pub fn new() -> Self {
        Self::with_sse_parser(SseParser::new())
    }

    /// A parser whose events may carry at most `max_event_size` bytes of data.
    pub fn with_max_event_size(max_event_size: usize) -> Self {
        Self::with_sse_parser(SseParser::with_max_event_size(max_event_size))
    }

    fn with_sse_parser(sse: SseParser) -> Self {
        ResponseParser {
            stage: Stage::Head,
            head_buf: Vec::new(),
            head: None,
            chunked: ChunkedDecoder::new(),
            sse,
            body_is_sse: false,
            streamed: true,
            received: 0,
        }
    }

    /// Whether a successful response's body is an event stream (the default) or one whole
    /// body, delivered as [`Event::Body`] (backends that do not stream). Kept across `reset`.
    pub fn set_streamed(&mut self, streamed: bool) {
        self.streamed = streamed;
    }

    /// Ready for the next response on the same (or a new) connection.
    pub fn reset(&mut self) {
        self.stage = Stage::Head;
        self.head_buf.clear();
        self.head = None;
        self.chunked.reset();
        self.sse.reset();
        self.body_is_sse = false;
        self.received = 0;
    }

    /// The head, once parsed.
    pub fn head(&self) -> Option<&ResponseHead> {
        self.head.as_ref()
    }

    /// Bytes of this response consumed so far (0 means the peer has sent nothing yet).
    pub fn bytes_received(&self) -> u64 {
        self.received
    }

    pub fn is_done(&self) -> bool {
        self.stage == Stage::Done
    }

    /// Parses the next read of the connection, calling `on_event` for everything it completes.
    ///
    /// After an error the connection is unusable; the parser answers
    /// [`ProtoError::UsedAfterError`] until it is reset. After `Done`, further feeds consume
    /// nothing and return `Done { consumed: 0 }`.
    pub fn feed(
        &mut self,
        input: &[u8],
        on_event: &mut impl FnMut(Event<'_>),
    ) -> Result<Progress, ProtoError> {
        let result = self.feed_inner(input, on_event);
        match result {
            Ok(Progress::NeedMore) => self.received += input.len() as u64,
            Ok(Progress::Done { consumed }) => self.received += consumed as u64,
            Err(_) => self.stage = Stage::Failed,
        }
        result
    }

    /// The peer closed the connection. Fine when the body runs until close (the event being
    /// assembled, if any, is dropped as the SSE rules say); an error otherwise.
    pub fn eof(&mut self, _on_event: &mut impl FnMut(Event<'_>)) -> Result<(), ProtoError> {
        let during = match self.stage {
            Stage::Done => return Ok(()),
            Stage::Failed => return Err(ProtoError::UsedAfterError),
            Stage::UntilClose => {
                self.sse.reset();
                self.stage = Stage::Done;
                return Ok(());
            }
            Stage::Head if self.received == 0 => "before any byte of the response",
            Stage::Head => "in the response head",
            Stage::Length { .. } => "before the end of its Content-Length body",
            Stage::Chunked => self.chunked.position(),
        };
        self.stage = Stage::Failed;
        Err(ProtoError::UnexpectedEof {
            received: self.received,
            during,
        })
    }

    fn feed_inner(
        &mut self,
        input: &[u8],
        on_event: &mut impl FnMut(Event<'_>),
    ) -> Result<Progress, ProtoError> {
        let mut pos = 0;
        loop {
            match self.stage {
                Stage::Failed => return Err(ProtoError::UsedAfterError),
                Stage::Done => return Ok(Progress::Done { consumed: 0 }),
                Stage::Head => {
                    let Some((head, used)) = self.feed_head(&input[pos..])? else {
                        return Ok(Progress::NeedMore);
                    };
                    pos += used;
                    if head.status == 101 {
                        return Err(ProtoError::UnexpectedUpgrade);
                    }
                    // Interim responses (100 Continue, 103 Early Hints) precede the real one.
                    if head.status < 200 {
                        continue;
                    }
                    self.body_is_sse = head.is_success() && self.streamed;
                    self.stage = match head.framing {
                        Framing::Empty | Framing::Length(0) => Stage::Done,
                        Framing::Length(n) => Stage::Length { remaining: n },
                        Framing::Chunked => Stage::Chunked,
                        Framing::UntilClose => Stage::UntilClose,
                    };
                    on_event(Event::Head(self.head.insert(head)));
                    if self.stage == Stage::Done {
                        return Ok(Progress::Done { consumed: pos });
                    }
                }
                Stage::Length { remaining } => {
                    let avail = input.len() - pos;
                    let n = usize::try_from(remaining).map_or(avail, |r| r.min(avail));
                    self.body(&input[pos..pos + n], on_event)?;
                    pos += n;
                    let remaining = remaining - n as u64;
                    if remaining == 0 {
                        self.stage = Stage::Done;
                        return Ok(Progress::Done { consumed: pos });
                    }
                    self.stage = Stage::Length { remaining };
                    return Ok(Progress::NeedMore);
                }
                Stage::Chunked => {
                    let mut rest = &input[pos..];
                    while let Some(data) = self.chunked.decode(&mut rest)? {
                        self.body(data, on_event)?;
                    }
                    if self.chunked.is_done() {
                        self.stage = Stage::Done;
                        return Ok(Progress::Done {
                            consumed: input.len() - rest.len(),
                        });
                    }
                    return Ok(Progress::NeedMore);
                }
                Stage::UntilClose => {
                    self.body(&input[pos..], on_event)?;
                    return Ok(Progress::NeedMore);
                }
            }
        }
    }

    fn body(
        &mut self,
        data: &[u8],
        on_event: &mut impl FnMut(Event<'_>),
    ) -> Result<(), ProtoError> {
        if data.is_empty() {
            return Ok(());
        }
        if self.body_is_sse {
            self.sse.feed(data, &mut |e| on_event(Event::Sse(e)))
        } else {
            on_event(Event::Body(data));
            Ok(())
        }
    }

    /// Completes the head from `input` if it can: returns it with the bytes of `input` used.
    /// Parses straight from `input` when the whole head is there, else buffers.
    fn feed_head(&mut self, input: &[u8]) -> Result<Option<(ResponseHead, usize)>, ProtoError> {
        let skipped = if self.head_buf.is_empty() {
            http_head::leading_newlines(input)
        } else {
            0
        };
        let rest = &input[skipped..];
        if self.head_buf.is_empty() {
            if let Some(end) = http_head::find_head_end(rest, 0) {
                let head = http_head::parse_complete(&rest[..end])?;
                return Ok(Some((head, skipped + end)));
            }
        }
        let before = self.head_buf.len();
        let take = rest.len().min(MAX_HEAD_BYTES - before);
        self.head_buf.extend_from_slice(&rest[..take]);
        if let Some(end) = http_head::find_head_end(&self.head_buf, before) {
            let head = http_head::parse_complete(&self.head_buf[..end])?;
            self.head_buf.clear();
            return Ok(Some((head, skipped + end - before)));
        }
        if self.head_buf.len() >= MAX_HEAD_BYTES {
            return Err(ProtoError::HeadTooLarge {
                limit: MAX_HEAD_BYTES,
            });
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, PartialEq, Eq)]
    enum Owned {
        Head(u16, Framing),
        Sse(Vec<u8>),
        Body(Vec<u8>),
    }

    fn run(parts: &[&[u8]]) -> (Vec<Owned>, Vec<Result<Progress, ProtoError>>) {
        let mut p = ResponseParser::new();
        let mut events = Vec::new();
        let mut results = Vec::new();
        for part in parts {
            results.push(p.feed(part, &mut |e| {
                events.push(match e {
                    Event::Head(h) => Owned::Head(h.status, h.framing),
                    Event::Sse(e) => Owned::Sse(e.data.to_vec()),
                    Event::Body(b) => Owned::Body(b.to_vec()),
                })
            }));
        }
        (events, results)
    }

    #[test]
    fn chunked_sse_with_trailing_bytes() {
        let resp = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
                     d\r\ndata: a\n\ndata\r\n5\r\n: b\n\n\r\n0\r\n\r\nGARBAGE";
        let (events, results) = run(&[resp]);
        assert_eq!(
            events,
            vec![
                Owned::Head(200, Framing::Chunked),
                Owned::Sse(b"a".to_vec()),
                Owned::Sse(b"b".to_vec())
            ]
        );
        assert_eq!(
            results,
            vec![Ok(Progress::Done {
                consumed: resp.len() - 7
            })]
        );
    }

    #[test]
    fn error_body_is_passed_through_raw() {
        let resp = b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\ndata: x\n\n";
        let (events, results) = run(&[&resp[..50], &resp[50..]]);
        assert_eq!(events[0], Owned::Head(404, Framing::Length(9)));
        let body: Vec<u8> = events[1..]
            .iter()
            .flat_map(|e| match e {
                Owned::Body(b) => b.clone(),
                other => panic!("unexpected {other:?}"),
            })
            .collect();
        assert_eq!(body, b"data: x\n\n");
        assert_eq!(
            results[1],
            Ok(Progress::Done {
                consumed: resp.len() - 50
            })
        );
    }

    #[test]
    fn interim_responses_are_skipped() {
        let resp = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: x\r\n\r\n\
                     HTTP/1.1 204 No Content\r\n\r\n";
        let (events, results) = run(&[resp]);
        assert_eq!(events, vec![Owned::Head(204, Framing::Empty)]);
        assert_eq!(
            results,
            vec![Ok(Progress::Done {
                consumed: resp.len()
            })]
        );
        let (_, results) = run(&[b"HTTP/1.1 101 Switching Protocols\r\n\r\n"]);
        assert_eq!(results, vec![Err(ProtoError::UnexpectedUpgrade)]);
    }

    #[test]
    fn head_split_over_many_feeds_and_too_large() {
        let resp = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
        let parts: Vec<&[u8]> = resp.chunks(1).collect();
        let (events, results) = run(&parts);
        assert_eq!(events, vec![Owned::Head(200, Framing::Length(0))]);
        assert_eq!(*results.last().unwrap(), Ok(Progress::Done { consumed: 1 }));
        assert!(results[..results.len() - 1]
            .iter()
            .all(|r| *r == Ok(Progress::NeedMore)));

        let filler = vec![b'a'; 1000];
        let mut p = ResponseParser::new();
        p.feed(b"HTTP/1.1 200 OK\r\nX: ", &mut |_| {}).unwrap();
        let mut err = None;
        for _ in 0..70 {
            if let Err(e) = p.feed(&filler, &mut |_| {}) {
                err = Some(e);
                break;
            }
        }
        assert_eq!(
            err,
            Some(ProtoError::HeadTooLarge {
                limit: MAX_HEAD_BYTES
            })
        );
        assert_eq!(
            p.feed(b"\r\n\r\n", &mut |_| {}),
            Err(ProtoError::UsedAfterError)
        );
        p.reset();
        assert!(p.feed(resp, &mut |_| {}).is_ok());
    }

    #[test]
    fn eof_handling() {
        let mut p = ResponseParser::new();
        let e = p.eof(&mut |_| {}).unwrap_err();
        assert_eq!(
            e.to_string(),
            "connection closed after 0 bytes of response (before any byte of the response)"
        );

        let mut p = ResponseParser::new();
        let head = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nda";
        assert_eq!(p.feed(head, &mut |_| {}), Ok(Progress::NeedMore));
        let e = p.eof(&mut |_| {}).unwrap_err();
        assert_eq!(
            e,
            ProtoError::UnexpectedEof {
                received: head.len() as u64,
                during: "before the end of its Content-Length body"
            }
        );

        let mut p = ResponseParser::new();
        let mut n = 0;
        let resp = b"HTTP/1.1 200 OK\r\n\r\ndata: 1\n\ndata: 2\n";
        assert_eq!(p.feed(resp, &mut |_| n += 1), Ok(Progress::NeedMore));
        assert_eq!(n, 2, "head and first event; the unterminated one waits");
        assert_eq!(p.eof(&mut |_| n += 1), Ok(()));
        assert_eq!(n, 2, "an unterminated event is dropped at close");
        assert!(p.is_done());
        assert!(!p.head().unwrap().keep_alive);

        let mut p = ResponseParser::new();
        p.feed(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab",
            &mut |_| {},
        )
        .unwrap();
        let e = p.eof(&mut |_| {}).unwrap_err();
        assert!(e.to_string().contains("inside a chunk"), "{e}");
    }

    #[test]
    fn done_response_consumes_nothing_more() {
        let mut p = ResponseParser::new();
        let resp = b"HTTP/1.1 204 No Content\r\n\r\n";
        assert_eq!(
            p.feed(resp, &mut |_| {}),
            Ok(Progress::Done {
                consumed: resp.len()
            })
        );
        assert_eq!(
            p.feed(b"xyz", &mut |_| {}),
            Ok(Progress::Done { consumed: 0 })
        );
        assert_eq!(p.bytes_received(), resp.len() as u64);
    }

    #[test]
    fn sse_errors_surface() {
        let mut p = ResponseParser::with_max_event_size(4);
        let resp = b"HTTP/1.1 200 OK\r\nContent-Length: 20\r\n\r\ndata: 123456\n\n";
        assert_eq!(
            p.feed(resp, &mut |_| {}),
            Err(ProtoError::SseEventTooLarge { limit: 4 })
        );
    }
}

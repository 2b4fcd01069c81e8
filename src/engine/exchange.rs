//! One request on one keep-alive connection: write the planned bytes, read until the response
//! ends, and timestamp every read as it completes. This is the timed path: no tokenizing, no
//! JSON building and no allocation beyond the record's preallocated buffers.

use std::cell::Cell;
use std::net::SocketAddr;
use std::time::Instant;

use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::TcpStream;

use super::tls::{handshake_error, TlsTarget};
use super::Timeouts;
use crate::backend::{Api, Wire};
use crate::proto::ProtoError;
use crate::proto::{
    decode_completion_event, decode_stream_event, decode_whole_body, CompletionEvent, Event,
    Progress, ResponseParser, StreamEvent,
};
use crate::record::{FailureKind, RequestRecord};

const READ_BUF: usize = 16 * 1024;
/// The largest whole (not streamed) reply body accepted.
const MAX_WHOLE_BODY: usize = 64 << 20;
/// How much of an error response body is kept for the report.
const ERROR_BODY_KEEP: usize = 1024;

/// A client connection a worker owns: the socket (if open), its read buffer and its parser,
/// all reused from request to request.
pub struct Conn {
    addr: SocketAddr,
    wire: Wire,
    tls: Option<TlsTarget>,
    stream: Option<Stream>,
    buf: Box<[u8]>,
    parser: ResponseParser,
    timeouts: Timeouts,
    /// Connections opened over this worker's life.
    pub opened: u32,
    /// Requests resent after a reused connection closed before any response byte.
    pub retries: u32,
}

/// The socket, in clear or inside TLS (a separate variant, so the plain path is the plain
/// socket's own read and write).
enum Stream {
    Plain(TcpStream),
    Tls(Box<futures_rustls::client::TlsStream<TcpStream>>),
}

impl Stream {
    async fn write_all(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match self {
            Stream::Plain(s) => s.write_all(bytes).await,
            Stream::Tls(s) => {
                // rustls may keep encrypted records back until flushed.
                s.write_all(bytes).await?;
                s.flush().await
            }
        }
    }

    async fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf).await,
            Stream::Tls(s) => match s.read(buf).await {
                // Servers often close without TLS's close_notify; for HTTP/1.1, whose
                // framing says where a response ends, that is an ordinary end of stream.
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(0),
                r => r,
            },
        }
    }
}

impl Conn {
    pub fn new(addr: SocketAddr, wire: Wire, timeouts: Timeouts) -> Self {
        Conn::with_tls(addr, wire, timeouts, None)
    }

    /// A connection to an `https://` target when `tls` is set.
    pub fn with_tls(
        addr: SocketAddr,
        wire: Wire,
        timeouts: Timeouts,
        tls: Option<TlsTarget>,
    ) -> Self {
        Conn {
            addr,
            wire,
            tls,
            stream: None,
            buf: vec![0; READ_BUF].into_boxed_slice(),
            parser: {
                let mut p = ResponseParser::new();
                p.set_streamed(wire.streamed);
                p
            },
            timeouts,
            opened: 0,
            retries: 0,
        }
    }

    /// Open the socket ahead of time (before the clock starts) so the first request does not
    /// pay for the handshake (TCP and TLS); a failure here is retried when the request is sent.
    pub async fn preconnect(&mut self) {
        if self.stream.is_none() {
            let _ = self.connect().await;
        }
    }

    async fn connect(&mut self) -> Result<(), Fail> {
        let s = TcpStream::connect(self.addr)
            .await
            .map_err(|e| Fail::new(FailureKind::Connect, connect_error(self.addr, &e)))?;
        // Requests are written in one go; Nagle would only delay the last segment.
        let _ = s.set_nodelay(true);
        let stream = match &self.tls {
            None => Stream::Plain(s),
            // The handshake is part of connecting: on a new connection its time is in the
            // request's, like the TCP handshake's.
            Some(tls) => {
                let connector = futures_rustls::TlsConnector::from(tls.config.clone());
                let s = connector
                    .connect(tls.server_name.clone(), s)
                    .await
                    .map_err(|e| {
                        let peer = format!("{} at {}", tls.server_name.to_str(), self.addr);
                        Fail::new(FailureKind::Connect, handshake_error(&peer, &e))
                    })?;
                Stream::Tls(Box::new(s))
            }
        };
        self.stream = Some(stream);
        self.opened += 1;
        Ok(())
    }
}

/// Send `wire` and fill `rec` with what came back. `t0` is the run epoch.
pub async fn exchange(conn: &mut Conn, wire: &[u8], rec: &mut RequestRecord, t0: Instant) {
    let start = Instant::now();
    rec.start_ns = ns_between(t0, start);
    // glommio's own stream timeouts misbehave after an abandoned read: the deadline is ours,
    // raced against the exchange, and a request that loses the race loses its connection.
    let last_byte = Cell::new(start);
    let timeouts = conn.timeouts;
    let work = exchange_inner(conn, wire, rec, start, &last_byte);
    let outcome = match timeouts.expiry(start, start) {
        None => work.await,
        Some(_) => futures_lite::future::or(work, watchdog(timeouts, start, &last_byte)).await,
    };
    match outcome {
        Ok(keep_alive) => {
            if !keep_alive {
                conn.stream = None;
            }
        }
        Err(fail) => {
            conn.stream = None;
            fail.record(rec);
        }
    }
}

/// Ends with the timeout once the request is past `--request-timeout`, or no byte has
/// arrived (`last_byte`) for `--stall-timeout`. One timer at a time, re-armed only when it
/// finds that bytes came in meanwhile.
async fn watchdog(t: Timeouts, start: Instant, last_byte: &Cell<Instant>) -> Result<bool, Fail> {
    loop {
        let Some((at, kind)) = t.expiry(start, last_byte.get()) else {
            return futures_lite::future::pending().await;
        };
        let now = Instant::now();
        if at <= now {
            return Err(Fail::new(FailureKind::Timeout, t.message(kind)));
        }
        glommio::timer::sleep(at - now).await;
    }
}

/// Returns whether the connection may be reused.
async fn exchange_inner(
    conn: &mut Conn,
    wire: &[u8],
    rec: &mut RequestRecord,
    start: Instant,
    last_byte: &Cell<Instant>,
) -> Result<bool, Fail> {
    // A reused connection the server has just closed fails before any response byte; that
    // is retried once on a fresh connection without moving the request's start time.
    let mut may_retry = conn.stream.is_some();
    loop {
        if conn.stream.is_none() {
            conn.connect().await?;
            rec.new_connection = true;
        }
        match send_and_read(conn, wire, rec, start, last_byte).await {
            Ok(keep_alive) => return Ok(keep_alive),
            Err(Failure::BeforeResponse(_)) if may_retry => {
                may_retry = false;
                conn.retries += 1;
                conn.stream = None;
            }
            Err(Failure::BeforeResponse(e)) | Err(Failure::During(e)) => return Err(e),
        }
    }
}

enum Failure {
    /// Nothing of the response arrived: safe to resend.
    BeforeResponse(Fail),
    During(Fail),
}

async fn send_and_read(
    conn: &mut Conn,
    wire: &[u8],
    rec: &mut RequestRecord,
    start: Instant,
    last_byte: &Cell<Instant>,
) -> Result<bool, Failure> {
    let Conn {
        stream,
        buf,
        parser,
        wire: reply_wire,
        addr,
        ..
    } = conn;
    let stream = stream.as_mut().expect("connected above");
    stream
        .write_all(wire)
        .await
        .map_err(|e| Failure::BeforeResponse(reset(send_error(*addr, &e))))?;
    rec.sent_ns = rec.start_ns + ns_between(start, Instant::now());
    parser.reset();
    let mut st = StreamState::new(start, *reply_wire);
    let mut received = 0usize;
    loop {
        let n = match stream.read(buf).await {
            Ok(n) => n,
            Err(e) if received == 0 => {
                return Err(Failure::BeforeResponse(reset(read_error(0, &e))))
            }
            Err(e) => return Err(Failure::During(reset(read_error(received as u64, &e)))),
        };
        // One timestamp per completed read: every event in these bytes arrived now.
        st.now = Instant::now();
        last_byte.set(st.now);
        if n == 0 {
            if received == 0 {
                return Err(Failure::BeforeResponse(reset(CLOSED_BEFORE_RESPONSE)));
            }
            parser
                .eof(&mut |ev| st.on_event(rec, ev))
                .map_err(|e| Failure::During(malformed(&e)))?;
            st.finish(rec).map_err(Failure::During)?;
            return Ok(false);
        }
        received += n;
        match parser
            .feed(&buf[..n], &mut |ev| st.on_event(rec, ev))
            .map_err(|e| Failure::During(malformed(&e)))?
        {
            Progress::NeedMore => continue,
            Progress::Done { consumed } => {
                st.finish(rec).map_err(Failure::During)?;
                // Bytes past the end of the response (no pipelining here) mean the framing and
                // the server disagree: never reuse such a connection.
                return Ok(st.keep_alive && consumed == n);
            }
        }
    }
}

// The error texts of a failed exchange, shared by both engines.

pub(crate) fn connect_error(addr: SocketAddr, e: &dyn std::fmt::Display) -> String {
    let e = e.to_string();
    // The two limits tens of thousands of streams run into, with what to do about them.
    let hint = if e.contains("(os error 99)") {
        " (out of local ports for this destination: widen net.ipv4.ip_local_port_range, \
         or lower the concurrency)"
    } else if e.contains("(os error 24)") {
        " (out of file descriptors: raise the open-file limit, e.g. `ulimit -n 1048576`)"
    } else {
        ""
    };
    format!("cannot connect to {addr}: {e}{hint}")
}

pub(crate) fn send_error(addr: SocketAddr, e: &dyn std::fmt::Display) -> String {
    format!("sending the request to {addr}: {e}")
}

/// A read failed after `received` bytes of the response.
pub(crate) fn read_error(received: u64, e: &dyn std::fmt::Display) -> String {
    if received == 0 {
        format!("reading the response: {e}")
    } else {
        format!("connection error after {received} bytes of response: {e}")
    }
}

pub(crate) const CLOSED_BEFORE_RESPONSE: &str = "server closed the connection before responding";

/// Why a request failed: its category and the text for its record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Fail {
    pub kind: FailureKind,
    pub msg: String,
}

impl Fail {
    pub(crate) fn new(kind: FailureKind, msg: impl Into<String>) -> Fail {
        Fail {
            kind,
            msg: msg.into(),
        }
    }

    /// Marks `rec` failed with this cause.
    pub(crate) fn record(self, rec: &mut RequestRecord) {
        rec.success = false;
        rec.failure = Some(self.kind);
        rec.error = Some(self.msg);
    }
}

/// The connection broke (reset, closed, refused a write) before the response ended.
pub(crate) fn reset(msg: impl Into<String>) -> Fail {
    Fail::new(FailureKind::Reset, msg)
}

/// A response the parser rejected: broken framing or JSON, or (at end of stream) a
/// connection closed before the response was complete.
pub(crate) fn malformed(e: &ProtoError) -> Fail {
    match e {
        ProtoError::UnexpectedEof { .. } => reset(e.to_string()),
        _ => Fail::new(FailureKind::Protocol, format!("malformed response: {e}")),
    }
}

/// The server's own words in an error body: OpenAI's `{"error": {"message": ..}}`, a bare
/// `{"error": ".."}` / `{"message": ..}`, or FastAPI's `{"detail": ..}`; else the body text.
pub(crate) fn server_message(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    let Ok(v) = serde_json::from_str::<serde_json::Value>(text) else {
        return text.to_string();
    };
    let as_text = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Null => None,
        other => Some(other.to_string()),
    };
    let found = v
        .pointer("/error/message")
        .and_then(as_text)
        .or_else(|| v.get("error").filter(|e| e.is_string()).and_then(as_text))
        .or_else(|| v.get("message").and_then(as_text))
        .or_else(|| v.get("detail").and_then(as_text));
    found.unwrap_or_else(|| text.to_string())
}

/// What one response has shown so far. It does not hold the record (the caller passes it to
/// each call), so an event loop can keep one per connection and [`reset`](Self::reset) it
/// for the next request without allocating.
pub(crate) struct StreamState {
    start: Instant,
    /// When the bytes being parsed arrived: set by the caller before each feed.
    pub(crate) now: Instant,
    last_token: Option<Instant>,
    status: u16,
    /// From the head: whether the server lets the connection be reused.
    pub(crate) keep_alive: bool,
    error: Option<Fail>,
    error_body: Vec<u8>,
    api: Api,
    streamed: bool,
    /// SGLang's stream repeats the whole text so far: how much of it (escaped bytes) has been
    /// taken, and the server's completion count at the last event.
    cumulative_len: usize,
    tokens_so_far: u64,
    /// A successful reply's body, for backends that do not stream.
    whole: Vec<u8>,
}

impl StreamState {
    pub(crate) fn new(start: Instant, wire: Wire) -> Self {
        StreamState {
            start,
            now: start,
            last_token: None,
            status: 0,
            keep_alive: false,
            error: None,
            error_body: Vec::new(),
            api: wire.api,
            streamed: wire.streamed,
            cumulative_len: 0,
            tokens_so_far: 0,
            whole: Vec::new(),
        }
    }

    /// Ready for a new response whose request started at `start`; keeps the buffers.
    pub(crate) fn reset(&mut self, start: Instant) {
        self.start = start;
        self.now = start;
        self.last_token = None;
        self.status = 0;
        self.keep_alive = false;
        self.error = None;
        self.error_body.clear();
        self.cumulative_len = 0;
        self.tokens_so_far = 0;
        self.whole.clear();
    }

    pub(crate) fn on_event(&mut self, rec: &mut RequestRecord, ev: Event<'_>) {
        match ev {
            Event::Head(h) => {
                self.status = h.status;
                self.keep_alive = h.keep_alive;
                if !h.is_success() {
                    let msg = format!("HTTP {} {}", h.status, h.reason());
                    self.error = Some(Fail::new(FailureKind::HttpStatus, msg));
                }
            }
            Event::Body(bytes) if self.status == 200 && !self.streamed => {
                if self.whole.len() + bytes.len() > MAX_WHOLE_BODY {
                    self.error.get_or_insert_with(|| {
                        let msg = format!("reply body exceeds {MAX_WHOLE_BODY} bytes");
                        Fail::new(FailureKind::Protocol, msg)
                    });
                } else {
                    self.whole.extend_from_slice(bytes);
                }
            }
            Event::Body(bytes) => {
                let room = ERROR_BODY_KEEP.saturating_sub(self.error_body.len());
                self.error_body
                    .extend_from_slice(&bytes[..bytes.len().min(room)]);
            }
            Event::Sse(sse) => {
                if self.error.is_some() {
                    return;
                }
                if self.api == Api::Completions {
                    self.on_completions_event(rec, sse.data);
                } else {
                    self.on_format_event(rec, sse.event, sse.data);
                }
            }
        }
    }

    fn on_completions_event(&mut self, rec: &mut RequestRecord, data: &[u8]) {
        match decode_completion_event(data) {
            Ok(CompletionEvent::Token { text, usage, .. }) => {
                self.on_token(rec, text.raw().as_bytes());
                if let Some(u) = usage {
                    on_usage(rec, u.prompt_tokens, u.completion_tokens);
                }
            }
            Ok(CompletionEvent::Usage(u)) => on_usage(rec, u.prompt_tokens, u.completion_tokens),
            Ok(CompletionEvent::Error(msg)) => self.error = Some(error_event(&msg)),
            Ok(CompletionEvent::Done) | Ok(CompletionEvent::Other) => {}
            Err(e) => self.error = Some(bad_event(&e)),
        }
    }

    fn on_format_event(&mut self, rec: &mut RequestRecord, event: &[u8], data: &[u8]) {
        match decode_stream_event(self.api, event, data) {
            Ok(StreamEvent::Token {
                text,
                tokens_so_far,
                usage,
            }) => {
                if self.api == Api::SglangGenerate {
                    self.on_cumulative(rec, text.as_bytes(), tokens_so_far);
                } else {
                    self.on_token(rec, text.as_bytes());
                }
                if let Some(u) = usage {
                    on_usage(rec, u.prompt_tokens, u.completion_tokens);
                }
            }
            Ok(StreamEvent::Usage(u)) => on_usage(rec, u.prompt_tokens, u.completion_tokens),
            Ok(StreamEvent::Error(msg)) => self.error = Some(error_event(&msg)),
            Ok(StreamEvent::Done) | Ok(StreamEvent::Other) => {}
            Err(e) => self.error = Some(bad_event(&e)),
        }
    }

    /// SGLang's rules: the first token is the first event with text; after it, an event that
    /// brings Δ new tokens (by the server's running count) adds its gap split in Δ equal ITL
    /// samples, and an event with no new token is skipped.
    fn on_cumulative(&mut self, rec: &mut RequestRecord, text: &[u8], so_far: Option<u64>) {
        let new_text = text.get(self.cumulative_len..).unwrap_or(b"");
        let total = so_far.unwrap_or(self.tokens_so_far + 1);
        let delta = total.saturating_sub(self.tokens_so_far);
        match self.last_token {
            None if new_text.is_empty() => return,
            None => rec.ttft_ns = ns_between(self.start, self.now),
            Some(_) if delta == 0 => return,
            Some(prev) => {
                let share = ns_between(prev, self.now) / delta;
                rec.itl_ns
                    .extend(std::iter::repeat_n(share, delta as usize));
            }
        }
        self.last_token = Some(self.now);
        self.cumulative_len = text.len();
        self.tokens_so_far = total;
        rec.text_raw.extend_from_slice(new_text);
    }

    fn on_token(&mut self, rec: &mut RequestRecord, raw_text: &[u8]) {
        let now = self.now;
        match self.last_token {
            None => rec.ttft_ns = ns_between(self.start, now),
            Some(prev) => rec.itl_ns.push(ns_between(prev, now)),
        }
        self.last_token = Some(now);
        rec.text_raw.extend_from_slice(raw_text);
    }

    /// Decide success the way vLLM does (HTTP 200 and at least one output event), stricter in
    /// one respect: an error event in the stream fails the request. The error is the text
    /// for the record.
    pub(crate) fn finish(&mut self, rec: &mut RequestRecord) -> Result<(), Fail> {
        if self.status != 200 {
            let head = self
                .error
                .take()
                .map_or_else(|| format!("HTTP {}", self.status), |f| f.msg);
            let msg = format!("{head}: {}", server_message(&self.error_body));
            return Err(Fail::new(FailureKind::HttpStatus, msg));
        }
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        if !self.streamed {
            return self.finish_whole(rec);
        }
        let Some(last) = self.last_token else {
            return Err(Fail::new(
                FailureKind::Protocol,
                "Never received a valid chunk to calculate TTFT.This response will be marked as failed!",
            ));
        };
        rec.latency_ns = ns_between(self.start, last);
        rec.success = true;
        Ok(())
    }
}

impl StreamState {
    /// A reply that is one body: its end is both the first and the last token, so TTFT is the
    /// latency (SGLang's non-streamed rule), except that vLLM's legacy deepspeed-mii client
    /// records TTFT as 0.
    fn finish_whole(&mut self, rec: &mut RequestRecord) -> Result<(), Fail> {
        let (text, usage) = decode_whole_body(self.api, &self.whole).map_err(|e| {
            // A 200 whose body is an error object is the server's error, not a broken reply.
            match serde_json::from_slice::<serde_json::Value>(&self.whole) {
                Ok(v) if v.get("error").is_some_and(|e| !e.is_null()) => {
                    error_event(&server_message(&self.whole))
                }
                _ => Fail::new(FailureKind::Protocol, format!("bad reply body: {e}")),
            }
        })?;
        rec.text_raw.extend_from_slice(text.as_bytes());
        if let Some(u) = usage {
            on_usage(rec, u.prompt_tokens, u.completion_tokens);
        }
        rec.latency_ns = ns_between(self.start, self.now);
        rec.ttft_ns = if self.api == Api::Mii {
            0
        } else {
            rec.latency_ns
        };
        rec.success = true;
        Ok(())
    }
}

fn error_event(msg: &str) -> Fail {
    Fail::new(
        FailureKind::ServerError,
        format!("server error event: {msg}"),
    )
}

fn bad_event(e: &ProtoError) -> Fail {
    Fail::new(FailureKind::Protocol, format!("bad stream event: {e}"))
}

fn on_usage(rec: &mut RequestRecord, prompt: Option<u64>, completion: Option<u64>) {
    if let Some(p) = prompt {
        rec.prompt_len = p.min(u32::MAX as u64) as u32;
    }
    if let Some(c) = completion {
        let c = c.min(u32::MAX as u64) as u32;
        rec.usage_output_tokens = Some(c);
        // The server's count is final; TPOT can be recorded as soon as the request ends.
        rec.output_tokens = c;
    }
}

pub(crate) fn ns_between(a: Instant, b: Instant) -> u64 {
    b.saturating_duration_since(a).as_nanos() as u64
}

#[cfg(test)]
mod tests {
    use super::connect_error;

    #[test]
    fn port_and_descriptor_exhaustion_say_what_to_do() {
        let addr = "127.0.0.1:8000".parse().unwrap();
        let ports = std::io::Error::from_raw_os_error(libc::EADDRNOTAVAIL);
        assert!(connect_error(addr, &ports).contains("ip_local_port_range"));
        let fds = std::io::Error::from_raw_os_error(libc::EMFILE);
        assert!(connect_error(addr, &fds).contains("ulimit -n"));
        let refused = std::io::Error::from_raw_os_error(libc::ECONNREFUSED);
        assert_eq!(
            connect_error(addr, &refused),
            format!("cannot connect to 127.0.0.1:8000: {refused}")
        );
    }
}

#[cfg(test)]
mod categories {
    use super::*;
    use crate::backend::{Api, Wire};

    /// Feeds `bytes` as one read to a fresh parser and state; the outcome as `finish` (or
    /// the parser) decides it.
    fn outcome(bytes: &[u8], streamed: bool) -> Result<(), Fail> {
        let wire = Wire {
            api: Api::Completions,
            streamed,
        };
        let mut parser = ResponseParser::new();
        parser.set_streamed(streamed);
        let mut st = StreamState::new(Instant::now(), wire);
        let mut rec = RequestRecord::default();
        match parser.feed(bytes, &mut |ev| st.on_event(&mut rec, ev)) {
            Err(e) => Err(malformed(&e)),
            Ok(Progress::NeedMore) => match parser.eof(&mut |ev| st.on_event(&mut rec, ev)) {
                Err(e) => Err(malformed(&e)),
                Ok(()) => st.finish(&mut rec),
            },
            Ok(Progress::Done { .. }) => st.finish(&mut rec),
        }
    }

    fn stream(events: &str) -> Vec<u8> {
        let mut out = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n".to_vec();
        out.extend_from_slice(format!("{:x}\r\n{events}\r\n0\r\n\r\n", events.len()).as_bytes());
        out
    }

    const TOKEN: &str = "data: {\"choices\":[{\"index\":0,\"text\":\"hi\"}]}\n\n";

    #[test]
    fn a_good_stream_succeeds() {
        assert_eq!(outcome(&stream(TOKEN), true), Ok(()));
    }

    #[test]
    fn non_2xx_is_http_status_with_the_servers_message() {
        let body = r#"{"error":{"message":"engine overloaded","type":"x","code":503}}"#;
        let reply = format!(
            "HTTP/1.1 503 Service Unavailable\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        let f = outcome(reply.as_bytes(), true).unwrap_err();
        assert_eq!(f.kind, FailureKind::HttpStatus);
        assert_eq!(f.msg, "HTTP 503 Service Unavailable: engine overloaded");
    }

    #[test]
    fn error_events_are_server_errors_and_bad_events_protocol_errors() {
        let events = format!("{TOKEN}data: {{\"error\":{{\"message\":\"out of memory\"}}}}\n\n");
        let f = outcome(&stream(&events), true).unwrap_err();
        assert_eq!(f.kind, FailureKind::ServerError);
        assert!(f.msg.contains("out of memory"), "{}", f.msg);
        let f = outcome(&stream("data: {\"choices\":[{\"text\":\n\n"), true).unwrap_err();
        assert_eq!(f.kind, FailureKind::Protocol);
        let f = outcome(&stream("data: [DONE]\n\n"), true).unwrap_err();
        assert_eq!(f.kind, FailureKind::Protocol, "no output at all");
    }

    #[test]
    fn broken_framing_is_protocol_and_a_cut_response_a_reset() {
        let bad = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n";
        assert_eq!(outcome(bad, true).unwrap_err().kind, FailureKind::Protocol);
        let full = stream(TOKEN);
        let cut = &full[..full.len() - 5];
        let f = outcome(cut, true).unwrap_err();
        assert_eq!(f.kind, FailureKind::Reset, "{}", f.msg);
    }

    #[test]
    fn an_error_object_as_a_whole_body_is_a_server_error() {
        let body = r#"{"error":{"message":"bad things"}}"#;
        let reply = format!(
            "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        let f = outcome(reply.as_bytes(), false).unwrap_err();
        assert_eq!(f.kind, FailureKind::ServerError);
        assert!(f.msg.contains("bad things"), "{}", f.msg);
        let reply = "HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\n{\"ch";
        let f = outcome(reply.as_bytes(), false).unwrap_err();
        assert_eq!(f.kind, FailureKind::Protocol);
    }

    #[test]
    fn server_messages_in_the_usual_shapes() {
        assert_eq!(server_message(br#"{"error":{"message":"a"}}"#), "a");
        assert_eq!(server_message(br#"{"error":"b"}"#), "b");
        assert_eq!(server_message(br#"{"message":"c","object":"error"}"#), "c");
        assert_eq!(server_message(br#"{"detail":"d"}"#), "d");
        assert_eq!(server_message(b"  plain text \n"), "plain text");
        assert_eq!(server_message(br#"{"other":1}"#), r#"{"other":1}"#);
    }
}

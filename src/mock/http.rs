//! The server half of HTTP/1.1 the mock needs: request heads (httparse), Content-Length
//! bodies, keep-alive, and correctly framed replies. Pure functions over bytes plus one
//! receive buffer; the connection task owns the socket.

use std::borrow::Cow;
use std::io::Write;
use std::ops::Range;

use futures_lite::AsyncReadExt;

use super::formats::Endpoint;

/// Longest request head accepted (431 beyond).
pub const MAX_HEAD: usize = 64 << 10;
/// Longest request body accepted (413 beyond): a 128k-token prompt as token ids is ~1 MiB.
pub const MAX_BODY: usize = 32 << 20;
const MAX_HEADERS: usize = 64;

/// What a request asks for, decided from method and path alone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    Health,
    Models,
    /// A generation request of some backend's API.
    Generate(Endpoint),
    /// A server-control call clients make around a run (cache flush, profiler): answered
    /// 200 and otherwise ignored.
    Control,
    Tokenize,
    Detokenize,
    /// Prometheus text (vLLM's speculative-decoding counters with --spec-decode-tokens).
    Metrics,
    NotFound,
    /// Known path, wrong method; carries the `Allow` value.
    MethodNotAllowed(&'static str),
}

/// A complete, acceptable request head.
#[derive(Debug, PartialEq, Eq)]
pub struct RequestHead {
    pub route: Route,
    /// Bytes of the head, including the blank line.
    pub head_len: usize,
    pub body_len: usize,
    pub keep_alive: bool,
    /// HTTP/1.0 clients get no chunked encoding: a stream ends when the connection closes.
    pub http10: bool,
    pub expect_continue: bool,
    /// Where the first `x-request-id` value lies in the parsed bytes.
    pub request_id: Option<Range<usize>>,
}

/// A request that cannot be served; the reply carries this status and the connection closes,
/// since its framing cannot be trusted.
#[derive(Debug, PartialEq, Eq)]
pub struct Rejection {
    pub status: u16,
    pub message: Cow<'static, str>,
}

fn reject(status: u16, message: impl Into<Cow<'static, str>>) -> Rejection {
    Rejection {
        status,
        message: message.into(),
    }
}

/// Parses the head at the start of `buf`: `Ok(None)` means it is not complete yet.
pub fn parse_head(buf: &[u8]) -> Result<Option<RequestHead>, Rejection> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let head_len = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) if n <= MAX_HEAD => n,
        Ok(httparse::Status::Partial) if buf.len() < MAX_HEAD => return Ok(None),
        Ok(_) => return Err(reject(431, "request head exceeds 64 KiB")),
        Err(httparse::Error::TooManyHeaders) => {
            return Err(reject(431, "more than 64 request headers"))
        }
        Err(e) => return Err(reject(400, format!("malformed request head: {e}"))),
    };
    let http10 = match req.version {
        Some(1) => false,
        Some(0) => true,
        _ => return Err(reject(505, "only HTTP/1.0 and HTTP/1.1 are served")),
    };
    let method = req.method.unwrap_or("");
    let path = req.path.unwrap_or("");

    let mut content_length: Option<usize> = None;
    let mut keep_alive = !http10;
    let mut expect_continue = false;
    let mut request_id = None;
    for h in req.headers.iter() {
        let name = h.name;
        if name.eq_ignore_ascii_case("content-length") {
            let n = std::str::from_utf8(h.value)
                .ok()
                .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|v| v.parse::<usize>().ok())
                .ok_or_else(|| reject(400, "invalid Content-Length"))?;
            if content_length.is_some_and(|prev| prev != n) {
                return Err(reject(400, "conflicting Content-Length headers"));
            }
            content_length = Some(n);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(reject(
                411,
                "chunked request bodies are not supported; send Content-Length",
            ));
        } else if name.eq_ignore_ascii_case("connection") {
            for token in h.value.split(|&b| b == b',') {
                let token = token.trim_ascii();
                if token.eq_ignore_ascii_case(b"close") {
                    keep_alive = false;
                } else if token.eq_ignore_ascii_case(b"keep-alive") && http10 {
                    keep_alive = true;
                }
            }
        } else if name.eq_ignore_ascii_case("expect") {
            if h.value.trim_ascii().eq_ignore_ascii_case(b"100-continue") {
                expect_continue = true;
            } else {
                return Err(reject(417, "only `Expect: 100-continue` is understood"));
            }
        } else if name.eq_ignore_ascii_case("x-request-id") && request_id.is_none() {
            request_id = range_in(buf, h.value);
        }
    }
    let body_len = content_length.unwrap_or(0);
    if body_len > MAX_BODY {
        return Err(reject(413, "request body exceeds 32 MiB"));
    }
    if method == "HEAD" {
        // A reply to HEAD has no body; rather than special-case every route, refuse it and
        // close so the client cannot misread the error body.
        keep_alive = false;
    }
    Ok(Some(RequestHead {
        route: route(method, path),
        head_len,
        body_len,
        keep_alive,
        http10,
        expect_continue,
        request_id,
    }))
}

/// The position of `part`, a slice of `whole`, within it.
fn range_in(whole: &[u8], part: &[u8]) -> Option<Range<usize>> {
    let start = (part.as_ptr() as usize).checked_sub(whole.as_ptr() as usize)?;
    let end = start.checked_add(part.len())?;
    (end <= whole.len()).then_some(start..end)
}

/// Every route served, for the 404 message.
pub const ROUTES: &str = "GET /health, GET /v1/models, POST /v1/completions, \
POST /v1/chat/completions, POST /v1/responses, POST /generate (SGLang or TGI, by body), \
POST /generate_stream, POST /v2/models/ensemble/generate_stream, \
POST /v2/models/ensemble/generate, POST /mii/benchmark, POST /v1/models/model:predict, \
POST /tokenize, POST /detokenize, GET /metrics, GET|POST /reset_prefix_cache, /flush_cache, /start_profile, /stop_profile";

fn route(method: &str, path: &str) -> Route {
    let path = path.split_once('?').map_or(path, |(p, _)| p);
    let generate = |endpoint| (Route::Generate(endpoint), "POST");
    let (route, allowed) = match path {
        "/health" => (Route::Health, "GET"),
        "/v1/models" => (Route::Models, "GET"),
        "/v1/completions" | "/v1/models/model:predict" => generate(Endpoint::Completions),
        "/v1/chat/completions" => generate(Endpoint::Chat),
        "/v1/responses" => generate(Endpoint::Responses),
        "/generate" => generate(Endpoint::Generate),
        "/generate_stream" => generate(Endpoint::TgiStream),
        "/v2/models/ensemble/generate_stream" => generate(Endpoint::Triton { stream: true }),
        "/v2/models/ensemble/generate" => generate(Endpoint::Triton { stream: false }),
        "/mii/benchmark" => generate(Endpoint::Mii),
        "/tokenize" => (Route::Tokenize, "POST"),
        "/detokenize" => (Route::Detokenize, "POST"),
        "/metrics" => (Route::Metrics, "GET"),
        // SGLang serves these for GET and POST alike; vLLM for POST.
        "/reset_prefix_cache" | "/flush_cache" | "/start_profile" | "/stop_profile" => {
            (Route::Control, "GET, POST")
        }
        _ => return Route::NotFound,
    };
    if allowed.split(", ").any(|m| m == method) {
        route
    } else {
        Route::MethodNotAllowed(allowed)
    }
}

pub fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        411 => "Length Required",
        413 => "Content Too Large",
        417 => "Expectation Failed",
        429 => "Too Many Requests",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        501 => "Not Implemented",
        431 => "Request Header Fields Too Large",
        505 => "HTTP Version Not Supported",
        _ => "Internal Server Error",
    }
}

pub const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";
pub const JSON: &str = "application/json";

/// Appends a complete reply with a Content-Length body.
pub fn push_reply(
    out: &mut Vec<u8>,
    status: u16,
    content_type: Option<&str>,
    extra_header: Option<(&str, &str)>,
    body: &[u8],
    close: bool,
) {
    let _ = write!(out, "HTTP/1.1 {status} {}\r\n", reason(status));
    if let Some(ct) = content_type {
        let _ = write!(out, "content-type: {ct}\r\n");
    }
    if let Some((name, value)) = extra_header {
        let _ = write!(out, "{name}: {value}\r\n");
    }
    let _ = write!(out, "content-length: {}\r\n", body.len());
    if close {
        out.extend_from_slice(b"connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
}

/// Appends the head of a server-sent-events reply; the body follows as chunks (or, for
/// HTTP/1.0, raw bytes ended by closing the connection).
pub fn push_stream_head(out: &mut Vec<u8>, chunked: bool, close: bool) {
    out.extend_from_slice(
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n",
    );
    if chunked {
        out.extend_from_slice(b"transfer-encoding: chunked\r\n");
    }
    if close {
        out.extend_from_slice(b"connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// The JSON error body OpenAI-compatible servers send.
pub fn error_body(status: u16, message: &str) -> Vec<u8> {
    let kind = match status {
        404 => "NotFoundError",
        405 => "MethodNotAllowedError",
        501 => "NotImplementedError",
        429 => "RateLimitError",
        500..=599 => "InternalServerError",
        _ => "BadRequestError",
    };
    let message = serde_json::to_string(message).unwrap_or_else(|_| "\"\"".into());
    format!(r#"{{"error":{{"message":{message},"type":"{kind}","code":{status}}}}}"#).into_bytes()
}

/// Bytes received on one connection and not consumed yet. Early bytes of the next request
/// stay here across replies.
pub struct RecvBuf {
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

const INITIAL_RECV: usize = 4 << 10;
/// A buffer grown past this for one big request is given back afterwards.
const KEEP_RECV: usize = 256 << 10;

impl RecvBuf {
    pub fn new() -> Self {
        RecvBuf {
            buf: vec![0; INITIAL_RECV],
            start: 0,
            end: 0,
        }
    }

    pub fn data(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    /// Drops the first `n` bytes of `data()`.
    pub fn consume(&mut self, n: usize) {
        self.start = (self.start + n).min(self.end);
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
            if self.buf.len() > KEEP_RECV {
                self.buf = vec![0; INITIAL_RECV];
            }
        }
    }

    /// Reads once from `stream`, making room first (compacting, or doubling when full).
    /// Returns 0 at end of stream.
    pub async fn fill<S: futures_lite::AsyncRead + Unpin>(
        &mut self,
        stream: &mut S,
    ) -> std::io::Result<usize> {
        if self.end == self.buf.len() {
            if self.start > 0 {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            } else {
                self.buf.resize(self.buf.len() * 2, 0);
            }
        }
        let n = stream.read(&mut self.buf[self.end..]).await?;
        self.end += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(raw: &str) -> Result<Option<RequestHead>, Rejection> {
        parse_head(raw.as_bytes())
    }

    #[test]
    fn complete_post_with_body_length() {
        let raw =
            "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 12\r\n\r\n{\"prompt\":1}";
        let h = head(raw).unwrap().unwrap();
        assert_eq!(h.route, Route::Generate(Endpoint::Completions));
        assert_eq!(h.body_len, 12);
        assert_eq!(h.head_len, raw.len() - 12);
        assert!(h.keep_alive && !h.http10 && !h.expect_continue);
    }

    #[test]
    fn partial_head_waits_for_more() {
        assert_eq!(head("GET /health HTTP/1.1\r\nHost:"), Ok(None));
    }

    #[test]
    fn routes_and_methods() {
        let r = |m: &str, p: &str| route(m, p);
        assert_eq!(r("GET", "/health"), Route::Health);
        assert_eq!(r("GET", "/v1/models?x=1"), Route::Models);
        assert_eq!(r("GET", "/v1/completions"), Route::MethodNotAllowed("POST"));
        assert_eq!(r("POST", "/health"), Route::MethodNotAllowed("GET"));
        assert_eq!(r("GET", "/v1/chat"), Route::NotFound);
        assert_eq!(
            r("POST", "/v1/models/model:predict"),
            Route::Generate(Endpoint::Completions)
        );
        assert_eq!(
            r("POST", "/v2/models/ensemble/generate_stream"),
            Route::Generate(Endpoint::Triton { stream: true })
        );
        assert_eq!(
            r("POST", "/generate?x"),
            Route::Generate(Endpoint::Generate)
        );
        assert_eq!(r("GET", "/flush_cache"), Route::Control);
        assert_eq!(r("POST", "/flush_cache"), Route::Control);
        assert_eq!(
            r("PUT", "/flush_cache"),
            Route::MethodNotAllowed("GET, POST")
        );
        assert_eq!(r("GET", "/tokenize"), Route::MethodNotAllowed("POST"));
    }

    #[test]
    fn connection_close_and_http10() {
        let h = head("GET /health HTTP/1.1\r\nConnection: Keep-Alive, Close\r\n\r\n")
            .unwrap()
            .unwrap();
        assert!(!h.keep_alive);
        let h = head("GET /health HTTP/1.0\r\n\r\n").unwrap().unwrap();
        assert!(h.http10 && !h.keep_alive);
        let h = head("GET /health HTTP/1.0\r\nconnection: keep-alive\r\n\r\n")
            .unwrap()
            .unwrap();
        assert!(h.keep_alive);
    }

    #[test]
    fn framing_errors_are_rejected() {
        let status = |raw: &str| head(raw).unwrap_err().status;
        assert_eq!(status("GARBAGE\r\n\r\n"), 400);
        assert_eq!(
            status("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"),
            411
        );
        assert_eq!(status("POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n"), 400);
        assert_eq!(
            status("POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"),
            400
        );
        assert_eq!(
            status("POST / HTTP/1.1\r\nContent-Length: 999999999999\r\n\r\n"),
            413
        );
        let many: String = (0..70).map(|i| format!("h{i}: v\r\n")).collect();
        assert_eq!(status(&format!("GET / HTTP/1.1\r\n{many}\r\n")), 431);
        let long = format!("GET /{} HTTP/1.1\r\n", "a".repeat(MAX_HEAD));
        assert_eq!(status(&long), 431);
    }

    #[test]
    fn request_id_is_located() {
        let raw = "POST /v1/completions HTTP/1.1\r\nX-Request-ID:  abc-1 \r\nx-request-id: second\r\n\r\n";
        let h = head(raw).unwrap().unwrap();
        assert_eq!(&raw[h.request_id.unwrap()], "abc-1");
        let h = head("GET /health HTTP/1.1\r\nx-request-idx: no\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(h.request_id, None);
        assert_eq!(range_in(b"abc", b"xyz"), None);
    }

    #[test]
    fn expect_continue() {
        let h = head(
            "POST /v1/completions HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n",
        )
        .unwrap()
        .unwrap();
        assert!(h.expect_continue);
    }

    #[test]
    fn error_body_is_json() {
        let body = error_body(400, "bad \"thing\"");
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["error"]["message"], "bad \"thing\"");
        assert_eq!(v["error"]["type"], "BadRequestError");
        assert_eq!(v["error"]["code"], 400);
    }

    #[test]
    fn reply_framing() {
        let mut out = Vec::new();
        push_reply(&mut out, 200, Some(JSON), None, b"{}", true);
        assert_eq!(
            out,
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}"
        );
    }
}

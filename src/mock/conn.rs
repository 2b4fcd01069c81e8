//! One client connection: read a request, reply on schedule, repeat while kept alive.
//!
//! A client that goes away (reset, broken pipe, EOF mid-request) just ends its task: every
//! I/O error here is the peer's doing and is not worth a log line.

use std::io;
use std::rc::Rc;
use std::time::{Duration, Instant};

use futures_lite::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use glommio::Task;

use super::capacity::Schedule;
use super::completions::Prompt;
use super::control;
use super::faults::Fault;
use super::formats::sse;
use super::formats::{self, GenRequest, Reply};
use super::http::{self, RecvBuf, RequestHead, Route};
use super::shard::{self, Shard};
use super::truth::Stamps;

/// Text prompts up to this size are tokenized on the shard itself; longer ones on the
/// executor's blocking pool, so that one long prompt cannot hold up other streams' tokens.
const INLINE_TOKENIZE_BYTES: usize = 1024;

/// Long enough to be pending when first polled (so the task really yields), short enough to
/// be due at the executor's next pass over timers.
const REACTOR_YIELD: Duration = Duration::from_micros(20);

/// How long a closing connection is drained so that unread request bytes do not turn the
/// close into a reset that destroys the reply in flight.
const LINGER: Duration = Duration::from_millis(200);

/// Serves one accepted connection: the TCP socket itself, or TLS over it (the caller has
/// set TCP_NODELAY and done any handshake). Generic, so the plain path is the socket's own.
pub(super) async fn serve<S: AsyncRead + AsyncWrite + Unpin + std::os::fd::AsRawFd>(
    stream: S,
    shard: Rc<Shard>,
) {
    let mut conn = Conn {
        recv: RecvBuf::new(),
        tx: Tx {
            stream,
            out: Vec::with_capacity(512),
            prefix: Vec::with_capacity(256),
            body: Vec::new(),
            truth: shard.truth.as_ref().map(|_| Stamps::default()),
            after: After::Serve,
        },
    };
    match conn.run(&shard).await {
        Ok(true) => conn.tx.linger_close().await,
        _ if conn.tx.after == After::Reset => conn.tx.set_reset_on_close(),
        _ => {}
    }
}

/// What a connection does after a reply: serve on, or (a fault) close it or reset it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum After {
    Serve,
    Close,
    Reset,
}

struct Conn<S> {
    recv: RecvBuf,
    tx: Tx<S>,
}

/// The sending half: the socket and reusable output buffers.
struct Tx<S> {
    stream: S,
    /// Bytes of the next write.
    out: Vec<u8>,
    /// The current reply's per-request JSON (lent to its [`Reply`]).
    prefix: Vec<u8>,
    /// An unstreamed reply's body.
    body: Vec<u8>,
    /// When the current reply's bytes were written; `None` unless --truth-log is on.
    truth: Option<Stamps>,
    /// Set by a faulty reply.
    after: After,
}

impl<S: AsyncRead + AsyncWrite + Unpin + std::os::fd::AsRawFd> Conn<S> {
    /// Serves requests until the client leaves (`Ok(false)`) or the connection is to be
    /// closed by us after a reply (`Ok(true)`).
    async fn run(&mut self, shard: &Shard) -> io::Result<bool> {
        loop {
            let head = match self.read_head().await? {
                None => return Ok(false),
                Some(Ok(head)) => head,
                Some(Err(rejection)) => {
                    let (status, message) = (rejection.status, &rejection.message);
                    self.tx.error(status, message, None, true).await?;
                    return Ok(true);
                }
            };
            let request_len = head.head_len + head.body_len;
            if head.expect_continue && self.recv.data().len() < request_len {
                self.tx.stream.write_all(http::CONTINUE).await?;
            }
            while self.recv.data().len() < request_len {
                if self.recv.fill(&mut self.tx.stream).await? == 0 {
                    return Ok(false);
                }
            }
            let t_read = Instant::now();
            let request = &self.recv.data()[..request_len];
            let body = &request[head.head_len..];
            let request_id = head.request_id.clone().map(|id| &request[id]);
            self.tx
                .respond(shard, &head, body, request_id, t_read)
                .await?;
            self.recv.consume(request_len);
            match self.tx.after {
                After::Serve => {}
                After::Close => return Ok(true),
                After::Reset => return Ok(false),
            }
            if !head.keep_alive {
                return Ok(true);
            }
        }
    }

    /// The next request head: `None` at a clean end of stream between requests.
    async fn read_head(&mut self) -> io::Result<Option<Result<RequestHead, http::Rejection>>> {
        loop {
            if !self.recv.data().is_empty() {
                match http::parse_head(self.recv.data()) {
                    Ok(Some(head)) => return Ok(Some(Ok(head))),
                    Ok(None) => {}
                    Err(rejection) => return Ok(Some(Err(rejection))),
                }
            }
            if self.recv.fill(&mut self.tx.stream).await? == 0 {
                return Ok(None);
            }
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin + std::os::fd::AsRawFd> Tx<S> {
    async fn respond(
        &mut self,
        shard: &Shard,
        head: &RequestHead,
        body: &[u8],
        request_id: Option<&[u8]>,
        t_read: Instant,
    ) -> io::Result<()> {
        let close = !head.keep_alive;
        match head.route {
            Route::Health => self.reply(200, None, None, b"", close).await,
            Route::Models => {
                let body = &shard.templates.models_body;
                self.reply(200, Some(http::JSON), None, body, close).await
            }
            Route::Generate(endpoint) => match formats::parse(endpoint, body) {
                Ok(req) => self.generate(shard, req, head, request_id, t_read).await,
                Err(message) => self.error(400, &message, None, close).await,
            },
            Route::Control => {
                self.reply(200, Some(http::JSON), None, control::ACK, close)
                    .await
            }
            Route::Tokenize => self.tokenize(shard, body, close).await,
            Route::Detokenize => self.detokenize(shard, body, close).await,
            Route::Metrics => {
                let text = shard.spec.prometheus(shard.options.spec_decode_tokens);
                self.reply(200, Some("text/plain; version=0.0.4"), None, &text, close)
                    .await
            }
            Route::NotFound => self.not_found(close).await,
            Route::MethodNotAllowed(allow) => {
                let message = format!("method not allowed here; use {allow}");
                self.error(405, &message, Some(("allow", allow)), close)
                    .await
            }
        }
    }

    async fn reply(
        &mut self,
        status: u16,
        content_type: Option<&str>,
        extra_header: Option<(&str, &str)>,
        body: &[u8],
        close: bool,
    ) -> io::Result<()> {
        self.out.clear();
        http::push_reply(
            &mut self.out,
            status,
            content_type,
            extra_header,
            body,
            close,
        );
        self.stream.write_all(&self.out).await
    }

    async fn error(
        &mut self,
        status: u16,
        message: &str,
        extra_header: Option<(&str, &str)>,
        close: bool,
    ) -> io::Result<()> {
        let body = http::error_body(status, message);
        self.reply(status, Some(http::JSON), extra_header, &body, close)
            .await
    }

    async fn generate(
        &mut self,
        shard: &Shard,
        req: GenRequest<'_>,
        head: &RequestHead,
        request_id: Option<&[u8]>,
        t_read: Instant,
    ) -> io::Result<()> {
        let mut prompt_tokens = PromptTokens::start(shard, &req.prompt);
        let buf = std::mem::take(&mut self.prefix);
        let id = shard.next_id();
        let mut reply = Reply::new(
            &req,
            &shard.templates,
            shard.options,
            id,
            shard::unix_now(),
            buf,
        );
        if let Some(fault) = shard.faults.as_ref().and_then(|f| f.next()) {
            reply.prompt_tokens = prompt_tokens.get().await;
            let chunked = !head.http10;
            let status = shard
                .faults
                .as_ref()
                .map_or(503, |f| f.config().http_status);
            let sent = self
                .faulty(
                    &mut reply,
                    fault,
                    status,
                    req.stream,
                    chunked,
                    !head.keep_alive,
                )
                .await;
            self.prefix = reply.into_buffer();
            return sent;
        }
        self.stamp(|s| s.begin(reply.groups_tokens() && req.stream));
        let close = !head.keep_alive;
        let schedule = match &shard.capacity {
            Some(c) => c.admit(t_read, reply.n, shard.ttft, shard.itl),
            None => Schedule::unloaded(t_read, shard.ttft, shard.itl),
        };
        let sent = if req.stream {
            let chunked = !head.http10;
            self.stream_events(&mut reply, prompt_tokens, schedule, chunked, close)
                .await
        } else {
            self.whole_body(&mut reply, prompt_tokens, schedule, close)
                .await
        };
        let tokens = reply.n;
        self.prefix = reply.into_buffer();
        sent?;
        if shard.options.spec_decode_tokens > 0 {
            shard
                .spec
                .add_reply(tokens, shard.options.spec_decode_tokens);
        }
        if let (Some(log), Some(stamps)) = (&shard.truth, &self.truth) {
            log.push(request_id, req.stream, shard.anchor.to_ns(t_read), stamps);
        }
        Ok(())
    }

    /// `/tokenize` with the mock's tokenizer, or 501 without one.
    async fn tokenize(&mut self, shard: &Shard, body: &[u8], close: bool) -> io::Result<()> {
        let dialect = shard.tokenize_dialect;
        if dialect == control::TokenizeDialect::None {
            return self.not_found(close).await;
        }
        let Some(tokenizer) = shard.tokenizer.clone() else {
            return self.error(501, control::NO_TOKENIZER, None, close).await;
        };
        let text = match control::parse_tokenize(dialect, body) {
            Ok(text) => text,
            Err(message) => return self.error(400, &message, None, close).await,
        };
        let ids = |tokenizer: &tokenizers::Tokenizer, text: &str| {
            tokenizer
                .encode_fast(text, false)
                .map_or_else(|_| Vec::new(), |e| e.get_ids().to_vec())
        };
        let ids = if text.len() <= INLINE_TOKENIZE_BYTES {
            ids(&tokenizer, &text)
        } else {
            // Off the shard's thread, like long prompts: other streams keep their schedule.
            let text = text.into_owned();
            glommio::executor()
                .spawn_blocking(move || ids(&tokenizer, &text))
                .await
        };
        let body = control::tokenize_body(dialect, &ids);
        self.reply(200, Some(http::JSON), None, &body, close).await
    }

    /// `/detokenize` with the mock's tokenizer (special tokens kept), or 501 without one.
    async fn detokenize(&mut self, shard: &Shard, body: &[u8], close: bool) -> io::Result<()> {
        let dialect = shard.tokenize_dialect;
        if dialect == control::TokenizeDialect::None {
            return self.not_found(close).await;
        }
        let Some(tokenizer) = shard.tokenizer.clone() else {
            return self.error(501, control::NO_TOKENIZER, None, close).await;
        };
        let ids = match control::parse_detokenize(body) {
            Ok(ids) => ids,
            Err(message) => return self.error(400, &message, None, close).await,
        };
        match tokenizer.decode(&ids, false) {
            Ok(text) => {
                let body = control::detokenize_body(dialect, &text);
                self.reply(200, Some(http::JSON), None, &body, close).await
            }
            Err(e) => {
                let message = format!("cannot detokenize: {e}");
                self.error(400, &message, None, close).await
            }
        }
    }

    async fn not_found(&mut self, close: bool) -> io::Result<()> {
        let message = format!("no such route; served: {}", http::ROUTES);
        self.error(404, &message, None, close).await
    }

    /// Records a moment of the current reply when --truth-log is on.
    fn stamp(&mut self, mark: impl FnOnce(&mut Stamps)) {
        if let Some(stamps) = &mut self.truth {
            mark(stamps);
        }
    }

    /// Streams token `k` when the schedule has it due (`t_read + ttft + k * itl` without
    /// --max-batch; an event carrying several tokens goes out when its last one is due), then
    /// the reply's tail.
    async fn stream_events(
        &mut self,
        reply: &mut Reply,
        mut prompt_tokens: PromptTokens,
        schedule: Schedule,
        chunked: bool,
        close: bool,
    ) -> io::Result<()> {
        self.out.clear();
        http::push_stream_head(&mut self.out, chunked, close);
        reply.push_head(&mut self.out, chunked);
        self.stream.write_all(&self.out).await?;
        self.stamp(Stamps::head);
        if reply.counts_prompt_early() {
            // Counting started at once and overlaps the wait for the first event.
            reply.prompt_tokens = prompt_tokens.get().await;
        }

        let n = reply.n;
        let due = |k: u32| schedule.due(k);
        let mut k = 0;
        while k < n {
            let mut end = reply.event_end(k);
            sleep_until(due(end - 1)).await;
            // A mock that has fallen behind its schedule (more streams than its CPU carries)
            // writes the events already due together: one segment instead of one per late
            // event, so it catches up instead of falling further behind. The truth log stamps
            // each of them with that one write. With ITL 0 nothing is late, and every event
            // keeps its own write.
            let first = k;
            self.out.clear();
            loop {
                reply.push_event(&mut self.out, chunked, k, end);
                k = end;
                if k == n || schedule.itl.is_zero() {
                    break;
                }
                end = reply.event_end(k);
                if due(end - 1) > Instant::now() {
                    break;
                }
            }
            self.stream.write_all(&self.out).await?;
            let mut j = first;
            while j < k {
                let end = reply.event_end(j);
                self.stamp(|s| s.event(end - j));
                j = end;
            }
        }

        if !reply.counts_prompt_early() {
            reply.prompt_tokens = prompt_tokens.get().await;
        }
        self.out.clear();
        reply.push_tail(&mut self.out, chunked);
        self.stream.write_all(&self.out).await?;
        self.stamp(Stamps::end);
        Ok(())
    }

    /// An unstreamed 200 reply: its JSON body in `self.body`, head and body in `self.out`.
    fn push_unstreamed(&mut self, reply: &Reply, close: bool) {
        self.body.clear();
        reply.push_body(&mut self.body);
        self.out.clear();
        http::push_reply(
            &mut self.out,
            200,
            Some(http::JSON),
            None,
            &self.body,
            close,
        );
    }

    /// Sends the whole reply when its last token is due (`t_read + ttft + (max_tokens - 1) *
    /// itl` without --max-batch).
    async fn whole_body(
        &mut self,
        reply: &mut Reply,
        mut prompt_tokens: PromptTokens,
        schedule: Schedule,
        close: bool,
    ) -> io::Result<()> {
        // Deadlines are absolute: counting and formatting first costs nothing unless they
        // take longer than the wait itself.
        reply.prompt_tokens = prompt_tokens.get().await;
        self.push_unstreamed(reply, close);
        sleep_until(schedule.due(reply.n - 1)).await;
        self.stream.write_all(&self.out).await?;
        self.stamp(Stamps::whole);
        Ok(())
    }

    /// Answers with `fault` instead of the reply (see `faults.rs`). Faulty replies are written
    /// at once, without the latency model's waits, and are not in the truth log.
    async fn faulty(
        &mut self,
        reply: &mut Reply,
        fault: Fault,
        http_status: u16,
        streamed: bool,
        chunked: bool,
        close: bool,
    ) -> io::Result<()> {
        const ERROR_EVENT: &[u8] = br#"{"error":{"message":"mock fault: injected error event","type":"InternalServerError","code":500}}"#;
        const BAD_UTF8: &[u8] = b"{\"choices\":[{\"index\":0,\"text\":\"\xff\xfe\"}]}";
        const CUT_JSON: &[u8] = b"{\"choices\":[{\"index\":0,\"text\":";
        match fault {
            Fault::HttpError => {
                let message = format!("mock fault: injected HTTP {http_status}");
                return self.error(http_status, &message, None, close).await;
            }
            Fault::TooManyRequests => {
                let message = "mock fault: too many requests, retry later";
                return self
                    .error(429, message, Some(("retry-after", "1")), close)
                    .await;
            }
            Fault::ResetBeforeHead => {
                self.after = After::Reset;
                return Ok(());
            }
            _ => {}
        }
        let layout = self.whole_reply(reply, streamed, chunked, close, None);
        let len = self.out.len();
        let half = layout.head_end + (len - layout.head_end) / 2;
        match fault {
            Fault::ResetMidStream => {
                self.out.truncate(half.max(layout.head_end + 1));
                self.after = After::Reset;
            }
            Fault::ResetAfterLast => {
                let tail = if streamed && chunked { 5 } else { 1 };
                self.out.truncate(len - tail);
                self.after = After::Reset;
            }
            Fault::Stall => {
                self.out
                    .truncate(if streamed { layout.first_end } else { half });
                self.stream.write_all(&self.out).await?;
                // Silence, with the socket open, until the client gives up on us.
                let mut discard = [0u8; 4096];
                while let Ok(1..) = self.stream.read(&mut discard).await {}
                self.after = After::Reset;
                return Ok(());
            }
            Fault::KeepAliveClose => {
                self.whole_reply(reply, streamed, chunked, false, None);
                self.after = After::Close;
            }
            Fault::WrongLength => {
                let mut wire = Vec::new();
                let body_start = if streamed {
                    self.whole_reply(reply, true, false, true, None).head_end
                } else {
                    layout.head_end
                };
                let body = &self.out[body_start..];
                let (kind, declared) = if streamed {
                    ("text/event-stream", body.len().min(10))
                } else {
                    (http::JSON, body.len() / 2)
                };
                wire.extend_from_slice(
                    format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: {kind}\r\ncontent-length: {declared}\r\nconnection: close\r\n\r\n"
                    )
                    .as_bytes(),
                );
                wire.extend_from_slice(body);
                self.out = wire;
                self.after = After::Close;
            }
            Fault::BadChunk => {
                self.out.clear();
                http::push_stream_head(&mut self.out, true, close);
                self.out.extend_from_slice(b"zz\r\ndata: x\n\n\r\n");
                self.after = After::Close;
            }
            Fault::HugeLine => return self.huge_line(close).await,
            Fault::MalformedJson if streamed => {
                self.whole_reply(reply, true, chunked, close, Some(CUT_JSON));
            }
            Fault::InvalidUtf8 if streamed => {
                self.whole_reply(reply, true, chunked, close, Some(BAD_UTF8));
            }
            Fault::ErrorEvent if streamed => {
                self.out.truncate(layout.first_end);
                sse::data(&mut self.out, chunked, &[ERROR_EVENT]);
                sse::done(&mut self.out, chunked);
                sse::finish(&mut self.out, chunked);
            }
            Fault::MalformedJson | Fault::InvalidUtf8 | Fault::ErrorEvent => {
                let body = match fault {
                    Fault::MalformedJson => self.body[..self.body.len() / 2].to_vec(),
                    Fault::InvalidUtf8 => BAD_UTF8.to_vec(),
                    _ => ERROR_EVENT.to_vec(),
                };
                self.out.clear();
                http::push_reply(&mut self.out, 200, Some(http::JSON), None, &body, close);
            }
            Fault::HttpError | Fault::TooManyRequests | Fault::ResetBeforeHead => {}
        }
        self.stream.write_all(&self.out).await
    }

    /// The whole correct reply in `self.out` (a body in `self.body` too, unstreamed), written
    /// at once; with `inject`, that event's data goes in right after the first token event.
    fn whole_reply(
        &mut self,
        reply: &mut Reply,
        streamed: bool,
        chunked: bool,
        close: bool,
        inject: Option<&[u8]>,
    ) -> Layout {
        self.out.clear();
        if !streamed {
            self.push_unstreamed(reply, close);
            let head_end = self.out.len() - self.body.len();
            return Layout {
                head_end,
                first_end: head_end,
            };
        }
        http::push_stream_head(&mut self.out, chunked, close);
        reply.push_head(&mut self.out, chunked);
        let head_end = self.out.len();
        let mut first_end = head_end;
        let mut k = 0;
        while k < reply.n {
            let end = reply.event_end(k);
            reply.push_event(&mut self.out, chunked, k, end);
            if k == 0 {
                first_end = self.out.len();
                if let Some(data) = inject {
                    sse::data(&mut self.out, chunked, &[data]);
                }
            }
            k = end;
        }
        reply.push_tail(&mut self.out, chunked);
        Layout {
            head_end,
            first_end,
        }
    }

    /// A stream head, then one `data:` line of 17 MiB (more than clients buffer for one
    /// event), in 1 MiB chunks.
    async fn huge_line(&mut self, close: bool) -> io::Result<()> {
        const PIECE: usize = 1 << 20;
        self.out.clear();
        http::push_stream_head(&mut self.out, true, close);
        sse::event(&mut self.out, true, |o| o.extend_from_slice(b"data: "));
        self.stream.write_all(&self.out).await?;
        let mut piece = format!("{PIECE:x}\r\n").into_bytes();
        piece.resize(piece.len() + PIECE, b'x');
        piece.extend_from_slice(b"\r\n");
        for _ in 0..17 {
            self.stream.write_all(&piece).await?;
        }
        self.out.clear();
        sse::event(&mut self.out, true, |o| o.extend_from_slice(b"\n\n"));
        sse::finish(&mut self.out, true);
        self.after = After::Close;
        self.stream.write_all(&self.out).await
    }

    /// Makes the coming close send RST (SO_LINGER with a zero timeout), as a crashed or
    /// killed server's kernel would.
    fn set_reset_on_close(&self) {
        let linger = libc::linger {
            l_onoff: 1,
            l_linger: 0,
        };
        // SAFETY: a valid socket descriptor and a correctly sized option value.
        unsafe {
            libc::setsockopt(
                self.stream.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_LINGER,
                (&linger as *const libc::linger).cast(),
                std::mem::size_of::<libc::linger>() as libc::socklen_t,
            );
        }
    }

    /// Half-closes, then reads and discards what the client still sends (briefly), so the
    /// kernel ends the connection with FIN after our reply rather than RST.
    async fn linger_close(&mut self) {
        // A TCP socket's close is shutdown(SHUT_WR); TLS sends close_notify first.
        if self.stream.close().await.is_err() {
            return;
        }
        let mut discard = [0u8; 4096];
        let drain = async {
            while let Ok(1..) = self.stream.read(&mut discard).await {}
            Ok::<(), glommio::GlommioError<()>>(())
        };
        let _ = glommio::timer::timeout(LINGER, drain).await;
    }
}

/// Where a reply built by [`Tx::whole_reply`] has its parts.
struct Layout {
    /// End of the head (and of a stream's preamble).
    head_end: usize,
    /// End of the first token event (streamed), else `head_end`.
    first_end: usize,
}

/// Sleeps until `due`; when it has passed already, yields only if the executor wants the CPU
/// back (a stream with ITL 0 must not starve the shard's other timers).
async fn sleep_until(due: Instant) {
    let now = Instant::now();
    if due > now {
        glommio::timer::sleep(due - now).await;
    } else if glommio::executor().need_preempt() {
        // Through the timer, not `glommio::yield_if_needed`: under load, tasks that yielded
        // that way were seen never to resume in glommio 0.9.0 (streams froze until unrelated
        // I/O arrived). A timer this short is due at the executor's next pass.
        glommio::timer::sleep(REACTOR_YIELD).await;
    }
}

/// The prompt's token count: known at once, being computed on the blocking pool, or not
/// counted (a text prompt while --count-prompt-tokens is off).
enum PromptTokens {
    Known(usize),
    Counting(Task<usize>),
    Uncounted,
}

impl PromptTokens {
    fn start(shard: &Shard, prompt: &Prompt<'_>) -> Self {
        match prompt {
            Prompt::TokenIds(n) => PromptTokens::Known(*n),
            Prompt::Text(_) if shard.tokenizer.is_none() => PromptTokens::Uncounted,
            Prompt::Text(text) if text.len() <= INLINE_TOKENIZE_BYTES => PromptTokens::Known(
                shard
                    .tokenizer
                    .as_ref()
                    .map_or(0, |t| shard::count_tokens(t, text)),
            ),
            Prompt::Text(text) => {
                let tokenizer = shard.tokenizer.clone();
                let text = text.to_string();
                // A task of its own, so counting starts now and overlaps the TTFT wait.
                PromptTokens::Counting(glommio::spawn_local(async move {
                    glommio::executor()
                        .spawn_blocking(move || {
                            tokenizer.map_or(0, |t| shard::count_tokens(&t, &text))
                        })
                        .await
                }))
            }
        }
    }

    /// The count (waiting for it if being computed); may be asked again.
    async fn get(&mut self) -> Option<usize> {
        if let PromptTokens::Counting(task) = self {
            *self = PromptTokens::Known(task.await);
        }
        match self {
            PromptTokens::Known(n) => Some(*n),
            _ => None,
        }
    }
}

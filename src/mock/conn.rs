//! One client connection: read a request, reply on schedule, repeat while kept alive.
//!
//! A client that goes away (reset, broken pipe, EOF mid-request) just ends its task: every
//! I/O error here is the peer's doing and is not worth a log line.

use std::io;
use std::net::Shutdown;
use std::rc::Rc;
use std::time::{Duration, Instant};

use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::TcpStream;
use glommio::Task;

use super::completions::{self as cmpl, Completion, Prompt};
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

pub(super) async fn serve(stream: TcpStream, shard: Rc<Shard>) {
    let _ = stream.set_nodelay(true);
    let mut conn = Conn {
        recv: RecvBuf::new(),
        tx: Tx {
            stream,
            out: Vec::with_capacity(512),
            json: Vec::with_capacity(256),
            truth: shard.truth.as_ref().map(|_| Stamps::default()),
        },
    };
    if let Ok(true) = conn.run(&shard).await {
        conn.tx.linger_close().await;
    }
}

struct Conn {
    recv: RecvBuf,
    tx: Tx,
}

/// The sending half: the socket and reusable output buffers.
struct Tx {
    stream: TcpStream,
    /// Bytes of the next write.
    out: Vec<u8>,
    /// The current response's JSON head (and, unstreamed, its whole body).
    json: Vec<u8>,
    /// When the current reply's bytes were written; `None` unless --truth-log is on.
    truth: Option<Stamps>,
}

impl Conn {
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

impl Tx {
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
            Route::Completions => match cmpl::parse(body) {
                Ok(req) => self.complete(shard, req, head, request_id, t_read).await,
                Err(message) => self.error(400, &message, None, close).await,
            },
            Route::NotFound => {
                let message =
                    "no such route; served: GET /health, GET /v1/models, POST /v1/completions";
                self.error(404, message, None, close).await
            }
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

    async fn complete(
        &mut self,
        shard: &Shard,
        req: Completion<'_>,
        head: &RequestHead,
        request_id: Option<&[u8]>,
        t_read: Instant,
    ) -> io::Result<()> {
        let prompt_tokens = PromptTokens::start(shard, &req.prompt);
        self.stamp(Stamps::clear);
        self.json.clear();
        shard
            .templates
            .push_response_head(&mut self.json, shard.next_id(), shard::unix_now());
        let close = !head.keep_alive;
        if req.stream {
            let chunked = !head.http10;
            self.stream_tokens(shard, &req, prompt_tokens, t_read, chunked, close)
                .await?;
        } else {
            self.whole_body(shard, &req, prompt_tokens, t_read, close)
                .await?;
        }
        if let (Some(log), Some(stamps)) = (&shard.truth, &self.truth) {
            log.push(request_id, req.stream, shard.anchor.to_ns(t_read), stamps);
        }
        Ok(())
    }

    /// Records a moment of the current reply when --truth-log is on.
    fn stamp(&mut self, mark: impl FnOnce(&mut Stamps)) {
        if let Some(stamps) = &mut self.truth {
            mark(stamps);
        }
    }

    /// Streams token `k` at `t_read + ttft + k * itl`, then the usage event if asked for,
    /// then `[DONE]`.
    async fn stream_tokens(
        &mut self,
        shard: &Shard,
        req: &Completion<'_>,
        prompt_tokens: PromptTokens,
        t_read: Instant,
        chunked: bool,
        close: bool,
    ) -> io::Result<()> {
        self.out.clear();
        http::push_stream_head(&mut self.out, chunked, close);
        self.stream.write_all(&self.out).await?;
        self.stamp(Stamps::head);

        let n = req.max_tokens;
        let due = |k: u32| t_read + shard.ttft + shard.itl * k;
        let mut k = 0;
        while k < n {
            sleep_until(due(k)).await;
            // A mock that has fallen behind its schedule (more streams than its CPU carries)
            // writes the tokens already due together: one segment instead of one per late
            // token, so it catches up instead of falling further behind. The truth log stamps
            // each of them with that one write. With ITL 0 nothing is late, and every token
            // keeps its own write.
            let mut end = k + 1;
            if !shard.itl.is_zero() {
                let now = Instant::now();
                while end < n && due(end) <= now {
                    end += 1;
                }
            }
            self.out.clear();
            for j in k..end {
                let close_json = if j + 1 == n {
                    cmpl::TOKEN_CLOSE_LAST
                } else {
                    cmpl::TOKEN_CLOSE
                };
                cmpl::push_event(
                    &mut self.out,
                    chunked,
                    &[
                        &self.json,
                        cmpl::TOKEN_OPEN,
                        cmpl::word(j).as_bytes(),
                        close_json,
                    ],
                );
            }
            self.stream.write_all(&self.out).await?;
            for _ in k..end {
                self.stamp(Stamps::event);
            }
            k = end;
        }

        let prompt_tokens = prompt_tokens.get().await;
        if req.include_usage {
            self.json.extend_from_slice(cmpl::USAGE_OPEN);
            cmpl::push_usage(&mut self.json, prompt_tokens, n);
            self.json.push(b'}');
            self.out.clear();
            cmpl::push_event(&mut self.out, chunked, &[&self.json]);
            self.stream.write_all(&self.out).await?;
        }
        self.out.clear();
        cmpl::push_done(&mut self.out, chunked);
        self.stream.write_all(&self.out).await?;
        self.stamp(Stamps::end);
        Ok(())
    }

    /// Sends the whole completion at `t_read + ttft + (max_tokens - 1) * itl`.
    async fn whole_body(
        &mut self,
        shard: &Shard,
        req: &Completion<'_>,
        prompt_tokens: PromptTokens,
        t_read: Instant,
        close: bool,
    ) -> io::Result<()> {
        let n = req.max_tokens;
        self.json.extend_from_slice(cmpl::TOKEN_OPEN);
        for k in 0..n {
            self.json.extend_from_slice(cmpl::word(k).as_bytes());
        }
        self.json.extend_from_slice(cmpl::BODY_CLOSE);
        sleep_until(t_read + shard.ttft + shard.itl * (n - 1)).await;
        let prompt_tokens = prompt_tokens.get().await;
        cmpl::push_usage(&mut self.json, prompt_tokens, n);
        self.json.push(b'}');
        self.out.clear();
        http::push_reply(
            &mut self.out,
            200,
            Some(http::JSON),
            None,
            &self.json,
            close,
        );
        self.stream.write_all(&self.out).await?;
        self.stamp(Stamps::whole);
        Ok(())
    }

    /// Half-closes, then reads and discards what the client still sends (briefly), so the
    /// kernel ends the connection with FIN after our reply rather than RST.
    async fn linger_close(&mut self) {
        if self.stream.shutdown(Shutdown::Write).await.is_err() {
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

    async fn get(self) -> Option<usize> {
        match self {
            PromptTokens::Known(n) => Some(n),
            PromptTokens::Counting(task) => Some(task.await),
            PromptTokens::Uncounted => None,
        }
    }
}

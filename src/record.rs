//! What one run measured: a record per request (plan order) and the merged distributions.
//!
//! Records are allocated with their full capacity before the clock starts, so filling them on
//! the timed path never allocates unless a server sends more events than it was asked for.

use crate::stats::Distribution;

/// Timestamps are nanoseconds since the run's epoch (`t0`, the planned instant of the first
/// arrival), all from one monotonic clock.
#[derive(Clone, Debug, Default)]
pub struct RequestRecord {
    pub success: bool,
    /// Planned arrival (from the plan) and the actual start of the request write.
    pub arrival_ns: u64,
    pub start_ns: u64,
    /// When the last byte of the request was handed to the kernel (0: never).
    pub sent_ns: u64,
    /// Time to the first output-carrying event, and to the last one (vLLM's "latency").
    pub ttft_ns: u64,
    pub latency_ns: u64,
    /// Gaps between consecutive output-carrying events (vLLM's ITL: one per event).
    pub itl_ns: Vec<u64>,
    /// Generated text as the server sent it inside JSON strings (still escaped); unescaped
    /// after the run, never on the timed path.
    pub text_raw: Vec<u8>,
    /// Prompt length: the plan's, replaced by the server's `usage.prompt_tokens` if sent.
    pub prompt_len: u32,
    /// The server's `usage.completion_tokens`, if it sent one.
    pub usage_output_tokens: Option<u32>,
    /// Output tokens used for the metrics (usage, else retokenized after the run).
    pub output_tokens: u32,
    /// Whether the connection was opened for this request (not reused).
    pub new_connection: bool,
    pub error: Option<String>,
    /// Why the request failed (set together with `error`).
    pub failure: Option<FailureKind>,
    /// `--duration` ended before this request was due: it was never sent, and is left out
    /// of the results.
    pub not_sent: bool,
}

impl RequestRecord {
    /// A record ready to be filled without allocating for a request of `output_len` tokens.
    pub fn with_capacity(prompt_len: u32, output_len: u32, arrival_ns: u64) -> Self {
        let events = output_len as usize;
        RequestRecord {
            arrival_ns,
            prompt_len,
            itl_ns: Vec::with_capacity(events.saturating_sub(1)),
            // A token is a few bytes of text; escapes and long tokens may still grow this.
            text_raw: Vec::with_capacity(events * 8),
            ..Default::default()
        }
    }

    /// Client-side queueing: planned arrival to actual send (vLLM's `client_queue_time`).
    pub fn queue_ns(&self) -> u64 {
        self.start_ns.saturating_sub(self.arrival_ns)
    }

    /// vLLM's TPOT for this request, if it has more than one output token.
    pub fn tpot_ns(&self) -> Option<u64> {
        (self.success && self.output_tokens > 1)
            .then(|| (self.latency_ns - self.ttft_ns) / (self.output_tokens as u64 - 1))
    }
}

/// The cause category of a failed request, counted in the report and the result file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FailureKind {
    /// The TCP (or TLS) connection could not be opened.
    Connect,
    /// `--request-timeout` passed, or no byte arrived for the stall timeout.
    Timeout,
    /// The server answered with a non-2xx status.
    HttpStatus,
    /// The connection was reset or closed before the response ended.
    Reset,
    /// The response broke HTTP, chunked framing, SSE or the backend's JSON.
    Protocol,
    /// The server sent an error event or error object inside a 2xx response.
    ServerError,
    /// Stopped by the user (second Ctrl-C / signal) before it ended.
    Aborted,
}

impl FailureKind {
    pub const ALL: [FailureKind; 7] = [
        FailureKind::Connect,
        FailureKind::Timeout,
        FailureKind::HttpStatus,
        FailureKind::Reset,
        FailureKind::Protocol,
        FailureKind::ServerError,
        FailureKind::Aborted,
    ];

    /// The name used in the console and the result file.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::Connect => "connect",
            FailureKind::Timeout => "timeout",
            FailureKind::HttpStatus => "http_status",
            FailureKind::Reset => "reset",
            FailureKind::Protocol => "protocol",
            FailureKind::ServerError => "server_error",
            FailureKind::Aborted => "aborted",
        }
    }
}

/// The distributions a shard records and the report merges.
#[derive(Clone, Debug, Default)]
pub struct Metrics {
    pub ttft: Distribution,
    pub tpot: Distribution,
    pub itl: Distribution,
    pub e2el: Distribution,
    pub queue: Distribution,
}

impl Metrics {
    /// Record a finished successful request. TPOT is recorded only when its token count is
    /// known now (from `usage`); otherwise [`Metrics::record_tpot`] runs after retokenizing.
    pub fn record_request(&mut self, r: &RequestRecord) {
        self.ttft.record(r.ttft_ns);
        self.e2el.record(r.latency_ns);
        self.queue.record(r.queue_ns());
        for &gap in &r.itl_ns {
            self.itl.record(gap);
        }
        if r.usage_output_tokens.is_some() {
            self.record_tpot(r);
        }
    }

    pub fn record_tpot(&mut self, r: &RequestRecord) {
        if let Some(t) = r.tpot_ns() {
            self.tpot.record(t);
        }
    }

    pub fn merge(&mut self, other: &Metrics) {
        self.ttft.merge(&other.ttft);
        self.tpot.merge(&other.tpot);
        self.itl.merge(&other.itl);
        self.e2el.merge(&other.e2el);
        self.queue.merge(&other.queue);
    }
}

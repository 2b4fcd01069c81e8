use std::fmt;

/// Everything that can be wrong with a response on the wire.
///
/// After any of these the connection is in an unknown state: the engine closes it (and calls
/// [`ResponseParser::reset`](super::ResponseParser::reset) before the parser's next use).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProtoError {
    /// httparse rejected the response head.
    InvalidHead(httparse::Error),
    /// No end of the head within `limit` bytes.
    HeadTooLarge { limit: usize },
    /// More header lines than the parser keeps room for.
    TooManyHeaders { limit: usize },
    /// A status code outside 100..=999.
    InvalidStatus(u16),
    /// A Content-Length value that is not a decimal number.
    InvalidContentLength,
    /// Several Content-Length values that disagree.
    ConflictingContentLength,
    /// HTTP/1.0 has no Transfer-Encoding; a response that says so is malformed.
    TransferEncodingInHttp10,
    /// 101 Switching Protocols: this client never asks for an upgrade.
    UnexpectedUpgrade,
    /// Chunked framing is broken; says where.
    Chunked(&'static str),
    /// Chunk extensions over the whole body exceed `limit` bytes.
    ChunkExtensionsTooLarge { limit: usize },
    /// The chunked trailer section exceeds `limit` bytes.
    TrailersTooLarge { limit: usize },
    /// One server-sent event (or one line of it) exceeds `limit` bytes.
    SseEventTooLarge { limit: usize },
    /// The peer closed the connection before the response was complete.
    UnexpectedEof { received: u64, during: &'static str },
    /// A stream event's JSON is malformed or not shaped as expected.
    Json {
        offset: usize,
        problem: &'static str,
        excerpt: String,
    },
    /// `feed` was called again after it had returned an error, without `reset`.
    UsedAfterError,
}

impl fmt::Display for ProtoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidHead(e) => write!(f, "invalid HTTP response head: {e}"),
            Self::HeadTooLarge { limit } => {
                write!(f, "HTTP response head is larger than {limit} bytes")
            }
            Self::TooManyHeaders { limit } => {
                write!(f, "HTTP response head has more than {limit} header lines")
            }
            Self::InvalidStatus(code) => write!(f, "invalid HTTP status code {code}"),
            Self::InvalidContentLength => {
                write!(f, "invalid Content-Length header (not a decimal number)")
            }
            Self::ConflictingContentLength => {
                write!(f, "conflicting Content-Length values in the response head")
            }
            Self::TransferEncodingInHttp10 => {
                write!(f, "HTTP/1.0 response carries a Transfer-Encoding header")
            }
            Self::UnexpectedUpgrade => {
                write!(f, "server answered 101 Switching Protocols to a plain request")
            }
            Self::Chunked(what) => write!(f, "invalid chunked body: {what}"),
            Self::ChunkExtensionsTooLarge { limit } => {
                write!(f, "chunk extensions exceed {limit} bytes")
            }
            Self::TrailersTooLarge { limit } => {
                write!(f, "chunked trailer section exceeds {limit} bytes")
            }
            Self::SseEventTooLarge { limit } => {
                write!(f, "server-sent event exceeds the limit of {limit} bytes")
            }
            Self::UnexpectedEof { received, during } => {
                write!(
                    f,
                    "connection closed after {received} bytes of response ({during})"
                )
            }
            Self::Json {
                offset,
                problem,
                excerpt,
            } => write!(
                f,
                "undecodable stream event at byte {offset}: {problem}; event starts with {excerpt:?}"
            ),
            Self::UsedAfterError => {
                write!(f, "response parser used again after an error without a reset")
            }
        }
    }
}

impl std::error::Error for ProtoError {}

/// At most this many bytes of a bad event are quoted in an error.
pub(crate) const EXCERPT_BYTES: usize = 200;

/// The start of `data`, for quoting in an error (lossy: the bytes may not be UTF-8).
pub(crate) fn excerpt(data: &[u8]) -> String {
    let cut = &data[..data.len().min(EXCERPT_BYTES)];
    let mut s = String::from_utf8_lossy(cut).into_owned();
    if data.len() > EXCERPT_BYTES {
        s.push('…');
    }
    s
}

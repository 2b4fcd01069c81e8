//! The client's wire protocol, sans-IO: byte slices in, events out.
//!
//! Nothing here touches a socket or a clock. The I/O layer feeds each read into a
//! [`ResponseParser`] and stamps every event that comes out of that `feed` with the read's
//! timestamp. Layers, each usable on its own:
//!
//! * [`http_head`]: the HTTP/1.1 response head (httparse) and its body framing (RFC 9112 §6.3);
//! * [`chunked`]: incremental chunked-transfer decoding, yielding borrowed slices;
//! * [`sse`]: incremental `text/event-stream` splitting (WHATWG rules) over bytes;
//! * [`response`]: the three above composed, one parser per connection;
//! * [`completions`]: the `data` of one OpenAI Completions stream event, decoded;
//! * [`formats`]: the same for Chat, Responses, SGLang, TGI and Triton streams.
//!
//! Every parser is split-invariant: the same bytes give the same events however the reads cut
//! them (through events, `\r\n`, chunk-size lines or UTF-8 sequences).

pub mod chunked;
pub mod completions;
pub mod formats;
pub mod http_head;
pub mod response;
pub mod sse;

mod error;

pub use chunked::ChunkedDecoder;
pub use completions::{decode_completion_event, unescape_into, CompletionEvent, JsonStr, Usage};
pub use error::ProtoError;
pub use formats::{decode_stream_event, decode_whole_body, StreamEvent};
pub use http_head::{Framing, ResponseHead, MAX_HEADERS, MAX_HEAD_BYTES};
pub use response::{Event, Progress, ResponseParser};
pub use sse::{SseEvent, SseParser, DEFAULT_MAX_EVENT_SIZE};

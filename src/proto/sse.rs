//! Incremental `text/event-stream` parser (WHATWG HTML, "interpreting an event stream").
//!
//! Works on bytes: UTF-8 is checked later by the JSON decoder, so a multi-byte character cut by
//! a read needs no care here. An event whose single `data` line lies inside one input slice is
//! handed out as a slice of that input; only events that span feeds, or have several data
//! lines, are copied into the parser's buffers, which are reused from event to event.
//!
//! Differences from a browser's EventSource, on purpose: `id` and `retry` are ignored (the
//! client never reconnects), and the event type is handed out as sent (empty when absent,
//! where a browser would say "message").

use super::ProtoError;

/// Default limit on one event's data (and on any one line).
pub const DEFAULT_MAX_EVENT_SIZE: usize = 16 * 1024 * 1024;
/// A line may exceed the event limit by this much, room for the field name before the data.
const LINE_SLACK: usize = 64;
/// Buffers that grew past this for one huge event are shrunk back on reset. Token events are
/// a few hundred bytes; a connection that once met a 16 MiB line must not keep megabytes for
/// the rest of the run (the soak's huge-line faults held 400 MiB across slots at 1 MiB).
const KEEP_CAPACITY: usize = 64 * 1024;

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// One dispatched event. `event` is empty when the stream sent no `event:` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SseEvent<'a> {
    pub event: &'a [u8],
    pub data: &'a [u8],
}

/// Where the current event's data is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Data {
    /// No `data` line yet: a blank line dispatches nothing.
    None,
    /// One data line, `start..end` of the current input (this feed only).
    Borrowed(usize, usize),
    /// In `SseParser::data`.
    Owned,
}

/// Splits one event stream into events; [`reset`](Self::reset) it for the next stream.
#[derive(Debug, Clone)]
pub struct SseParser {
    max_event_size: usize,
    /// A line cut by the end of the previous feed.
    line: Vec<u8>,
    data: Vec<u8>,
    data_state: Data,
    event: Vec<u8>,
    /// The last feed ended with CR: an LF starting the next one belongs to it.
    pending_cr: bool,
    /// Bytes of the BOM matched so far at the start of the stream; 3 once decided.
    bom_matched: u8,
}

impl Default for SseParser {
    fn default() -> Self {
        Self::new()
    }
}

impl SseParser {
    pub fn new() -> Self {
        Self::with_max_event_size(DEFAULT_MAX_EVENT_SIZE)
    }

    pub fn with_max_event_size(max_event_size: usize) -> Self {
        SseParser {
            max_event_size,
            line: Vec::new(),
            data: Vec::new(),
            data_state: Data::None,
            event: Vec::new(),
            pending_cr: false,
            bom_matched: 0,
        }
    }

    pub fn max_event_size(&self) -> usize {
        self.max_event_size
    }

    /// Forgets the stream so far (an unfinished event is dropped), keeping the buffers.
    pub fn reset(&mut self) {
        for buf in [&mut self.line, &mut self.data, &mut self.event] {
            buf.clear();
            if buf.capacity() > KEEP_CAPACITY {
                buf.shrink_to(KEEP_CAPACITY);
            }
        }
        self.data_state = Data::None;
        self.pending_cr = false;
        self.bom_matched = 0;
    }

    /// True when bytes of an event that has not been dispatched are held.
    pub fn has_partial_event(&self) -> bool {
        !self.line.is_empty() || self.data_state != Data::None || !self.event.is_empty()
    }

    /// Parses the next bytes of the stream, calling `on_event` for each complete event.
    pub fn feed(
        &mut self,
        input: &[u8],
        on_event: &mut impl FnMut(SseEvent<'_>),
    ) -> Result<(), ProtoError> {
        let mut pos = 0;
        if self.bom_matched < 3 {
            pos = self.skip_bom(input);
        }
        if self.pending_cr && pos < input.len() {
            self.pending_cr = false;
            if input[pos] == b'\n' {
                pos += 1;
            }
        }
        while pos < input.len() {
            let Some(off) = memchr::memchr2(b'\n', b'\r', &input[pos..]) else {
                break;
            };
            let end = pos + off;
            let mut next = end + 1;
            if input[end] == b'\r' {
                match input.get(next) {
                    Some(b'\n') => next += 1,
                    Some(_) => {}
                    None => self.pending_cr = true,
                }
            }
            if self.line.is_empty() {
                self.line_in_input(input, pos, end, on_event)?;
            } else {
                self.check_line(self.line.len() + (end - pos))?;
                self.line.extend_from_slice(&input[pos..end]);
                let line = std::mem::take(&mut self.line);
                let result = self.owned_line(&line, on_event);
                self.line = line;
                self.line.clear();
                result?;
            }
            pos = next;
        }
        // The event's single data line was borrowed from this input: keep a copy.
        if let Data::Borrowed(start, end) = self.data_state {
            self.data.clear();
            self.data.extend_from_slice(&input[start..end]);
            self.data_state = Data::Owned;
        }
        if pos < input.len() {
            self.check_line(self.line.len() + (input.len() - pos))?;
            self.line.extend_from_slice(&input[pos..]);
        }
        Ok(())
    }

    /// Consumes a leading BOM, also when a feed cuts it. Returns the bytes of `input` used.
    fn skip_bom(&mut self, input: &[u8]) -> usize {
        let mut pos = 0;
        while self.bom_matched < 3 {
            let Some(&b) = input.get(pos) else {
                return pos;
            };
            if b == BOM[self.bom_matched as usize] {
                self.bom_matched += 1;
                pos += 1;
            } else {
                // Not a BOM after all: the bytes held back start the first line.
                self.line
                    .extend_from_slice(&BOM[..self.bom_matched as usize]);
                self.bom_matched = 3;
            }
        }
        pos
    }

    fn check_line(&self, len: usize) -> Result<(), ProtoError> {
        if len > self.max_event_size.saturating_add(LINE_SLACK) {
            return Err(ProtoError::SseEventTooLarge {
                limit: self.max_event_size,
            });
        }
        Ok(())
    }

    fn check_data(&self, len: usize) -> Result<(), ProtoError> {
        if len > self.max_event_size {
            return Err(ProtoError::SseEventTooLarge {
                limit: self.max_event_size,
            });
        }
        Ok(())
    }

    /// A whole line inside `input[start..end]`: the common case, where a data line can be
    /// borrowed instead of copied.
    fn line_in_input(
        &mut self,
        input: &[u8],
        start: usize,
        end: usize,
        on_event: &mut impl FnMut(SseEvent<'_>),
    ) -> Result<(), ProtoError> {
        let line = &input[start..end];
        self.check_line(line.len())?;
        if line.is_empty() {
            self.dispatch(input, on_event);
            return Ok(());
        }
        let (field, value) = split_field(line);
        if field == b"data" && self.data_state == Data::None {
            self.check_data(value.len())?;
            let value_start = end - value.len();
            self.data_state = Data::Borrowed(value_start, end);
            return Ok(());
        }
        if let Data::Borrowed(s, e) = self.data_state {
            self.data.clear();
            self.data.extend_from_slice(&input[s..e]);
            self.data_state = Data::Owned;
        }
        self.field(field, value)
    }

    /// A line assembled in the line buffer from several feeds.
    fn owned_line(
        &mut self,
        line: &[u8],
        on_event: &mut impl FnMut(SseEvent<'_>),
    ) -> Result<(), ProtoError> {
        if line.is_empty() {
            self.dispatch(&[], on_event);
            return Ok(());
        }
        let (field, value) = split_field(line);
        self.field(field, value)
    }

    /// Applies a field while the event's data (if any) is owned.
    fn field(&mut self, field: &[u8], value: &[u8]) -> Result<(), ProtoError> {
        match field {
            b"data" => {
                if self.data_state == Data::None {
                    self.check_data(value.len())?;
                    self.data.clear();
                } else {
                    self.check_data(self.data.len() + 1 + value.len())?;
                    self.data.push(b'\n');
                }
                self.data.extend_from_slice(value);
                self.data_state = Data::Owned;
            }
            b"event" => {
                self.event.clear();
                self.event.extend_from_slice(value);
            }
            // Comments (empty field name), id, retry and unknown fields.
            _ => {}
        }
        Ok(())
    }

    /// A blank line: hand out the event if it has data, then start a new one.
    fn dispatch(&mut self, input: &[u8], on_event: &mut impl FnMut(SseEvent<'_>)) {
        let data = match self.data_state {
            Data::None => None,
            // Borrowed data only exists while its input is being fed, so the range is in it.
            Data::Borrowed(s, e) => Some(input.get(s..e).unwrap_or_default()),
            Data::Owned => Some(self.data.as_slice()),
        };
        if let Some(data) = data {
            on_event(SseEvent {
                event: &self.event,
                data,
            });
        }
        self.data_state = Data::None;
        self.event.clear();
    }
}

/// `field: value` with one optional space after the colon; a line without a colon is a field
/// with an empty value; a comment has an empty field name.
fn split_field(line: &[u8]) -> (&[u8], &[u8]) {
    match memchr::memchr(b':', line) {
        Some(colon) => {
            let value = &line[colon + 1..];
            (&line[..colon], value.strip_prefix(b" ").unwrap_or(value))
        }
        None => (line, &[]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Owned = (Vec<u8>, Vec<u8>);

    fn events_of(parts: &[&[u8]], parser: &mut SseParser) -> Result<Vec<Owned>, ProtoError> {
        let mut out = Vec::new();
        for part in parts {
            parser.feed(part, &mut |e| out.push((e.event.to_vec(), e.data.to_vec())))?;
        }
        Ok(out)
    }

    fn events(s: &[u8]) -> Vec<Owned> {
        events_of(&[s], &mut SseParser::new()).unwrap()
    }

    fn datas(s: &[u8]) -> Vec<String> {
        events(s)
            .into_iter()
            .map(|(_, d)| String::from_utf8(d).unwrap())
            .collect()
    }

    /// Every two-way split and the byte-at-a-time feed give what the whole input gives.
    fn assert_split_invariant(s: &[u8]) {
        let whole = events(s);
        for i in 0..=s.len() {
            let (a, b) = s.split_at(i);
            assert_eq!(
                events_of(&[a, b], &mut SseParser::new()).unwrap(),
                whole,
                "split {i}"
            );
        }
        let bytes: Vec<&[u8]> = s.chunks(1).collect();
        assert_eq!(events_of(&bytes, &mut SseParser::new()).unwrap(), whole);
    }

    #[test]
    fn basic_events_and_line_ends() {
        assert_eq!(
            datas(b"data: a\n\ndata: b\r\n\r\ndata: c\r\rdata:d\n\n"),
            ["a", "b", "c", "d"]
        );
        assert_eq!(datas(b"data:  two spaces\n\n"), [" two spaces"]);
        assert_split_invariant(b"data: a\n\ndata: b\r\n\r\ndata: c\r\rdata:d\n\n");
    }

    #[test]
    fn multi_line_data_is_joined_with_lf() {
        assert_eq!(
            datas(b"data: a\ndata:b\r\ndata\rdata: c\n\n"),
            ["a\nb\n\nc"]
        );
        assert_split_invariant(b"data: a\ndata:b\r\ndata\rdata: c\n\n");
    }

    #[test]
    fn comments_event_field_and_unknown_fields() {
        let s = b": ping\n\nevent: delta\nid: 7\nretry: 10\nfoo: bar\ndata: x\n\n:c\ndata: y\n\n";
        let got = events(s);
        assert_eq!(
            got,
            vec![
                (b"delta".to_vec(), b"x".to_vec()),
                (Vec::new(), b"y".to_vec())
            ],
            "the event type does not outlive its event"
        );
        assert_split_invariant(s);
    }

    #[test]
    fn no_data_no_dispatch_but_empty_data_dispatches() {
        assert!(events(b"event: x\n\n\n\n: c\n\n").is_empty());
        assert_eq!(datas(b"data\n\ndata:\n\n"), ["", ""]);
    }

    #[test]
    fn cr_then_lf_across_feeds_is_one_line_end() {
        let got = events_of(
            &[b"data: a\r", b"\ndata: b\r", b"\n\r", b"\n"],
            &mut SseParser::new(),
        );
        assert_eq!(got.unwrap(), vec![(Vec::new(), b"a\nb".to_vec())]);
        // A CR at the end of a feed followed by something else is a line end on its own.
        let got = events_of(&[b"data: a\r", b"\r"], &mut SseParser::new()).unwrap();
        assert_eq!(got, vec![(Vec::new(), b"a".to_vec())]);
    }

    #[test]
    fn bom_is_stripped_once() {
        assert_eq!(datas(b"\xEF\xBB\xBFdata: a\n\n"), ["a"]);
        // A second BOM is part of the field name, so the line is an unknown field.
        assert!(events(b"\xEF\xBB\xBF\xEF\xBB\xBFdata: a\n\n").is_empty());
        // Bytes that only start like a BOM are kept.
        assert_eq!(
            events(b"\xEF\xBBdata: a\n\n"),
            Vec::<Owned>::new(),
            "field \\xEF\\xBBdata"
        );
        assert_eq!(
            events(b"data: \xEF\xBB\n\n"),
            vec![(Vec::new(), b"\xEF\xBB".to_vec())]
        );
        let mut p = SseParser::new();
        let got = events_of(&[b"\xEF", b"\xBB", b"\xBFdata: a\n\n"], &mut p).unwrap();
        assert_eq!(got, vec![(Vec::new(), b"a".to_vec())]);
        let got = events_of(&[b"\xEF\xBB", b"x: 1\ndata: a\n\n"], &mut SseParser::new()).unwrap();
        assert_eq!(got, vec![(Vec::new(), b"a".to_vec())]);
        assert_split_invariant(b"\xEF\xBB\xBFdata: a\n\n");
        assert_split_invariant(b"\xEF\xBBdata: a\n\ndata: b\n\n");
    }

    #[test]
    fn unterminated_event_is_not_dispatched() {
        let mut p = SseParser::new();
        assert!(events_of(&[b"data: a\n"], &mut p).unwrap().is_empty());
        assert!(p.has_partial_event());
        p.reset();
        assert!(!p.has_partial_event());
        assert_eq!(
            events_of(&[b"data: b\n\n"], &mut p).unwrap(),
            vec![(vec![], b"b".to_vec())]
        );
    }

    #[test]
    fn event_size_limit() {
        let mut p = SseParser::with_max_event_size(8);
        assert_eq!(
            events_of(&[b"data: 12345678\n\n"], &mut p).unwrap().len(),
            1
        );
        let err = ProtoError::SseEventTooLarge { limit: 8 };
        assert_eq!(
            events_of(
                &[b"data: 123456789\n\n"],
                &mut SseParser::with_max_event_size(8)
            ),
            Err(err.clone())
        );
        // Several lines adding up, and a long line cut by feeds.
        let mut p = SseParser::with_max_event_size(8);
        assert_eq!(
            events_of(&[b"data: 1234\ndata: 5678\n\n"], &mut p),
            Err(err.clone())
        );
        let mut p = SseParser::with_max_event_size(8);
        assert_eq!(
            events_of(&[b"data: 12", b"34567", b"89\n"], &mut p),
            Err(err.clone())
        );
        // A line that never ends is cut off once it passes the limit plus room for a field name.
        let mut p = SseParser::with_max_event_size(8);
        let long = vec![b'x'; 8 + LINE_SLACK];
        assert!(events_of(&[&long], &mut p).is_ok());
        assert_eq!(events_of(&[b"x"], &mut p), Err(err));
    }

    #[test]
    fn buffers_are_reused() {
        let mut p = SseParser::new();
        let stream = b"data: {\"a\":1}\ndata: {\"b\":2}\n\n".repeat(4);
        let parts: Vec<&[u8]> = stream.chunks(7).collect();
        events_of(&parts, &mut p).unwrap();
        let caps = (p.line.capacity(), p.data.capacity());
        for _ in 0..10 {
            p.reset();
            assert_eq!(events_of(&parts, &mut p).unwrap().len(), 4);
        }
        assert_eq!((p.line.capacity(), p.data.capacity()), caps);
    }
}

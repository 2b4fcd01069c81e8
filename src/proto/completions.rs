//! The `data` of one OpenAI Completions stream event (`/v1/completions`, `stream: true`),
//! decoded with vLLM's client semantics:
//!
//! * `[DONE]` ends the stream;
//! * an object with a non-empty `choices` array is a token event, whatever its text (empty or
//!   missing text still counts, as in `vllm bench serve`);
//! * otherwise a non-empty `usage` object carries the token counts;
//! * otherwise a non-null top-level `error` is a server error (OpenAI's
//!   `{"error":{"message":..}}` or a plain string);
//! * any other object is [`CompletionEvent::Other`]; anything that is not valid JSON, or not
//!   shaped as above, is an error that quotes the event.
//!
//! The decoder is a single-pass validating JSON scanner that looks only at the few members it
//! needs and skips the rest without building anything: no `serde_json::Value`, no allocation
//! on the success path. The text comes back still escaped ([`JsonStr`]), so the engine can copy
//! it into a per-run arena and unescape once the clock has stopped.
//! Validation is as strict as serde_json's (RFC 8259, UTF-8, nesting at most 127 deep) and
//! additionally refuses unpaired `\uD800`-style surrogate escapes, so unescaping a string the
//! decoder accepted cannot fail.

use std::borrow::Cow;

use super::error::excerpt;
use super::ProtoError;

/// Deepest nesting of arrays and objects accepted: serde_json's default limit (it refuses the
/// 128th level).
const MAX_DEPTH: usize = 127;

/// Token counts reported by the server; either may be missing or null.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Usage {
    pub prompt_tokens: Option<u64>,
    pub completion_tokens: Option<u64>,
}

/// The contents of a JSON string between its quotes, escapes not yet decoded.
///
/// Always valid UTF-8 with valid escapes (the decoder checked), and empty exactly when the
/// decoded string is empty.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct JsonStr<'a> {
    raw: &'a str,
}

impl<'a> JsonStr<'a> {
    /// The raw contents, e.g. `h\u00e9llo\n` for the JSON `"h\u00e9llo\n"`.
    pub fn raw(&self) -> &'a str {
        self.raw
    }

    pub fn is_empty(&self) -> bool {
        self.raw.is_empty()
    }

    /// Whether decoding changes anything (else [`raw`](Self::raw) is the text itself).
    pub fn has_escapes(&self) -> bool {
        memchr::memchr(b'\\', self.raw.as_bytes()).is_some()
    }

    /// Appends the decoded text to `out`.
    pub fn unescape_into(&self, out: &mut String) -> Result<(), ProtoError> {
        unescape_into(self.raw.as_bytes(), out)
    }

    /// The decoded text, borrowed when there is nothing to decode.
    pub fn unescaped(&self) -> Result<Cow<'a, str>, ProtoError> {
        if !self.has_escapes() {
            return Ok(Cow::Borrowed(self.raw));
        }
        let mut s = String::with_capacity(self.raw.len());
        self.unescape_into(&mut s)?;
        Ok(Cow::Owned(s))
    }
}

/// One decoded stream event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CompletionEvent<'a> {
    /// `data: [DONE]`.
    Done,
    /// `choices` is non-empty; fields are from `choices[0]`. `usage` is the same event's usage
    /// object if it has a non-empty one (vLLM's client ignores usage on such events; SGLang's
    /// reads it).
    Token {
        text: JsonStr<'a>,
        finish_reason: Option<JsonStr<'a>>,
        usage: Option<Usage>,
    },
    /// No choices, but a non-empty `usage` object (the `include_usage` chunk).
    Usage(Usage),
    /// The server reported an error inside the stream: its message (with type and code).
    Error(String),
    /// Valid, but nothing the benchmark counts (including an empty or blank `data`).
    Other,
}

/// Decodes the `data` of one stream event. See the module docs for the rules.
pub fn decode_completion_event(data: &[u8]) -> Result<CompletionEvent<'_>, ProtoError> {
    let trimmed = data.trim_ascii();
    if trimmed == b"[DONE]" {
        return Ok(CompletionEvent::Done);
    }
    if trimmed.is_empty() {
        return Ok(CompletionEvent::Other);
    }
    let src = match std::str::from_utf8(data) {
        Ok(s) => s,
        Err(e) => return Err(json_error(data, e.valid_up_to(), "invalid UTF-8")),
    };
    let mut p = Scanner { src, i: 0 };
    p.ws();
    if p.peek() != Some(b'{') {
        return Err(p.error("expected a JSON object"));
    }
    // A member that is valid JSON but not shaped as expected is only an error if no later
    // duplicate replaces it (Python's json keeps the last), so shape errors wait until the end.
    let mut choice: Result<Option<Choice<'_>>, ProtoError> = Ok(None);
    let mut usage: Result<Option<Usage>, ProtoError> = Ok(None);
    let mut error: Option<(usize, usize)> = None;
    p.object(0, |p, key| {
        match key {
            "choices" => choice = p.shaped(Scanner::choices)?,
            "usage" => usage = p.shaped(Scanner::usage)?,
            "error" => error = p.error_span()?,
            _ => p.skip_value(1)?,
        }
        Ok(())
    })?;
    p.ws();
    if p.i != data.len() {
        return Err(p.error("trailing characters after the JSON object"));
    }
    // vLLM's order: choices first; usage only when there are none (a malformed usage next
    // to choices is ignored, as vLLM never looks at it).
    if let Some((text, finish_reason)) = choice? {
        return Ok(CompletionEvent::Token {
            text,
            finish_reason,
            usage: usage.unwrap_or(None),
        });
    }
    if let Some(usage) = usage? {
        return Ok(CompletionEvent::Usage(usage));
    }
    match error {
        Some((start, end)) => Ok(CompletionEvent::Error(error_message(src, start, end)?)),
        None => Ok(CompletionEvent::Other),
    }
}

/// Appends the decoded form of a JSON string's raw contents (`raw` excludes the quotes).
/// Handles `\uXXXX` including surrogate pairs; invalid escapes or UTF-8 are an error.
pub fn unescape_into(raw: &[u8], out: &mut String) -> Result<(), ProtoError> {
    let mut i = 0;
    while i < raw.len() {
        let run_end = memchr::memchr(b'\\', &raw[i..]).map_or(raw.len(), |n| i + n);
        match std::str::from_utf8(&raw[i..run_end]) {
            Ok(run) => out.push_str(run),
            Err(e) => return Err(json_error(raw, i + e.valid_up_to(), "invalid UTF-8")),
        }
        if run_end == raw.len() {
            break;
        }
        let (c, next) = decode_escape(raw, run_end)?;
        out.push(c);
        i = next;
    }
    Ok(())
}

fn json_error(data: &[u8], offset: usize, problem: &'static str) -> ProtoError {
    ProtoError::Json {
        offset,
        problem,
        excerpt: excerpt(data),
    }
}

/// Decodes the escape at `raw[at] == b'\\'`; returns the character and the index after it.
fn decode_escape(raw: &[u8], at: usize) -> Result<(char, usize), ProtoError> {
    let bad = |offset, problem| Err(json_error(raw, offset, problem));
    let c = match raw.get(at + 1) {
        Some(b'"') => '"',
        Some(b'\\') => '\\',
        Some(b'/') => '/',
        Some(b'b') => '\u{8}',
        Some(b'f') => '\u{c}',
        Some(b'n') => '\n',
        Some(b'r') => '\r',
        Some(b't') => '\t',
        Some(b'u') => {
            let Some(hi) = hex4(raw, at + 2) else {
                return bad(at, "invalid \\u escape");
            };
            return match hi {
                0xD800..=0xDBFF => {
                    let lo = match raw.get(at + 6..at + 8) {
                        Some(b"\\u") => hex4(raw, at + 8),
                        _ => None,
                    };
                    match lo {
                        Some(lo @ 0xDC00..=0xDFFF) => {
                            let cp = 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
                            match char::from_u32(cp) {
                                Some(c) => Ok((c, at + 12)),
                                None => bad(at, "invalid surrogate pair"),
                            }
                        }
                        _ => bad(at, "unpaired surrogate in a \\u escape"),
                    }
                }
                0xDC00..=0xDFFF => bad(at, "unpaired surrogate in a \\u escape"),
                _ => match char::from_u32(hi) {
                    Some(c) => Ok((c, at + 6)),
                    None => bad(at, "invalid \\u escape"),
                },
            };
        }
        Some(_) => return bad(at, "invalid escape in a string"),
        None => return bad(at, "unterminated escape in a string"),
    };
    Ok((c, at + 2))
}

fn hex4(raw: &[u8], at: usize) -> Option<u32> {
    let digits = raw.get(at..at + 4)?;
    digits.iter().try_fold(0u32, |n, &b| {
        let d = (b as char).to_digit(16)?;
        Some(n << 4 | d)
    })
}

/// Decodes an `error` member into one message.
fn error_message(src: &str, start: usize, end: usize) -> Result<String, ProtoError> {
    let value = &src[start..end];
    let mut p = Scanner { src, i: start };
    match p.peek() {
        Some(b'"') => {
            let raw = p.string()?;
            let mut msg = String::new();
            unescape_into(raw.as_bytes(), &mut msg)?;
            Ok(msg)
        }
        Some(b'{') => {
            let (mut message, mut kind, mut code) = (None, None, None);
            p.object(1, |p, key| {
                let value_start = p.i;
                match key {
                    "message" if p.peek() == Some(b'"') => message = Some(p.string()?),
                    "type" if p.peek() == Some(b'"') => kind = Some(p.string()?),
                    "code" if p.peek() != Some(b'n') => {
                        p.skip_value(2)?;
                        code = Some(&src[value_start..p.i]);
                    }
                    _ => p.skip_value(2)?,
                }
                Ok(())
            })?;
            let Some(message) = message else {
                return Ok(format!("server error {}", excerpt(value.as_bytes())));
            };
            let mut msg = String::new();
            unescape_into(message.as_bytes(), &mut msg)?;
            match (kind, code) {
                (Some(kind), Some(code)) => msg.push_str(&format!(" ({kind}, code {code})")),
                (Some(kind), None) => msg.push_str(&format!(" ({kind})")),
                (None, Some(code)) => msg.push_str(&format!(" (code {code})")),
                (None, None) => {}
            }
            Ok(msg)
        }
        _ => Ok(format!("server error {}", excerpt(value.as_bytes()))),
    }
}

/// Bytes that end a run of plain string characters.
static STRING_SPECIAL: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 0x20 {
        t[b] = true;
        b += 1;
    }
    t[b'"' as usize] = true;
    t[b'\\' as usize] = true;
    t
};

/// The index of the first `"`, `\\` or control byte at or after `j` (or the end), eight bytes
/// at a time: most of an event's bytes are inside strings.
fn plain_run_end(bytes: &[u8], mut j: usize) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    while let Some(word) = bytes.get(j..j + 8) {
        let Ok(word) = <[u8; 8]>::try_from(word) else {
            break;
        };
        let x = u64::from_le_bytes(word);
        let quote = x ^ (ONES * u64::from(b'"'));
        let backslash = x ^ (ONES * u64::from(b'\\'));
        // The classic "has zero byte" / "has byte less than n" tricks. Borrows can flag bytes
        // above a real hit, never below, so the lowest flag is exact.
        let hits = ((quote.wrapping_sub(ONES) & !quote)
            | (backslash.wrapping_sub(ONES) & !backslash)
            | (x.wrapping_sub(ONES * 0x20) & !x))
            & HIGH;
        if hits != 0 {
            return j + (hits.trailing_zeros() / 8) as usize;
        }
        j += 8;
    }
    while j < bytes.len() && !STRING_SPECIAL[bytes[j] as usize] {
        j += 1;
    }
    j
}

/// `choices[0]`'s text and finish reason.
type Choice<'a> = (JsonStr<'a>, Option<JsonStr<'a>>);

/// A cursor over UTF-8-checked JSON text.
struct Scanner<'a> {
    src: &'a str,
    i: usize,
}

impl<'a> Scanner<'a> {
    fn bytes(&self) -> &'a [u8] {
        self.src.as_bytes()
    }

    fn error(&self, problem: &'static str) -> ProtoError {
        json_error(self.bytes(), self.i, problem)
    }

    fn peek(&self) -> Option<u8> {
        self.bytes().get(self.i).copied()
    }

    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.i += 1;
        }
    }

    fn expect(&mut self, b: u8, problem: &'static str) -> Result<(), ProtoError> {
        self.ws();
        if self.peek() != Some(b) {
            return Err(self.error(problem));
        }
        self.i += 1;
        Ok(())
    }

    /// At an opening quote: the raw contents, checked, with the cursor after the closing quote.
    fn string(&mut self) -> Result<&'a str, ProtoError> {
        let bytes = self.bytes();
        let start = self.i + 1;
        let mut j = start;
        loop {
            j = plain_run_end(bytes, j);
            match bytes.get(j) {
                Some(b'"') => break,
                Some(b'\\') => j = decode_escape(bytes, j)?.1,
                Some(_) => {
                    self.i = j;
                    return Err(self.error("control character inside a string"));
                }
                None => {
                    self.i = j;
                    return Err(self.error("unterminated string"));
                }
            }
        }
        self.i = j + 1;
        // Both ends are at ASCII quotes, hence char boundaries.
        self.src
            .get(start..j)
            .ok_or_else(|| self.error("string is not valid UTF-8"))
    }

    fn literal(&mut self, word: &'static [u8]) -> Result<(), ProtoError> {
        if self.bytes()[self.i..].starts_with(word) {
            self.i += word.len();
            Ok(())
        } else {
            Err(self.error("invalid literal (expected true, false or null)"))
        }
    }

    /// At a `-` or digit: a number per RFC 8259; returns its text.
    fn number(&mut self) -> Result<&'a [u8], ProtoError> {
        let bytes = self.bytes();
        let start = self.i;
        let digits = |i: &mut usize| {
            let from = *i;
            while bytes.get(*i).is_some_and(u8::is_ascii_digit) {
                *i += 1;
            }
            *i > from
        };
        let mut i = start;
        if bytes.get(i) == Some(&b'-') {
            i += 1;
        }
        match bytes.get(i) {
            Some(b'0') => i += 1,
            Some(b'1'..=b'9') => {
                digits(&mut i);
            }
            _ => {
                self.i = i;
                return Err(self.error("invalid number"));
            }
        }
        if bytes.get(i) == Some(&b'.') {
            i += 1;
            if !digits(&mut i) {
                self.i = i;
                return Err(self.error("invalid number (no digits after the decimal point)"));
            }
        }
        if let Some(b'e' | b'E') = bytes.get(i) {
            i += 1;
            if let Some(b'+' | b'-') = bytes.get(i) {
                i += 1;
            }
            if !digits(&mut i) {
                self.i = i;
                return Err(self.error("invalid number (no digits in the exponent)"));
            }
        }
        self.i = i;
        Ok(&bytes[start..i])
    }

    /// At `{` (whitespace skipped): calls `member` for each key with the cursor at its value,
    /// which `member` must consume. `depth` is the nesting of the object's container.
    fn object(
        &mut self,
        depth: usize,
        mut member: impl FnMut(&mut Self, &'a str) -> Result<(), ProtoError>,
    ) -> Result<(), ProtoError> {
        if depth >= MAX_DEPTH {
            return Err(self.error("JSON nested too deeply"));
        }
        self.i += 1;
        self.ws();
        if self.peek() == Some(b'}') {
            self.i += 1;
            return Ok(());
        }
        loop {
            self.ws();
            if self.peek() != Some(b'"') {
                return Err(self.error("expected a string key"));
            }
            let key = self.string()?;
            self.expect(b':', "expected ':' after an object key")?;
            self.ws();
            member(self, key)?;
            self.ws();
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(b'}') => {
                    self.i += 1;
                    return Ok(());
                }
                _ => return Err(self.error("expected ',' or '}' in an object")),
            }
        }
    }

    /// Skips one value of any kind (whitespace before it skipped), checking it fully.
    /// Iterative, so hostile nesting cannot overflow the stack; `depth` counts the containers
    /// already open around it.
    fn skip_value(&mut self, depth: usize) -> Result<(), ProtoError> {
        // Bit n set: the n-th container opened here is an object.
        let mut kinds: u128 = 0;
        let mut open = 0usize;
        loop {
            self.ws();
            match self.peek() {
                Some(c @ (b'{' | b'[')) => {
                    if depth + open >= MAX_DEPTH {
                        return Err(self.error("JSON nested too deeply"));
                    }
                    self.i += 1;
                    let is_object = c == b'{';
                    kinds = (kinds & !(1 << open)) | (u128::from(is_object) << open);
                    open += 1;
                    self.ws();
                    if self.peek() == Some(if is_object { b'}' } else { b']' }) {
                        // Empty: a complete value, handled below like any other.
                        self.i += 1;
                        open -= 1;
                    } else if is_object {
                        self.key_and_colon()?;
                        continue;
                    } else {
                        continue;
                    }
                }
                Some(b'"') => {
                    self.string()?;
                }
                Some(b't') => self.literal(b"true")?,
                Some(b'f') => self.literal(b"false")?,
                Some(b'n') => self.literal(b"null")?,
                Some(b'-' | b'0'..=b'9') => {
                    self.number()?;
                }
                Some(_) => return Err(self.error("expected a JSON value")),
                None => return Err(self.error("unexpected end of JSON")),
            }
            // After a value: close containers until one continues with ','.
            loop {
                if open == 0 {
                    return Ok(());
                }
                let in_object = kinds & (1 << (open - 1)) != 0;
                self.ws();
                match (self.peek(), in_object) {
                    (Some(b','), _) => {
                        self.i += 1;
                        if in_object {
                            self.key_and_colon()?;
                        }
                        break;
                    }
                    (Some(b'}'), true) | (Some(b']'), false) => {
                        self.i += 1;
                        open -= 1;
                    }
                    (_, true) => return Err(self.error("expected ',' or '}' in an object")),
                    (_, false) => return Err(self.error("expected ',' or ']' in an array")),
                }
            }
        }
    }

    /// Runs `read` on the value at the cursor. If it fails, the value is skipped as plain
    /// JSON instead: should that fail too, the JSON is broken (the outer error); otherwise the
    /// value was merely not shaped as expected (the inner error, for the caller to weigh).
    fn shaped<T>(
        &mut self,
        read: fn(&mut Self) -> Result<T, ProtoError>,
    ) -> Result<Result<T, ProtoError>, ProtoError> {
        let start = self.i;
        match read(self) {
            Ok(v) => Ok(Ok(v)),
            Err(shape) => {
                self.i = start;
                self.skip_value(1)?;
                Ok(Err(shape))
            }
        }
    }

    fn key_and_colon(&mut self) -> Result<(), ProtoError> {
        self.ws();
        if self.peek() != Some(b'"') {
            return Err(self.error("expected a string key"));
        }
        self.string()?;
        self.expect(b':', "expected ':' after an object key")
    }

    /// The `choices` member: `Some` with `choices[0]`'s text and finish reason when it is a
    /// non-empty array; `None` when it is empty or null.
    fn choices(&mut self) -> Result<Option<Choice<'a>>, ProtoError> {
        match self.peek() {
            Some(b'n') => {
                self.literal(b"null")?;
                return Ok(None);
            }
            Some(b'[') => {}
            _ => return Err(self.error("\"choices\" is not an array")),
        }
        self.i += 1;
        self.ws();
        if self.peek() == Some(b']') {
            self.i += 1;
            return Ok(None);
        }
        if self.peek() != Some(b'{') {
            return Err(self.error("choices[0] is not an object"));
        }
        let mut text = JsonStr::default();
        let mut finish_reason = None;
        self.object(2, |p, key| {
            match (key, p.peek()) {
                ("text", Some(b'"')) => text = JsonStr { raw: p.string()? },
                ("text", Some(b'n')) => {
                    p.literal(b"null")?;
                    text = JsonStr::default();
                }
                ("text", _) => return Err(p.error("choices[0].text is not a string")),
                ("finish_reason", Some(b'"')) => finish_reason = Some(JsonStr { raw: p.string()? }),
                ("finish_reason", _) => {
                    finish_reason = None;
                    p.skip_value(3)?;
                }
                _ => p.skip_value(3)?,
            }
            Ok(())
        })?;
        loop {
            self.ws();
            match self.peek() {
                Some(b',') => {
                    self.i += 1;
                    self.skip_value(2)?;
                }
                Some(b']') => {
                    self.i += 1;
                    return Ok(Some((text, finish_reason)));
                }
                _ => return Err(self.error("expected ',' or ']' in an array")),
            }
        }
    }

    /// The `usage` member: `Some` when it is an object with at least one member (as Python's
    /// truthiness in vLLM's client has it), `None` when null or `{}`.
    fn usage(&mut self) -> Result<Option<Usage>, ProtoError> {
        match self.peek() {
            Some(b'n') => {
                self.literal(b"null")?;
                return Ok(None);
            }
            Some(b'{') => {}
            _ => return Err(self.error("\"usage\" is not an object")),
        }
        let mut usage = Usage::default();
        let mut members = 0;
        self.object(1, |p, key| {
            members += 1;
            match key {
                "prompt_tokens" => usage.prompt_tokens = p.count()?,
                "completion_tokens" => usage.completion_tokens = p.count()?,
                _ => p.skip_value(2)?,
            }
            Ok(())
        })?;
        Ok((members > 0).then_some(usage))
    }

    /// A token count: a non-negative integer or null.
    fn count(&mut self) -> Result<Option<u64>, ProtoError> {
        match self.peek() {
            Some(b'n') => {
                self.literal(b"null")?;
                Ok(None)
            }
            Some(b'-' | b'0'..=b'9') => {
                let start = self.i;
                let text = self.number()?;
                let value = text.iter().try_fold(0u64, |n, &b| {
                    if b.is_ascii_digit() {
                        n.checked_mul(10)?.checked_add(u64::from(b - b'0'))
                    } else {
                        None
                    }
                });
                match value {
                    Some(v) => Ok(Some(v)),
                    None => {
                        self.i = start;
                        Err(self.error("token count is not a non-negative integer"))
                    }
                }
            }
            _ => Err(self.error("token count is not a number")),
        }
    }

    /// The `error` member's extent, or `None` when it is null.
    fn error_span(&mut self) -> Result<Option<(usize, usize)>, ProtoError> {
        if self.peek() == Some(b'n') {
            self.literal(b"null")?;
            return Ok(None);
        }
        let start = self.i;
        self.skip_value(1)?;
        Ok(Some((start, self.i)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(data: &str) -> (String, Option<String>, Option<Usage>) {
        match decode_completion_event(data.as_bytes()) {
            Ok(CompletionEvent::Token {
                text,
                finish_reason,
                usage,
            }) => (
                text.unescaped().unwrap().into_owned(),
                finish_reason.map(|f| f.unescaped().unwrap().into_owned()),
                usage,
            ),
            other => panic!("{data}: {other:?}"),
        }
    }

    fn problem(data: &[u8]) -> &'static str {
        match decode_completion_event(data) {
            Err(ProtoError::Json { problem, .. }) => problem,
            other => panic!("{:?}: {other:?}", String::from_utf8_lossy(data)),
        }
    }

    #[test]
    fn vllm_token_chunks() {
        let d = r#"{"id":"cmpl-1","object":"text_completion","created":1,"model":"M","choices":[{"index":0,"text":" Hello","logprobs":null,"finish_reason":null,"stop_reason":null}],"usage":null}"#;
        assert_eq!(token(d), (" Hello".into(), None, None));
        let d = r#"{"choices":[{"index":0,"text":"!","finish_reason":"length"}],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}"#;
        let usage = Usage {
            prompt_tokens: Some(3),
            completion_tokens: Some(2),
        };
        assert_eq!(token(d), ("!".into(), Some("length".into()), Some(usage)));
    }

    #[test]
    fn empty_or_missing_text_still_counts() {
        assert_eq!(token(r#"{"choices":[{"text":""}]}"#).0, "");
        assert_eq!(token(r#"{"choices":[{"index":0}]}"#).0, "");
        assert_eq!(token(r#"{"choices":[{"text":null}, 5, {"x":[1]}]}"#).0, "");
    }

    #[test]
    fn escapes_and_unicode() {
        let d = r#"{"choices":[{"text":"h\u00e9llo \u4e16\u754c \ud83c\udf89\n\"q\" \\ \/ \t"}]}"#;
        assert_eq!(token(d).0, "héllo 世界 🎉\n\"q\" \\ / \t");
        let d = "{\"choices\":[{\"text\":\"héllo 世界 🎉\"}]}";
        match decode_completion_event(d.as_bytes()).unwrap() {
            CompletionEvent::Token { text, .. } => {
                assert!(!text.has_escapes());
                assert_eq!(text.raw(), "héllo 世界 🎉");
                assert!(matches!(text.unescaped().unwrap(), Cow::Borrowed(_)));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn usage_chunk_and_other() {
        let d = br#"{"id":"x","choices":[],"usage":{"prompt_tokens":1024,"completion_tokens":128,"total_tokens":1152}}"#;
        assert_eq!(
            decode_completion_event(d).unwrap(),
            CompletionEvent::Usage(Usage {
                prompt_tokens: Some(1024),
                completion_tokens: Some(128)
            })
        );
        let d = br#"{"usage":{"completion_tokens":null}}"#;
        assert_eq!(
            decode_completion_event(d).unwrap(),
            CompletionEvent::Usage(Usage::default())
        );
        for other in [
            &br#"{"choices":[],"usage":null}"#[..],
            br#"{"usage":{}}"#,
            b"{}",
            b"  ",
            b"",
        ] {
            assert_eq!(
                decode_completion_event(other).unwrap(),
                CompletionEvent::Other
            );
        }
    }

    #[test]
    fn done_marker() {
        assert_eq!(
            decode_completion_event(b"[DONE]").unwrap(),
            CompletionEvent::Done
        );
        assert_eq!(
            decode_completion_event(b" [DONE]\r\n").unwrap(),
            CompletionEvent::Done
        );
        assert_eq!(problem(b"[DONE"), "expected a JSON object");
    }

    #[test]
    fn error_events() {
        let d = br#"{"error":{"object":"error","message":"max_tokens is too large: \"9999\"","type":"BadRequestError","param":null,"code":400}}"#;
        assert_eq!(
            decode_completion_event(d).unwrap(),
            CompletionEvent::Error(
                r#"max_tokens is too large: "9999" (BadRequestError, code 400)"#.into()
            )
        );
        let d = br#"{"error":"engine dead \u2014 restart"}"#;
        assert_eq!(
            decode_completion_event(d).unwrap(),
            CompletionEvent::Error("engine dead — restart".into())
        );
        let d = br#"{"error":{"detail":"x"}}"#;
        assert_eq!(
            decode_completion_event(d).unwrap(),
            CompletionEvent::Error(r#"server error {"detail":"x"}"#.into())
        );
        assert_eq!(
            decode_completion_event(br#"{"error":null}"#).unwrap(),
            CompletionEvent::Other
        );
        // Tokens win over an error member, as in vLLM's client.
        assert!(matches!(
            decode_completion_event(br#"{"error":"x","choices":[{"text":"a"}]}"#).unwrap(),
            CompletionEvent::Token { .. }
        ));
    }

    #[test]
    fn duplicate_keys_last_wins() {
        let d = br#"{"choices":[{"text":"a"}],"choices":[]}"#;
        assert_eq!(decode_completion_event(d).unwrap(), CompletionEvent::Other);
        // A badly shaped member replaced by a later duplicate is no error (Python keeps the
        // last), but a syntax error anywhere still is.
        let d = br#"{"choices":"","choices":null,"usage":{"prompt_tokens":0}}"#;
        assert_eq!(
            decode_completion_event(d).unwrap(),
            CompletionEvent::Usage(Usage {
                prompt_tokens: Some(0),
                completion_tokens: None
            })
        );
        let d = br#"{"usage":{"completion_tokens":[]},"usage":{}}"#;
        assert_eq!(decode_completion_event(d).unwrap(), CompletionEvent::Other);
        let d = br#"{"usage":{"completion_tokens":[}},"usage":{}}"#;
        assert!(decode_completion_event(d).is_err());
        // A malformed usage beside choices is ignored, as vLLM never reads it there.
        let d = br#"{"choices":[{"text":"a"}],"usage":{"completion_tokens":-1}}"#;
        assert!(matches!(
            decode_completion_event(d).unwrap(),
            CompletionEvent::Token { usage: None, .. }
        ));
    }

    #[test]
    fn malformed_json_is_named() {
        assert_eq!(
            problem(b"{\"choices\":[{\"text\":\"a\"}]"),
            "expected ',' or '}' in an object"
        );
        assert_eq!(
            problem(b"{\"choices\":[{\"text\":\"a}]}"),
            "unterminated string"
        );
        assert_eq!(
            problem(b"{\"a\":1}x"),
            "trailing characters after the JSON object"
        );
        assert_eq!(problem(b"{'a':1}"), "expected a string key");
        assert_eq!(problem(b"{\"a\" 1}"), "expected ':' after an object key");
        assert_eq!(problem(b"{\"a\":01}"), "expected ',' or '}' in an object");
        assert_eq!(
            problem(b"{\"a\":1.}"),
            "invalid number (no digits after the decimal point)"
        );
        assert_eq!(
            problem(b"{\"a\":1e}"),
            "invalid number (no digits in the exponent)"
        );
        assert_eq!(problem(b"{\"a\":-}"), "invalid number");
        assert_eq!(
            problem(b"{\"a\":tru}"),
            "invalid literal (expected true, false or null)"
        );
        assert_eq!(problem(b"{\"a\":[1,]}"), "expected a JSON value");
        assert_eq!(problem(b"{\"a\":[1 2]}"), "expected ',' or ']' in an array");
        assert_eq!(
            problem(b"{\"a\":\"\x01\"}"),
            "control character inside a string"
        );
        assert_eq!(problem(b"{\"a\":\"\\x\"}"), "invalid escape in a string");
        assert_eq!(problem(b"{\"a\":\"\\u12\"}"), "invalid \\u escape");
        assert_eq!(
            problem(b"{\"a\":\"\\ud800\"}"),
            "unpaired surrogate in a \\u escape"
        );
        assert_eq!(
            problem(b"{\"a\":\"\\udc00\\ud800\"}"),
            "unpaired surrogate in a \\u escape"
        );
        assert_eq!(problem(b"{\"a\":\"\xff\"}"), "invalid UTF-8");
        assert_eq!(problem(b"[1]"), "expected a JSON object");
        assert_eq!(problem(b"{\"choices\":{}}"), "\"choices\" is not an array");
        assert_eq!(problem(b"{\"choices\":[1]}"), "choices[0] is not an object");
        assert_eq!(
            problem(b"{\"choices\":[{\"text\":1}]}"),
            "choices[0].text is not a string"
        );
        assert_eq!(problem(b"{\"usage\":[]}"), "\"usage\" is not an object");
        assert_eq!(
            problem(b"{\"usage\":{\"completion_tokens\":1.5}}"),
            "token count is not a non-negative integer"
        );
        assert_eq!(
            problem(b"{\"usage\":{\"completion_tokens\":99999999999999999999}}"),
            "token count is not a non-negative integer"
        );
        assert_eq!(
            problem(b"{\"usage\":{\"prompt_tokens\":\"3\"}}"),
            "token count is not a number"
        );
    }

    #[test]
    fn nesting_limit() {
        let ok = format!(
            "{{\"a\":{}{}}}",
            "[".repeat(MAX_DEPTH - 1),
            "]".repeat(MAX_DEPTH - 1)
        );
        assert_eq!(
            decode_completion_event(ok.as_bytes()).unwrap(),
            CompletionEvent::Other
        );
        assert!(serde_json::from_str::<serde_json::Value>(&ok).is_ok());
        let deep = format!(
            "{{\"a\":{}{}}}",
            "[".repeat(MAX_DEPTH),
            "]".repeat(MAX_DEPTH)
        );
        assert_eq!(problem(deep.as_bytes()), "JSON nested too deeply");
        assert!(serde_json::from_str::<serde_json::Value>(&deep).is_err());
        let hostile = format!("{{\"a\":{}", "[{\"b\":".repeat(100_000));
        assert_eq!(problem(hostile.as_bytes()), "JSON nested too deeply");
    }

    #[test]
    fn error_quotes_at_most_200_bytes() {
        let long = format!("{{\"choices\":[{{\"text\":\"{}", "x".repeat(1000));
        match decode_completion_event(long.as_bytes()) {
            Err(e @ ProtoError::Json { .. }) => {
                let msg = e.to_string();
                assert!(msg.contains("unterminated string"), "{msg}");
                assert!(msg.len() < 320, "{} bytes: {msg}", msg.len());
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn plain_run_end_finds_the_first_special_byte() {
        for len in 0..40 {
            for special in [b'"', b'\\', 0x00, 0x1f, 0x0a] {
                for at in 0..len {
                    let mut s = vec![b'a'; len];
                    // Bytes around the hit that must not be taken for one.
                    s.iter_mut()
                        .enumerate()
                        .for_each(|(i, b)| *b = [b'a', 0x20, 0xff, 0x80, b'!'][i % 5]);
                    s[at] = special;
                    if at + 1 < len {
                        s[at + 1] = b'"';
                    }
                    assert_eq!(
                        plain_run_end(&s, 0),
                        at,
                        "len {len} special {special} at {at}"
                    );
                }
                let plain: Vec<u8> = (0..len)
                    .map(|i| [b'a', 0x20, 0xff, 0x80, b'#'][i % 5])
                    .collect();
                assert_eq!(plain_run_end(&plain, 0), len);
            }
        }
    }

    #[test]
    fn unescape_standalone() {
        let mut s = String::from(">");
        unescape_into(br"a\u00e9\ud83d\ude00\nz", &mut s).unwrap();
        assert_eq!(s, ">aé😀\nz");
        for bad in [
            &br"\"[..],
            br"\u00",
            br"\ud83d",
            br"\ud83d\u0041",
            br"\q",
            b"\xc3",
        ] {
            assert!(unescape_into(bad, &mut String::new()).is_err(), "{bad:?}");
        }
    }

    /// Differential check against serde_json: whatever this decoder accepts, serde_json
    /// accepts and reads the same way under vLLM's rules; whatever serde_json reads cleanly
    /// under those rules, this decoder accepts too.
    mod against_serde_json {
        use super::super::*;
        use proptest::prelude::*;
        use serde_json::Value;

        #[derive(Debug, PartialEq)]
        enum Expect {
            Done,
            Token(String, Option<String>, Option<Usage>),
            Usage(Usage),
            Error,
            Other,
        }

        fn count(v: Option<&Value>) -> Result<Option<u64>, ()> {
            match v {
                None | Some(Value::Null) => Ok(None),
                Some(Value::Number(n)) => n.as_u64().map(Some).ok_or(()),
                Some(_) => Err(()),
            }
        }

        fn usage_of(v: Option<&Value>) -> Result<Option<Usage>, ()> {
            match v {
                None | Some(Value::Null) => Ok(None),
                Some(Value::Object(m)) if m.is_empty() => Ok(None),
                Some(Value::Object(m)) => Ok(Some(Usage {
                    prompt_tokens: count(m.get("prompt_tokens"))?,
                    completion_tokens: count(m.get("completion_tokens"))?,
                })),
                Some(_) => Err(()),
            }
        }

        /// vLLM's reading of an event, on serde_json's parse. `Err(())`: must be rejected.
        /// `None`: serde_json refuses it for a reason this decoder need not share.
        fn reference(data: &[u8]) -> Option<Result<Expect, ()>> {
            let t = data.trim_ascii();
            if t == b"[DONE]" {
                return Some(Ok(Expect::Done));
            }
            if t.is_empty() {
                return Some(Ok(Expect::Other));
            }
            let v: Value = match serde_json::from_slice(data) {
                Ok(v) => v,
                // Python reads 1e400 as inf; accepting it is fine.
                Err(e) if e.to_string().contains("out of range") => return None,
                Err(_) => return Some(Err(())),
            };
            let Value::Object(obj) = v else {
                return Some(Err(()));
            };
            let run = || -> Result<Expect, ()> {
                let usage = usage_of(obj.get("usage"));
                let choice = match obj.get("choices") {
                    None | Some(Value::Null) => None,
                    Some(Value::Array(a)) => match a.first() {
                        None => None,
                        Some(Value::Object(c)) => Some(c),
                        Some(_) => return Err(()),
                    },
                    Some(_) => return Err(()),
                };
                if let Some(c) = choice {
                    let text = match c.get("text") {
                        None | Some(Value::Null) => String::new(),
                        Some(Value::String(s)) => s.clone(),
                        Some(_) => return Err(()),
                    };
                    let finish = match c.get("finish_reason") {
                        Some(Value::String(s)) => Some(s.clone()),
                        _ => None,
                    };
                    return Ok(Expect::Token(text, finish, usage.unwrap_or(None)));
                }
                if let Some(u) = usage? {
                    return Ok(Expect::Usage(u));
                }
                match obj.get("error") {
                    None | Some(Value::Null) => Ok(Expect::Other),
                    Some(_) => Ok(Expect::Error),
                }
            };
            Some(run())
        }

        fn ours(data: &[u8]) -> Result<Expect, ()> {
            Ok(match decode_completion_event(data).map_err(|_| ())? {
                CompletionEvent::Done => Expect::Done,
                CompletionEvent::Token {
                    text,
                    finish_reason,
                    usage,
                } => Expect::Token(
                    text.unescaped().map_err(|_| ())?.into_owned(),
                    finish_reason.map(|f| f.unescaped().unwrap().into_owned()),
                    usage,
                ),
                CompletionEvent::Usage(u) => Expect::Usage(u),
                CompletionEvent::Error(_) => Expect::Error,
                CompletionEvent::Other => Expect::Other,
            })
        }

        fn json_string() -> impl Strategy<Value = String> {
            let piece = prop_oneof![
                "[a-z ]{0,6}",
                Just("é".to_owned()),
                Just("世界".to_owned()),
                Just("🎉".to_owned()),
                Just(r#"\n"#.to_owned()),
                Just(r#"\""#.to_owned()),
                Just(r#"\\"#.to_owned()),
                Just(r#"\u00e9"#.to_owned()),
                Just(r#"\ud83c\udf89"#.to_owned()),
                Just(r#"\/"#.to_owned()),
            ];
            prop::collection::vec(piece, 0..4).prop_map(|p| format!("\"{}\"", p.concat()))
        }

        fn json_value() -> impl Strategy<Value = String> {
            let leaf = prop_oneof![
                json_string(),
                any::<u32>().prop_map(|n| n.to_string()),
                any::<i32>().prop_map(|n| n.to_string()),
                (-1000.0f64..1000.0).prop_map(|f| format!("{f:e}")),
                Just("true".to_owned()),
                Just("false".to_owned()),
                Just("null".to_owned()),
            ];
            leaf.prop_recursive(4, 24, 4, |inner| {
                prop_oneof![
                    prop::collection::vec(inner.clone(), 0..4)
                        .prop_map(|v| format!("[ {} ]", v.join(" ,"))),
                    prop::collection::vec((json_string(), inner), 0..4).prop_map(|v| {
                        let m: Vec<String> =
                            v.into_iter().map(|(k, v)| format!("{k}:{v}")).collect();
                        format!("{{{}}}", m.join(","))
                    }),
                ]
            })
        }

        /// Objects shaped like stream events, with odd variants of each member.
        fn event() -> impl Strategy<Value = String> {
            let text = prop_oneof![json_string(), Just("null".to_owned()), json_value()];
            let choice = (
                text,
                prop_oneof![json_string(), Just("null".to_owned())],
                json_value(),
            )
                .prop_map(|(t, f, x)| {
                    format!(r#"{{"index":0,"text":{t},"finish_reason":{f},"x":{x}}}"#)
                });
            let choices = prop_oneof![
                prop::collection::vec(choice, 0..3).prop_map(|c| format!("[{}]", c.join(","))),
                Just("null".to_owned()),
                json_value(),
            ];
            let n = prop_oneof![
                any::<u32>().prop_map(|n| n.to_string()),
                Just("null".to_owned()),
                json_value()
            ];
            let usage = prop_oneof![
                (n.clone(), n).prop_map(|(p, c)| format!(
                    r#"{{"prompt_tokens":{p},"completion_tokens":{c},"total_tokens":1}}"#
                )),
                Just("{}".to_owned()),
                Just("null".to_owned()),
                json_value(),
            ];
            let error = prop_oneof![
                json_string().prop_map(|m| format!(r#"{{"message":{m},"type":"E","code":400}}"#)),
                json_value(),
            ];
            let member = prop_oneof![
                choices.prop_map(|v| format!(r#""choices":{v}"#)),
                usage.prop_map(|v| format!(r#""usage":{v}"#)),
                error.prop_map(|v| format!(r#""error":{v}"#)),
                (json_string(), json_value()).prop_map(|(k, v)| format!("{k}:{v}")),
            ];
            prop::collection::vec(member, 0..5).prop_map(|m| format!(" {{{}}}\n", m.join(",")))
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(2000))]

            #[test]
            fn valid_events_agree(data in event()) {
                let want = reference(data.as_bytes()).expect("generated JSON is in range");
                prop_assert_eq!(ours(data.as_bytes()), want, "{}", data);
            }

            #[test]
            fn mutated_events_agree(
                data in event(),
                edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0..3u8), 1..4),
            ) {
                let mut bytes = data.into_bytes();
                for (at, byte, op) in edits {
                    if bytes.is_empty() { break; }
                    let i = at.index(bytes.len());
                    match op {
                        0 => bytes[i] = byte,
                        1 => bytes.insert(i, byte),
                        _ => { bytes.remove(i); }
                    }
                }
                let got = ours(&bytes);
                if let Some(want) = reference(&bytes) {
                    prop_assert_eq!(got, want, "{:?}", String::from_utf8_lossy(&bytes));
                }
            }
        }
    }
}

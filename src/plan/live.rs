//! Requests whose bytes depend on the run: the later turns of a multi-turn conversation carry
//! the replies the server gave to the earlier turns (SGLang's multi-turn semantics), so they
//! cannot be written in full before the clock starts.
//!
//! Everything else still is: the plan keeps such a request as its fixed pieces — the HTTP head
//! up to the `Content-Length` value, the rest of the head, and the body cut where each earlier
//! reply goes — and the engine joins them with the replies' text when the turn is due. The
//! replies are spliced in as the server sent them inside its JSON strings (still escaped), so
//! joining is copying bytes: no JSON is parsed or formatted on the timed path.

use anyhow::{ensure, Context};

/// The fixed pieces of one later turn.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LiveWire {
    /// The head up to and including `Content-Length: `.
    head: Box<[u8]>,
    /// `\r\n`, the remaining headers and the blank line.
    head_rest: Box<[u8]>,
    /// The body cut at each earlier reply: reply `i` goes between piece `i` and `i + 1`.
    pieces: Vec<Box<[u8]>>,
}

/// Stands for reply `i` in the assistant messages while the body is built; control
/// characters keep it apart from any text a dataset could hold.
pub fn marker(i: usize) -> String {
    format!("\u{1}servebench-reply-{i}\u{1}")
}

impl LiveWire {
    /// Cut a complete request (`wire`, built with [`marker`]`(i)` as the content of the `i`-th
    /// of `replies` assistant messages) into its fixed pieces.
    pub fn from_marked(wire: &[u8], replies: usize) -> anyhow::Result<LiveWire> {
        let at = find(wire, b"\r\n\r\n", 0).context("the request has no end of head")?;
        let (head_all, body) = (&wire[..at + 4], &wire[at + 4..]);
        const LEN: &[u8] = b"Content-Length: ";
        let len_at = find(head_all, LEN, 0).context("the request head has no Content-Length")?;
        let digits_end = len_at
            + LEN.len()
            + head_all[len_at + LEN.len()..]
                .iter()
                .take_while(|b| b.is_ascii_digit())
                .count();

        let mut pieces = Vec::with_capacity(replies + 1);
        let mut from = 0;
        for i in 0..replies {
            // serde_json writes U+0001 as \u0001; the quotes around it stay in the pieces.
            let needle = serde_json::to_string(&marker(i))?;
            let needle = &needle.as_bytes()[1..needle.len() - 1];
            let hit = find(body, needle, from)
                .with_context(|| format!("reply {i} has no place in the request body"))?;
            ensure!(
                find(body, needle, hit + needle.len()).is_none(),
                "reply {i} has two places in the request body (does the prompt hold the \
                 marker text?)"
            );
            pieces.push(body[from..hit].into());
            from = hit + needle.len();
        }
        pieces.push(body[from..].into());
        Ok(LiveWire {
            head: head_all[..len_at + LEN.len()].into(),
            head_rest: head_all[digits_end..].into(),
            pieces,
        })
    }

    /// How many earlier replies this turn carries.
    pub fn replies(&self) -> usize {
        self.pieces.len() - 1
    }

    /// The complete request with `replies` (escaped JSON string contents, in turn order)
    /// spliced in, written into `out` (cleared first, so its capacity is reused).
    pub fn assemble<'r>(&self, replies: impl Iterator<Item = &'r [u8]> + Clone, out: &mut Vec<u8>) {
        let body_len: usize = self.pieces.iter().map(|p| p.len()).sum::<usize>()
            + replies.clone().map(<[u8]>::len).sum::<usize>();
        let digits = body_len.to_string();
        out.clear();
        out.reserve(self.head.len() + self.head_rest.len() + 20 + body_len);
        out.extend_from_slice(&self.head);
        out.extend_from_slice(digits.as_bytes());
        out.extend_from_slice(&self.head_rest);
        out.extend_from_slice(&self.pieces[0]);
        for (reply, piece) in replies.zip(&self.pieces[1..]) {
            out.extend_from_slice(reply);
            out.extend_from_slice(piece);
        }
    }
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    memchr::memmem::find(hay.get(from..)?, needle).map(|i| i + from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::frame_request;
    use serde_json::{json, Value};

    fn marked_request() -> Vec<u8> {
        let body = json!({
            "model": "m",
            "messages": [
                {"role": "user", "content": "first"},
                {"role": "assistant", "content": marker(0)},
                {"role": "user", "content": "second"},
                {"role": "assistant", "content": marker(1)},
                {"role": "user", "content": "third"},
            ],
            "max_tokens": 5,
        });
        let headers = [("x-request-id".to_string(), "bench-7".to_string())];
        frame_request(
            "POST",
            "/v1/chat/completions",
            "h:1",
            &headers,
            body.to_string().as_bytes(),
        )
        .unwrap()
    }

    #[test]
    fn replies_are_spliced_as_escaped_json_with_the_right_length() {
        let live = LiveWire::from_marked(&marked_request(), 2).unwrap();
        assert_eq!(live.replies(), 2);
        let replies: [&[u8]; 2] = [br#"say \"hi\"\n"#, "é😀".as_bytes()];
        let mut out = Vec::new();
        live.assemble(replies.iter().copied(), &mut out);
        let text = String::from_utf8(out.clone()).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("POST /v1/chat/completions HTTP/1.1\r\n"));
        assert!(head.contains("x-request-id: bench-7"));
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("Content-Length: "))
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(len, body.len());
        let v: Value = serde_json::from_str(body).unwrap();
        assert_eq!(v["messages"][1]["content"], "say \"hi\"\n");
        assert_eq!(v["messages"][3]["content"], "é😀");
        assert_eq!(v["messages"][4]["content"], "third");

        // Reusing the buffer for shorter replies leaves nothing behind.
        live.assemble([&b""[..], &b"x"[..]].into_iter(), &mut out);
        let text = String::from_utf8(out).unwrap();
        let body = text.split_once("\r\n\r\n").unwrap().1;
        let v: Value = serde_json::from_str(body).unwrap();
        assert_eq!(v["messages"][1]["content"], "");
        assert_eq!(v["messages"][3]["content"], "x");
    }

    #[test]
    fn a_missing_or_repeated_marker_is_an_error() {
        let wire = marked_request();
        let e = LiveWire::from_marked(&wire, 3).unwrap_err().to_string();
        assert!(e.contains("reply 2 has no place"), "{e}");

        let escaped = serde_json::to_string(&marker(0)).unwrap();
        let twice = String::from_utf8(wire)
            .unwrap()
            .replace("first", &escaped[1..escaped.len() - 1]);
        let e = LiveWire::from_marked(twice.as_bytes(), 2)
            .unwrap_err()
            .to_string();
        assert!(e.contains("two places"), "{e}");
    }
}

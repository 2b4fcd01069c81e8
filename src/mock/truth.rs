//! `--truth-log`: the server's own CLOCK_MONOTONIC times of every completed generation reply, one
//! JSON line each, so that a client's TTFT and ITL can be checked against what really happened.
//!
//! Line format (keys in this order; times are CLOCK_MONOTONIC nanoseconds):
//! `{"request_id":"<x-request-id>"|null,"stream":bool,"read_ns":N,"head_ns":N,"event_ns":[N,...],"end_ns":N}`
//! — plus, only for replies whose events may carry several tokens (SGLang with
//! `--sglang-tokens-per-chunk` above 1), a last key `"event_tokens":[T,...]`: how many tokens
//! each entry of `event_ns` carried.
//!
//! The shards only copy numbers: a connection stamps its reply into reused [`Stamps`], the
//! shard appends them to a [`Batch`], and full batches go over a channel to one writer thread
//! that formats and writes them. Nothing is formatted or written on a shard's thread.

use std::cell::RefCell;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, Sender};
use std::thread::JoinHandle;

use anyhow::Context;

use crate::clock;

/// Records per batch handed to the writer.
const BATCH_RECORDS: usize = 256;

/// The times of the reply being sent on one connection, reused from request to request.
#[derive(Default)]
pub(super) struct Stamps {
    /// Streamed: the response head was written. Unstreamed: the whole reply was.
    pub head_ns: u64,
    /// Each token event was written (streamed replies only).
    pub event_ns: Vec<u64>,
    /// The last byte of the reply was written.
    pub end_ns: u64,
    /// Whether this reply's events may carry several tokens each.
    pub grouped: bool,
    /// Tokens carried by each event, kept only when `grouped`.
    pub event_tokens: Vec<u32>,
}

impl Stamps {
    /// Starts a new reply; `grouped`: its events may carry several tokens each.
    pub fn begin(&mut self, grouped: bool) {
        self.head_ns = 0;
        self.event_ns.clear();
        self.end_ns = 0;
        self.grouped = grouped;
        self.event_tokens.clear();
    }

    pub fn head(&mut self) {
        self.head_ns = clock::mono_ns();
    }

    /// An event carrying `tokens` tokens was written.
    pub fn event(&mut self, tokens: u32) {
        self.event_ns.push(clock::mono_ns());
        if self.grouped {
            self.event_tokens.push(tokens);
        }
    }

    pub fn end(&mut self) {
        self.end_ns = clock::mono_ns();
    }

    /// An unstreamed reply was written: head and end are that one moment.
    pub fn whole(&mut self) {
        self.end();
        self.head_ns = self.end_ns;
    }
}

/// One logged request; its id and event times live in the batch's shared buffers.
struct Record {
    request_id: Option<Range<usize>>,
    stream: bool,
    read_ns: u64,
    head_ns: u64,
    event_ns: Range<usize>,
    end_ns: u64,
    event_tokens: Option<Range<usize>>,
}

/// Records of one shard on their way to the writer.
#[derive(Default)]
pub(super) struct Batch {
    records: Vec<Record>,
    /// Every record's request id, back to back.
    ids: Vec<u8>,
    /// Every record's event times, back to back.
    event_ns: Vec<u64>,
    /// The token counts of grouped records' events, back to back.
    event_tokens: Vec<u32>,
}

impl Batch {
    /// An empty batch sized like `previous`, so that filling it rarely reallocates.
    fn sized_like(previous: &Batch) -> Batch {
        Batch {
            records: Vec::with_capacity(BATCH_RECORDS),
            ids: Vec::with_capacity(previous.ids.len()),
            event_ns: Vec::with_capacity(previous.event_ns.len()),
            event_tokens: Vec::with_capacity(previous.event_tokens.len()),
        }
    }

    fn push(&mut self, request_id: Option<&[u8]>, stream: bool, read_ns: u64, stamps: &Stamps) {
        let request_id = request_id.map(|id| {
            let start = self.ids.len();
            self.ids.extend_from_slice(id);
            start..self.ids.len()
        });
        let start = self.event_ns.len();
        self.event_ns.extend_from_slice(&stamps.event_ns);
        let event_tokens = stamps.grouped.then(|| {
            let start = self.event_tokens.len();
            self.event_tokens.extend_from_slice(&stamps.event_tokens);
            start..self.event_tokens.len()
        });
        self.records.push(Record {
            request_id,
            stream,
            read_ns,
            head_ns: stamps.head_ns,
            event_ns: start..self.event_ns.len(),
            end_ns: stamps.end_ns,
            event_tokens,
        });
    }

    /// Appends each record as one JSON line.
    fn write_lines(&self, w: &mut impl Write) -> io::Result<()> {
        for r in &self.records {
            w.write_all(b"{\"request_id\":")?;
            match &r.request_id {
                Some(range) => {
                    let id = String::from_utf8_lossy(&self.ids[range.clone()]);
                    serde_json::to_writer(&mut *w, &id)?;
                }
                None => w.write_all(b"null")?,
            }
            write!(
                w,
                ",\"stream\":{},\"read_ns\":{},\"head_ns\":{},\"event_ns\":[",
                r.stream, r.read_ns, r.head_ns
            )?;
            write_list(w, &self.event_ns[r.event_ns.clone()])?;
            write!(w, "],\"end_ns\":{}", r.end_ns)?;
            if let Some(range) = &r.event_tokens {
                w.write_all(b",\"event_tokens\":[")?;
                write_list(w, &self.event_tokens[range.clone()])?;
                w.write_all(b"]")?;
            }
            w.write_all(b"}\n")?;
        }
        Ok(())
    }
}

/// Writes `items` comma-separated.
fn write_list(w: &mut impl Write, items: &[impl std::fmt::Display]) -> io::Result<()> {
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            w.write_all(b",")?;
        }
        write!(w, "{item}")?;
    }
    Ok(())
}

/// What the writer thread receives.
pub(super) enum ToWriter {
    Batch(Batch),
    /// Every shard has ended (and sent its last batch): flush and stop.
    Close,
}

/// One shard's end of the log.
pub(super) struct ShardLog {
    batch: RefCell<Batch>,
    /// Taken when the shard ends, so that no task the executor leaks can keep it.
    to_writer: RefCell<Option<Sender<ToWriter>>>,
}

impl ShardLog {
    pub fn new(to_writer: Sender<ToWriter>) -> ShardLog {
        ShardLog {
            batch: RefCell::new(Batch::sized_like(&Batch::default())),
            to_writer: RefCell::new(Some(to_writer)),
        }
    }

    /// Logs a completed reply (sends the batch once it is full).
    pub fn push(&self, request_id: Option<&[u8]>, stream: bool, read_ns: u64, stamps: &Stamps) {
        let mut batch = self.batch.borrow_mut();
        batch.push(request_id, stream, read_ns, stamps);
        if batch.records.len() >= BATCH_RECORDS {
            let next = Batch::sized_like(&batch);
            let full = std::mem::replace(&mut *batch, next);
            self.send(full);
        }
    }

    /// Sends what is batched and lets go of the channel; called once as the shard ends.
    pub fn close(&self) {
        let last = std::mem::take(&mut *self.batch.borrow_mut());
        if !last.records.is_empty() {
            self.send(last);
        }
        self.to_writer.borrow_mut().take();
    }

    fn send(&self, batch: Batch) {
        // A writer that has failed has said why already; the records are dropped.
        if let Some(tx) = &*self.to_writer.borrow() {
            let _ = tx.send(ToWriter::Batch(batch));
        }
    }
}

/// The writer thread and the handle's own sender (for [`ToWriter::Close`]).
pub(super) struct Writer {
    path: PathBuf,
    to_writer: Sender<ToWriter>,
    join: JoinHandle<io::Result<u64>>,
}

impl Writer {
    /// Creates (truncates) `path` and starts the thread that writes it, confined to the
    /// mock's own CPUs: formatting tens of thousands of records a second must never preempt a
    /// client that shares the host (its timestamps are what the log is compared with).
    pub fn start(path: &Path, cpus: &[usize]) -> anyhow::Result<Writer> {
        let file = File::create(path)
            .with_context(|| format!("cannot create --truth-log {}", path.display()))?;
        let (to_writer, from_shards) = mpsc::channel();
        let join = std::thread::Builder::new()
            .name("mock-truth-log".into())
            .spawn({
                let cpus = cpus.to_vec();
                move || {
                    crate::engine::placement::confine_current_thread(&cpus);
                    write_batches(from_shards, file)
                }
            })
            .context("cannot start the truth log's writer thread")?;
        Ok(Writer {
            path: path.to_path_buf(),
            to_writer,
            join,
        })
    }

    pub fn sender(&self) -> Sender<ToWriter> {
        self.to_writer.clone()
    }

    /// Call once every shard has ended: writes what is queued, flushes, and returns the
    /// number of lines written.
    pub fn finish(self) -> anyhow::Result<u64> {
        let _ = self.to_writer.send(ToWriter::Close);
        let path = self.path.display();
        match self.join.join() {
            Ok(Ok(lines)) => Ok(lines),
            Ok(Err(e)) => Err(anyhow::anyhow!("cannot write --truth-log {path}: {e}")),
            Err(_) => Err(anyhow::anyhow!("the writer of --truth-log {path} panicked")),
        }
    }
}

fn write_batches(from_shards: Receiver<ToWriter>, file: File) -> io::Result<u64> {
    let mut w = BufWriter::with_capacity(1 << 20, file);
    let mut lines = 0u64;
    for message in from_shards {
        match message {
            ToWriter::Batch(batch) => {
                batch.write_lines(&mut w)?;
                lines += batch.records.len() as u64;
            }
            ToWriter::Close => break,
        }
    }
    w.flush()?;
    Ok(lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stamps(head_ns: u64, event_ns: &[u64], end_ns: u64) -> Stamps {
        Stamps {
            head_ns,
            event_ns: event_ns.to_vec(),
            end_ns,
            ..Stamps::default()
        }
    }

    #[test]
    fn lines_have_the_agreed_format() {
        let mut batch = Batch::default();
        batch.push(Some(b"req-1"), true, 10, &stamps(11, &[12, 13, 14], 15));
        batch.push(None, false, 20, &stamps(21, &[], 21));
        batch.push(Some(b"a\"b\\c\n\xff"), true, 30, &stamps(31, &[32], 33));
        let mut grouped = Stamps::default();
        grouped.begin(true);
        grouped.head_ns = 41;
        grouped.event(4);
        grouped.event(1);
        grouped.event_ns = vec![42, 43];
        grouped.end_ns = 44;
        batch.push(None, true, 40, &grouped);
        let mut out = Vec::new();
        batch.write_lines(&mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines,
            [
                r#"{"request_id":"req-1","stream":true,"read_ns":10,"head_ns":11,"event_ns":[12,13,14],"end_ns":15}"#,
                r#"{"request_id":null,"stream":false,"read_ns":20,"head_ns":21,"event_ns":[],"end_ns":21}"#,
                r#"{"request_id":"a\"b\\c\n�","stream":true,"read_ns":30,"head_ns":31,"event_ns":[32],"end_ns":33}"#,
                r#"{"request_id":null,"stream":true,"read_ns":40,"head_ns":41,"event_ns":[42,43],"end_ns":44,"event_tokens":[4,1]}"#,
            ]
        );
        assert!(text.ends_with('\n'));
        for line in lines {
            serde_json::from_str::<serde_json::Value>(line).unwrap();
        }
    }

    #[test]
    fn full_batches_reach_the_writer_and_close_flushes_the_rest() {
        let path = std::env::temp_dir().join(format!("truth-unit-{}.jsonl", std::process::id()));
        let writer = Writer::start(&path, &[0]).unwrap();
        let log = ShardLog::new(writer.sender());
        let n = BATCH_RECORDS as u64 * 2 + 3;
        for i in 0..n {
            let id = i.to_string();
            log.push(Some(id.as_bytes()), true, i, &stamps(i, &[i, i + 1], i + 2));
        }
        log.close();
        assert_eq!(writer.finish().unwrap(), n);
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        let ids: Vec<u64> = text
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                v["request_id"].as_str().unwrap().parse().unwrap()
            })
            .collect();
        assert_eq!(ids, (0..n).collect::<Vec<_>>());
    }

    #[test]
    fn unwritable_path_is_named() {
        let path = Path::new("/nonexistent-dir/truth.jsonl");
        let e = format!("{:#}", Writer::start(path, &[0]).err().unwrap());
        assert!(e.contains("/nonexistent-dir/truth.jsonl"), "{e}");
    }
}

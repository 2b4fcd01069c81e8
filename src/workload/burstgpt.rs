//! `burstgpt` (vLLM's `BurstGPTDataset`): the BurstGPT trace as a CSV file with the header
//! `Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type`.
//!
//! vLLM keeps the rows whose `Model` is `GPT-4` and whose `Response tokens` is above zero,
//! draws `--num-prompts` of them with pandas' `sample(random_state=seed)` (with replacement
//! when there are too few), and builds request `i`'s prompt by decoding the ids
//! `(i + j) % vocab_size` for `j < Request tokens`; it asks for `Response tokens` tokens back.
//! Columns are found by name here (vLLM takes them by position).
//!
//! Departures, on purpose: the ids cycle through the allowed (non-special) ids and go through
//! the decode → re-encode → adjust loop, so `prompt_len` is `Request tokens` whenever the
//! tokenizer allows (vLLM reports `Request tokens` whatever the text re-encodes to); the draw
//! is our own seeded one, not pandas'; `--no-oversample` is honoured (vLLM ignores it here).
//! `--burstgpt-replay-timestamps` (ours) keeps the file's order, takes the first
//! `--num-prompts` kept rows and sets each sample's `timestamp_s` to its `Timestamp` minus the
//! first kept row's; without it no timestamps are set, as vLLM does not replay them.

use std::borrow::Cow;

use anyhow::{anyhow, bail};
use rand::seq::SliceRandom;
use rand::Rng;

use super::prefix_repetition::{fit_after, MAX_PROMPT_TOKENS};
use super::{source, Ctx, DatasetArgs, Prompt, Sample};
use crate::plan::build_parallel;
use crate::plan::random::allowed_ids;
use crate::plan::seeded::{self, Stream};
use crate::tokenizer::Tokenizer;

const NAME: &str = "burstgpt";

/// One kept row of the trace.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Row {
    timestamp: Option<f64>,
    request_tokens: u64,
    response_tokens: u64,
}

pub fn load(args: &DatasetArgs, ctx: &Ctx, tok: &Tokenizer) -> anyhow::Result<Vec<Sample>> {
    let path = args.path_for(
        NAME,
        "the BurstGPT CSV file (columns Timestamp, Model, Request tokens, Response tokens)",
    )?;
    let text = source::read_text(path, NAME)?;
    let rows = read_rows(path, &text, args.burstgpt_replay_timestamps)?;
    let chosen = choose(&rows, ctx, args);

    let first_ts = rows[0].timestamp;
    let allowed = allowed_ids(tok)?;
    build_parallel(chosen.len(), |i| {
        let row = chosen[i];
        let target = row.request_tokens as usize;
        let n = allowed.len();
        let ids = (0..target).map(|j| allowed[(i % n + j % n) % n]).collect();
        let mut rng = seeded::rng(ctx.seed, Stream::Sample, i as u64);
        let fitted = fit_after(tok, "", ids, target, &mut rng, &allowed)?;
        let timestamp_s = match (args.burstgpt_replay_timestamps, row.timestamp, first_ts) {
            (true, Some(t), Some(t0)) => Some((t - t0).max(0.0)),
            _ => None,
        };
        Ok(Sample {
            prompt: Prompt::Text(fitted.text),
            prompt_len: fitted.ids.len(),
            token_ids: Some(fitted.ids),
            mismatch: fitted.mismatch,
            timestamp_s,
            ..Sample::text(String::new(), 0, row.response_tokens as usize)
        })
    })
}

/// The rows requests are built from, in request order.
fn choose(rows: &[Row], ctx: &Ctx, args: &DatasetArgs) -> Vec<Row> {
    let n = ctx.num_prompts;
    let have = rows.len();
    if args.burstgpt_replay_timestamps {
        if have < n {
            eprintln!(
                "WARNING: --dataset-name burstgpt: --burstgpt-replay-timestamps keeps the \
                 file's {have} usable rows, fewer than the {n} requests asked for"
            );
        }
        return rows[..have.min(n)].to_vec();
    }
    let mut rng = seeded::rng(ctx.seed, Stream::Shuffle, 0);
    if n <= have || args.no_oversample {
        if n > have {
            eprintln!(
                "WARNING: --dataset-name burstgpt: only {have} usable rows for {n} requests \
                 (--no-oversample)"
            );
        }
        let mut order: Vec<usize> = (0..have).collect();
        order.shuffle(&mut rng);
        order.truncate(n);
        order.into_iter().map(|k| rows[k]).collect()
    } else {
        (0..n).map(|_| rows[rng.gen_range(0..have)]).collect()
    }
}

/// The GPT-4 rows with a response, in file order; every row is checked.
fn read_rows(path: &str, text: &str, need_timestamps: bool) -> anyhow::Result<Vec<Row>> {
    let mut records = Records::new(text);
    let header = match records.next() {
        Some(r) => r.map_err(|e| anyhow!("{path}:{e}"))?.1,
        None => bail!("--dataset-path {path}: the file is empty (--dataset-name {NAME})"),
    };
    let shown = header.join(",");
    let column = |name: &str| -> anyhow::Result<usize> {
        header.iter().position(|h| h.trim() == name).ok_or_else(|| {
            anyhow!(
                "{path}: column \"{name}\" is missing; the header is: {shown} (BurstGPT files \
                 have Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type)"
            )
        })
    };
    let model = column("Model")?;
    let request = column("Request tokens")?;
    let response = column("Response tokens")?;
    let timestamp = if need_timestamps {
        Some(column("Timestamp")?)
    } else {
        None
    };

    let mut rows = Vec::new();
    for record in records {
        let (line, fields) = record.map_err(|e| anyhow!("{path}:{e}"))?;
        if fields.len() != header.len() {
            bail!(
                "{path}:{line}: {} fields, but the header has {}",
                fields.len(),
                header.len()
            );
        }
        let cell = |col: usize, what: &str| CellError {
            path,
            line,
            column: &header[col],
            value: &fields[col],
            what: what.to_string(),
        };
        let response_tokens = parse_int(&fields[response])
            .ok_or_else(|| cell(response, "an integer").into_error())?;
        if fields[model] != "GPT-4" || response_tokens <= 0 {
            continue;
        }
        let request_tokens = parse_int(&fields[request])
            .filter(|&v| (0..=MAX_PROMPT_TOKENS as i64).contains(&v))
            .ok_or_else(|| {
                cell(request, &format!("an integer in 0..={MAX_PROMPT_TOKENS}")).into_error()
            })?;
        let ts = match timestamp {
            Some(col) => Some(
                fields[col]
                    .trim()
                    .parse::<f64>()
                    .ok()
                    .filter(|t| t.is_finite())
                    .ok_or_else(|| cell(col, "a number (seconds)").into_error())?,
            ),
            None => None,
        };
        rows.push(Row {
            timestamp: ts,
            request_tokens: request_tokens as u64,
            response_tokens: response_tokens as u64,
        });
    }
    if rows.is_empty() {
        bail!(
            "--dataset-path {path}: no row has Model \"GPT-4\" and Response tokens above 0 \
             (vLLM's burstgpt keeps only those)"
        );
    }
    Ok(rows)
}

struct CellError<'a> {
    path: &'a str,
    line: usize,
    column: &'a str,
    value: &'a str,
    what: String,
}

impl CellError<'_> {
    fn into_error(self) -> anyhow::Error {
        anyhow!(
            "{}:{}: column \"{}\": {:?} is not {}",
            self.path,
            self.line,
            self.column,
            self.value,
            self.what
        )
    }
}

/// An integer as pandas reads one: `12`, or an integral float such as `12.0`.
fn parse_int(s: &str) -> Option<i64> {
    let s = s.trim();
    s.parse::<i64>().ok().or_else(|| {
        s.parse::<f64>()
            .ok()
            .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15)
            .map(|f| f as i64)
    })
}

/// RFC 4180 records: comma-separated fields, `"quoted"` fields that may hold commas, line
/// breaks and `""` for a quote; CRLF or LF line ends; blank lines skipped. Each record comes
/// with the line it starts on; an unclosed quote is an error naming that line.
struct Records<'t> {
    text: &'t str,
    pos: usize,
    line: usize,
}

impl<'t> Records<'t> {
    fn new(text: &'t str) -> Records<'t> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        Records {
            text,
            pos: 0,
            line: 1,
        }
    }

    /// One field starting at `self.pos`; leaves `pos` on the delimiter after it.
    fn field(&mut self, start_line: usize) -> Result<Cow<'t, str>, String> {
        let bytes = self.text.as_bytes();
        if bytes.get(self.pos) != Some(&b'"') {
            let end = self.text[self.pos..]
                .find([',', '\n', '\r'])
                .map_or(self.text.len(), |k| self.pos + k);
            let f = &self.text[self.pos..end];
            self.pos = end;
            return Ok(Cow::Borrowed(f));
        }
        self.pos += 1;
        let mut out = String::new();
        loop {
            let rest = &self.text[self.pos..];
            let Some(k) = rest.find('"') else {
                return Err(format!("{start_line}: a quoted field is never closed"));
            };
            out.push_str(&rest[..k]);
            self.line += rest[..k].matches('\n').count();
            self.pos += k + 1;
            if bytes.get(self.pos) == Some(&b'"') {
                out.push('"');
                self.pos += 1;
            } else {
                break;
            }
        }
        match bytes.get(self.pos) {
            None | Some(b',' | b'\n' | b'\r') => Ok(Cow::Owned(out)),
            Some(_) => Err(format!(
                "{}: text after a closing quote (a quote inside a field must be doubled)",
                self.line
            )),
        }
    }
}

impl<'t> Iterator for Records<'t> {
    type Item = Result<(usize, Vec<Cow<'t, str>>), String>;

    fn next(&mut self) -> Option<Self::Item> {
        let bytes = self.text.as_bytes();
        // Blank lines between records are not records.
        while let Some(&b) = bytes.get(self.pos) {
            match b {
                b'\n' => {
                    self.line += 1;
                    self.pos += 1;
                }
                b'\r' => self.pos += 1,
                _ => break,
            }
        }
        if self.pos >= bytes.len() {
            return None;
        }
        let start_line = self.line;
        let mut fields = Vec::new();
        loop {
            match self.field(start_line) {
                Ok(f) => fields.push(f),
                Err(e) => {
                    self.pos = bytes.len();
                    return Some(Err(e));
                }
            }
            match bytes.get(self.pos) {
                Some(b',') => self.pos += 1,
                Some(b'\r') => {
                    self.pos += 1;
                    if bytes.get(self.pos) == Some(&b'\n') {
                        self.pos += 1;
                    }
                    self.line += 1;
                    break;
                }
                Some(b'\n') => {
                    self.pos += 1;
                    self.line += 1;
                    break;
                }
                _ => break,
            }
        }
        Some(Ok((start_line, fields)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Vec<(usize, Vec<String>)>, String> {
        Records::new(text)
            .map(|r| r.map(|(l, f)| (l, f.into_iter().map(Cow::into_owned).collect())))
            .collect()
    }

    #[test]
    fn csv_handles_quotes_crlf_and_blank_lines() {
        let recs = parse("a,b,c\r\n1,\"x, \"\"y\"\"\",3\r\n\r\n\"multi\nline\",,z\n4,5,6").unwrap();
        assert_eq!(recs.len(), 4);
        assert_eq!(
            recs[1],
            (2, vec!["1".into(), "x, \"y\"".into(), "3".into()])
        );
        assert_eq!(
            recs[2],
            (4, vec!["multi\nline".into(), "".into(), "z".into()])
        );
        assert_eq!(recs[3], (6, vec!["4".into(), "5".into(), "6".into()]));
        assert_eq!(parse("a,\n").unwrap()[0].1, vec!["a", ""]);
        let e = parse("a,b\n1,\"open\n2,3\n").unwrap_err();
        assert!(e.starts_with("2:"), "{e}");
        let e = parse("a,b\n\"x\"y,2\n").unwrap_err();
        assert!(e.contains("closing quote"), "{e}");
        assert!(parse("\u{feff}h\n1\n").unwrap()[0].1 == vec!["h"]);
    }

    #[test]
    fn integers_as_pandas_reads_them() {
        assert_eq!(parse_int(" 12 "), Some(12));
        assert_eq!(parse_int("12.0"), Some(12));
        assert_eq!(parse_int("-3"), Some(-3));
        assert_eq!(parse_int("1.5"), None);
        assert_eq!(parse_int("x"), None);
        assert_eq!(parse_int(""), None);
    }

    #[test]
    fn rows_filter_gpt4_with_responses() {
        let text = "Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type\n\
                    0.5,ChatGPT,10,5,15,Conversation log\n\
                    1.5,GPT-4,20,0,20,Conversation log\n\
                    2.5,GPT-4,30,7,37,API log\n\
                    4.0,GPT-4,40,9,49,\"API log, retried\"\n";
        let rows = read_rows("t.csv", text, true).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].request_tokens, 30);
        assert_eq!(rows[1].response_tokens, 9);
        assert_eq!(rows[1].timestamp, Some(4.0));
        let e = read_rows("t.csv", "Model,Request tokens\nGPT-4,3\n", false).unwrap_err();
        let e = e.to_string();
        assert!(
            e.contains("\"Response tokens\" is missing") && e.contains("Model,Request tokens"),
            "{e}"
        );
        let bad = "Model,Request tokens,Response tokens\nGPT-4,3,4\nGPT-4,three,4\n";
        let e = read_rows("t.csv", bad, false).unwrap_err().to_string();
        assert!(
            e.contains("t.csv:3:") && e.contains("\"Request tokens\"") && e.contains("three"),
            "{e}"
        );
        let short = "Model,Request tokens,Response tokens\nGPT-4,3\n";
        let e = read_rows("t.csv", short, false).unwrap_err().to_string();
        assert!(e.contains("t.csv:2:") && e.contains("2 fields"), "{e}");
    }
}

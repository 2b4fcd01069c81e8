//! Trace replay: `timed_trace` (vLLM's `TimedTrace`) and `mooncake` (SGLang's Mooncake
//! trace). Both read JSONL rows `{timestamp, input_length, output_length, hash_ids}` where each
//! hash id names a block of prompt tokens: rows that share leading hash ids share a prompt
//! prefix, which is what a prefix cache sees. Rows keep the file's order (a trace is never
//! shuffled) and `--num-prompts` takes the first rows (never oversampled; too few rows is a
//! warning).
//!
//! A hash id's block is a run of random allowed (non-special) ids seeded by the hash id and
//! the block size only, not `--seed`: equal hash ids give equal blocks in every request and
//! every run, as in vLLM (whose Python seeds from `hash(f"{h}:{size}")`). A block cut short
//! (the last one of a prompt) is the start of the full block.
//!
//! `timed_trace` sends the ids as they are (`Prompt::Ids`, so Completions or SGLang's
//! `/generate` only, as vLLM allows completions backends only): the blocks of the row's hash
//! ids, cut at `input_length`. Departure: where the hash ids cover fewer than `input_length`
//! tokens vLLM sends the shorter prompt; we pad with random ids (seeded by `--seed` and the
//! row) so `prompt_len` is `input_length`, and warn. Timestamps: vLLM schedules row `k` at
//! `timestamp_k × --timed-trace-sec-multiplier` after the start; we count from the first row
//! (`(timestamp_k − timestamp_0) × multiplier`), so a trace cut from the middle of a longer
//! one does not first sit idle. Rows earlier than the first get 0 (sent at once, as both tools
//! do with a time already past).
//!
//! `mooncake` sends text. SGLang builds it as, per hash id, the id's digits followed by
//! `--mooncake-block-size` words "hi", then "Tell me a story based on this context.", wrapped
//! in the chat template with "Round 1: " in front, and ignores `input_length`. Departure: we
//! hit `input_length` exactly instead: each hash id's block is decoded to text once (fitted to
//! `--mooncake-block-size` tokens) and shared by every request naming it, the prompt is the
//! texts of the blocks that fit whole, then the next block's ids cut to what is left (or
//! random ids when the hash ids run out), fitted with the decode → re-encode loop. The chat
//! template is applied only with `--apply-chat-template`. `timestamp_s` is
//! `(timestamp − first timestamp) / 1000 × --mooncake-slowdown-factor` (ms in the trace), set
//! when every row has a timestamp (required with `--use-trace-timestamps`); SGLang's
//! `--mooncake-num-rounds` and `--mooncake-workload` (multi-round sessions, downloads) are not
//! built: every row is one single-turn request.

use std::collections::{HashMap, HashSet};

use anyhow::{anyhow, bail, ensure};
use serde_json::Value;

use super::prefix_repetition::{fit_after, random_ids, MAX_PROMPT_TOKENS};
use super::source::{self, Row};
use super::{Ctx, DatasetArgs, Prompt, Sample};
use crate::backend::Api;
use crate::plan::build_parallel;
use crate::plan::random::allowed_ids;
use crate::plan::seeded::{self, Stream};
use crate::tokenizer::Tokenizer;

/// SGLang's `record.get("output_length", 256)`.
const MOONCAKE_DEFAULT_OUTPUT_LEN: u64 = 256;

/// One trace row, checked.
#[derive(Clone, Debug)]
struct TraceRow {
    line: usize,
    timestamp: Option<f64>,
    input_len: usize,
    output_len: usize,
    hash_ids: Vec<u64>,
}

/// The ids of hash id `hash`'s block: `size` random allowed ids, the same for every request
/// and every run.
pub fn block_ids(hash: u64, size: usize, allowed: &[u32]) -> Vec<u32> {
    random_ids(&mut block_rng(hash, size), allowed, size)
}

fn block_rng(hash: u64, size: usize) -> seeded::SeededRng {
    seeded::rng(hash, Stream::Shared, size as u64)
}

pub fn load_timed(args: &DatasetArgs, ctx: &Ctx, tok: &Tokenizer) -> anyhow::Result<Vec<Sample>> {
    const NAME: &str = "timed_trace";
    if !matches!(ctx.api, Api::Completions | Api::SglangGenerate) {
        bail!(
            "--dataset-name {NAME} sends prompts as token ids, which only a completions backend \
             (or SGLang's /generate) takes; the backend in use speaks {:?}",
            ctx.api
        );
    }
    let path = args.path_for(
        NAME,
        "a JSONL trace, one {timestamp, input_length, output_length, hash_ids} object per line",
    )?;
    let chunk = args.timed_trace_chunk_hash_size;
    ensure!(
        chunk >= 1,
        "--timed-trace-chunk-hash-size must be at least 1"
    );
    let rows = first_rows(source::read_jsonl(path, NAME)?, ctx.num_prompts, NAME);

    let labelled =
        |e: anyhow::Error, flag: &str| anyhow!("{e} (the field's name is set by {flag})");
    let mut parsed = Vec::with_capacity(rows.len());
    for row in &rows {
        let ts_field = args.timed_trace_label_timestamp.as_str();
        let in_field = args.timed_trace_label_input_length.as_str();
        let out_field = args.timed_trace_label_output_length.as_str();
        let hash_field = args.timed_trace_label_hash_ids.as_str();
        let timestamp = row
            .num(ts_field)
            .map_err(|e| labelled(e, "--timed-trace-label-timestamp"))?;
        let input_len = prompt_len(row, in_field)
            .map_err(|e| labelled(e, "--timed-trace-label-input-length"))?;
        let output_len = row
            .uint(out_field)
            .map_err(|e| labelled(e, "--timed-trace-label-output-length"))?;
        let hash_ids =
            hash_ids(row, hash_field).map_err(|e| labelled(e, "--timed-trace-label-hash-ids"))?;
        parsed.push(TraceRow {
            line: row.line,
            timestamp: Some(timestamp),
            input_len,
            output_len: output_len as usize,
            hash_ids,
        });
    }
    let times = relative_times(
        &parsed,
        args.timed_trace_sec_multiplier,
        path,
        args.timed_trace_label_timestamp.as_str(),
    )?;

    let allowed = allowed_ids(tok)?;
    let mut blocks: HashMap<u64, Vec<u32>> = HashMap::new();
    let mut padded = 0usize;
    let mut samples = Vec::with_capacity(parsed.len());
    for (i, (row, timestamp_s)) in parsed.iter().zip(times).enumerate() {
        let mut ids = Vec::with_capacity(row.input_len);
        for &h in &row.hash_ids {
            let left = row.input_len - ids.len();
            if left == 0 {
                break;
            }
            let block = blocks
                .entry(h)
                .or_insert_with(|| block_ids(h, chunk, &allowed));
            ids.extend_from_slice(&block[..left.min(chunk)]);
        }
        if ids.len() < row.input_len {
            padded += 1;
            let mut rng = seeded::rng(ctx.seed, Stream::Sample, i as u64);
            ids.extend(random_ids(&mut rng, &allowed, row.input_len - ids.len()));
        }
        samples.push(Sample {
            prompt: Prompt::Ids(ids),
            timestamp_s,
            ..Sample::text(String::new(), row.input_len, row.output_len)
        });
    }
    if padded > 0 {
        eprintln!(
            "WARNING: --dataset-name {NAME}: in {padded} rows the hash ids cover fewer than \
             input_length tokens (at {chunk} per id, --timed-trace-chunk-hash-size); the rest \
             is random ids"
        );
    }
    Ok(samples)
}

pub fn load_mooncake(
    args: &DatasetArgs,
    ctx: &Ctx,
    tok: &Tokenizer,
) -> anyhow::Result<Vec<Sample>> {
    const NAME: &str = "mooncake";
    let path = args.path_for(
        NAME,
        "a Mooncake trace (JSONL: timestamp in ms, input_length, output_length, hash_ids)",
    )?;
    let block = args.mooncake_block_size;
    ensure!(block >= 1, "--mooncake-block-size must be at least 1");
    let rows = first_rows(source::read_jsonl(path, NAME)?, ctx.num_prompts, NAME);

    let mut parsed = Vec::with_capacity(rows.len());
    for row in &rows {
        let timestamp = match row.get("timestamp") {
            None | Some(Value::Null) if !args.use_trace_timestamps => None,
            _ => Some(row.num("timestamp")?),
        };
        parsed.push(TraceRow {
            line: row.line,
            timestamp,
            input_len: prompt_len(row, "input_length")?,
            output_len: row
                .opt_uint("output_length")?
                .unwrap_or(MOONCAKE_DEFAULT_OUTPUT_LEN) as usize,
            hash_ids: hash_ids(row, "hash_ids")?,
        });
    }
    let times = if parsed.iter().all(|r| r.timestamp.is_some()) {
        relative_times(
            &parsed,
            args.mooncake_slowdown_factor / 1000.0,
            path,
            "timestamp",
        )?
    } else {
        vec![None; parsed.len()]
    };

    let whole = |r: &TraceRow| r.hash_ids.len().min(r.input_len / block);
    let allowed = allowed_ids(tok)?;
    let mut seen = HashSet::new();
    let unique: Vec<u64> = parsed
        .iter()
        .flat_map(|r| r.hash_ids[..whole(r)].iter().copied())
        .filter(|h| seen.insert(*h))
        .collect();
    let texts = build_parallel(unique.len(), |k| {
        let mut rng = block_rng(unique[k], block);
        let ids = random_ids(&mut rng, &allowed, block);
        Ok(fit_after(tok, "", ids, block, &mut rng, &allowed)?.text)
    })?;
    let text_of: HashMap<u64, &str> = unique
        .iter()
        .copied()
        .zip(texts.iter().map(String::as_str))
        .collect();

    build_parallel(parsed.len(), |i| {
        let row = &parsed[i];
        let full = whole(row);
        let head: String = row.hash_ids[..full].iter().map(|h| text_of[h]).collect();
        let left = row.input_len - full * block;
        let mut tail = Vec::with_capacity(left);
        if let (true, Some(&h)) = (left > 0, row.hash_ids.get(full)) {
            tail.extend_from_slice(&block_ids(h, block, &allowed)[..left.min(block)]);
        }
        let mut rng = seeded::rng(ctx.seed, Stream::Sample, i as u64);
        tail.extend(random_ids(&mut rng, &allowed, left - tail.len()));
        let fitted = fit_after(tok, &head, tail, row.input_len, &mut rng, &allowed)?;
        Ok(Sample {
            prompt: Prompt::Text(fitted.text),
            prompt_len: fitted.ids.len(),
            token_ids: Some(fitted.ids),
            mismatch: fitted.mismatch,
            timestamp_s: times[i],
            ..Sample::text(String::new(), 0, row.output_len)
        })
    })
}

/// The first `n` rows; fewer is a warning, never a reason to draw rows again.
fn first_rows<T>(mut rows: Vec<T>, n: usize, dataset: &str) -> Vec<T> {
    if rows.len() < n {
        eprintln!(
            "WARNING: --dataset-name {dataset}: the trace has {} rows, fewer than the {n} \
             requests asked for; replaying those (a trace is never oversampled)",
            rows.len()
        );
    }
    rows.truncate(n);
    rows
}

/// A prompt length field, bounded so a broken row cannot ask for terabytes.
fn prompt_len(row: &Row, field: &str) -> anyhow::Result<usize> {
    let n = row.uint(field)?;
    if n > MAX_PROMPT_TOKENS {
        return Err(row.error(
            field,
            &format!("is {n}, more than the {MAX_PROMPT_TOKENS} tokens a prompt may have"),
        ));
    }
    Ok(n as usize)
}

/// A list of block hash ids; absent or null is an empty list (both tools' `get(.., [])`).
/// Negative ids are taken as their two's-complement bits.
fn hash_ids(row: &Row, field: &str) -> anyhow::Result<Vec<u64>> {
    match row.get(field) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| {
                v.as_u64()
                    .or_else(|| v.as_i64().map(|i| i as u64))
                    .ok_or_else(|| row.error(field, &format!("must hold integers, got {v}")))
            })
            .collect(),
        Some(other) => Err(row.error(
            field,
            &format!("must be an array of integers, got {}", source::kind(other)),
        )),
    }
}

/// Seconds from the first row: `(t − t₀) × scale`, never below 0.
fn relative_times(
    rows: &[TraceRow],
    scale: f64,
    path: &str,
    field: &str,
) -> anyhow::Result<Vec<Option<f64>>> {
    let Some(t0) = rows.first().and_then(|r| r.timestamp) else {
        return Ok(vec![None; rows.len()]);
    };
    rows.iter()
        .map(|r| {
            let Some(t) = r.timestamp else {
                return Ok(None);
            };
            let s = (t - t0) * scale;
            ensure!(
                s.is_finite(),
                "{path}:{}: field \"{field}\" {t} scales to a non-finite time",
                r.line
            );
            Ok(Some(s.max(0.0)))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_depend_on_hash_and_size_only() {
        let allowed: Vec<u32> = (3..1000).collect();
        let a = block_ids(7, 16, &allowed);
        assert_eq!(a, block_ids(7, 16, &allowed));
        assert_ne!(a, block_ids(8, 16, &allowed));
        assert_ne!(a, block_ids(7, 17, &allowed)[..16]);
        assert!(a.iter().all(|id| allowed.contains(id)));
        assert_eq!(a.len(), 16);
    }

    #[test]
    fn times_count_from_the_first_row() {
        let row = |line, t| TraceRow {
            line,
            timestamp: t,
            input_len: 1,
            output_len: 1,
            hash_ids: vec![],
        };
        let rows = [row(1, Some(10.0)), row(2, Some(12.5)), row(3, Some(9.0))];
        let t = relative_times(&rows, 2.0, "p", "ts").unwrap();
        assert_eq!(t, vec![Some(0.0), Some(5.0), Some(0.0)]);
        let e = relative_times(&[row(1, Some(0.0)), row(4, Some(1e308))], 1e10, "p", "ts");
        assert!(e.unwrap_err().to_string().contains("p:4:"));
    }
}

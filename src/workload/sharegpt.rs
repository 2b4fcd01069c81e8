//! The `sharegpt` dataset: the first two turns of ShareGPT conversations, as
//! `vllm bench serve --dataset-name sharegpt` (and `sglang.bench_serving`) take them.
//!
//! The file is a JSON list of `{"id": ..., "conversations": [{"from", "value"}, ...]}`
//! (SGLang's `"conversation"` is accepted too; other keys are ignored). Entries with fewer than
//! two turns are dropped; the rest are shuffled with `--seed` (unless `--disable-shuffle`), and
//! taken in that order: prompt = the first turn's `value`, reply = the second's. The output
//! length is the reply's token count, or `--output-len` / `--sharegpt-output-len` when given.
//! A pair is kept when (vLLM's rules) the prompt has at least 4 tokens, the reply at least 4
//! (not checked with a fixed output length), the prompt at most 1024 and both together at most
//! 2048. `--sharegpt-context-len C` switches to SGLang's rules: at least 2 tokens each, the sum
//! at most `C`, no cap on the prompt alone. Pairs are taken until `--num-prompts` are found;
//! with fewer, vLLM's oversampling fills up (see [`source::fit_count`]).
//!
//! Departures, on purpose: the shuffle uses our seeded stream, not Python's `random`, so a
//! seed picks different (equally likely) conversations; token counts are without special
//! tokens (vLLM counts a BOS where the tokenizer adds one, which moves the filters' edges by
//! that token); an entry without `conversations`, or a turn without a string `value`, is an
//! error naming the entry rather than a silently skipped row.
//!
//! `--prompt-suffix` (SGLang) is applied as SGLang does: a trailing `Assistant:` is cut, the
//! suffix appended, and `Assistant:` appended again.

use std::fmt;
use std::path::Path;

use anyhow::{anyhow, bail, ensure};
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use super::{source, Ctx, DatasetArgs, Message, Sample};
use crate::backend::Api;
use crate::plan::build_parallel;
use crate::tokenizer::Tokenizer;

/// Where the standard ShareGPT file lives on the Hugging Face hub.
pub const SHAREGPT_URL: &str = "https://huggingface.co/datasets/anon8231489123/\
ShareGPT_Vicuna_unfiltered/resolve/main/ShareGPT_V3_unfiltered_cleaned_split.json";

/// What to tell a user who has no ShareGPT file.
pub fn where_to_get() -> String {
    format!(
        "the ShareGPT JSON file. The standard one is ShareGPT_V3_unfiltered_cleaned_split.json \
         from the Hugging Face dataset anon8231489123/ShareGPT_Vicuna_unfiltered:\n  \
         wget {SHAREGPT_URL}\n  (or: curl -LO {SHAREGPT_URL})\nthen pass --dataset-path \
         ShareGPT_V3_unfiltered_cleaned_split.json"
    )
}

/// `--dataset-path`, checked to exist, with the download hint when it is missing.
pub fn sharegpt_path<'a>(args: &'a DatasetArgs, dataset: &str) -> anyhow::Result<&'a str> {
    let path = args.path_for(dataset, &where_to_get())?;
    require_file(path, dataset)?;
    Ok(path)
}

/// An error with the download hint when `path` does not exist.
pub fn require_file(path: &str, dataset: &str) -> anyhow::Result<()> {
    if !Path::new(path).exists() {
        bail!(
            "--dataset-path {path}: no such file (--dataset-name {dataset} reads {})",
            where_to_get()
        );
    }
    Ok(())
}

/// The first two turns of one conversation, and the turns after them when they were asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pair {
    pub prompt: String,
    pub completion: String,
    /// Turns 3, 4, … ([`read_conversations`] only).
    pub rest: Vec<String>,
}

thread_local! {
    /// How many turns of each conversation the reader keeps. A thread-local rather than a
    /// `DeserializeSeed` threaded through the three nested visitors: the reading is one call.
    static KEEP_TURNS: std::cell::Cell<usize> = const { std::cell::Cell::new(2) };
}

/// Every entry with at least two turns, in file order. A syntax error names its line and
/// column; an entry of the wrong shape names its index (0-based), its line and the field.
pub fn read_pairs(path: &str, dataset: &str) -> anyhow::Result<Vec<Pair>> {
    read_entries(path, dataset, 2)
}

/// [`read_pairs`] keeping up to `keep` turns of each conversation (in `Pair::rest` after the
/// first two).
pub fn read_conversations(path: &str, dataset: &str, keep: usize) -> anyhow::Result<Vec<Pair>> {
    read_entries(path, dataset, keep.max(2))
}

fn read_entries(path: &str, dataset: &str, keep: usize) -> anyhow::Result<Vec<Pair>> {
    let text = source::read_text(path, dataset)?;
    let parsed = KEEP_TURNS.with(|k| {
        k.set(keep);
        let parsed = serde_json::from_str::<Entries>(&text);
        k.set(2);
        parsed
    });
    let entries: Entries = parsed.map_err(|e| {
        anyhow!(
            "{path}:{}:{}: not a ShareGPT JSON file ({e}); expected a JSON list of \
             {{\"conversations\": [{{\"from\": ..., \"value\": ...}}, ...]}} objects",
            e.line(),
            e.column()
        )
    })?;
    if let Some((index, bad)) = entries.first_bad {
        let line = entry_lines(&text)
            .get(index)
            .map_or(String::new(), |l| format!(":{l}"));
        let id = bad.id.map_or(String::new(), |id| format!(" (id {id})"));
        bail!(
            "{path}{line}: entry {index}{id}: field \"{}\" {}; each entry must be \
             {{\"conversations\": [{{\"from\": ..., \"value\": \"text\"}}, ...]}}",
            bad.field,
            bad.what
        );
    }
    ensure!(
        entries.total > 0,
        "--dataset-path {path}: the list is empty (--dataset-name {dataset})"
    );
    Ok(entries.pairs)
}

/// Line (1-based) on which each element of a top-level JSON array starts. Assumes `text`
/// parsed as JSON already; stops at the array's end.
pub fn entry_lines(text: &str) -> Vec<usize> {
    let mut lines = Vec::new();
    let (mut line, mut depth) = (1usize, 0usize);
    let (mut in_string, mut escaped, mut expect_element) = (false, false, false);
    for &b in text.as_bytes() {
        if b == b'\n' {
            line += 1;
        }
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        if expect_element && !b.is_ascii_whitespace() && b != b']' {
            lines.push(line);
            expect_element = false;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth == 1 {
                    expect_element = true;
                }
            }
            b']' | b'}' => {
                if depth == 1 {
                    break;
                }
                depth = depth.saturating_sub(1);
            }
            b',' if depth == 1 => expect_element = true,
            _ => {}
        }
    }
    lines
}

/// The length rules a (prompt, output) pair must meet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LengthFilter {
    pub min_prompt: usize,
    /// 0: not checked.
    pub min_output: usize,
    pub max_prompt: Option<usize>,
    pub max_total: Option<usize>,
}

impl LengthFilter {
    /// vLLM's `is_valid_sequence` with its defaults (4, 1024, 2048).
    pub fn vllm(fixed_output: bool) -> LengthFilter {
        LengthFilter {
            min_prompt: 4,
            min_output: if fixed_output { 0 } else { 4 },
            max_prompt: Some(1024),
            max_total: Some(2048),
        }
    }

    /// SGLang's: at least 2 tokens each, and prompt + output within the context length.
    pub fn sglang(context_len: Option<usize>) -> LengthFilter {
        LengthFilter {
            min_prompt: 2,
            min_output: 2,
            max_prompt: None,
            max_total: context_len,
        }
    }

    /// The rules for ShareGPT-style pairs: SGLang's with `--sharegpt-context-len`, else vLLM's.
    /// `--sharegpt-max-prompt-len` / `--sharegpt-max-total-len` replace the caps.
    pub fn for_sharegpt(args: &DatasetArgs, fixed_output: bool) -> LengthFilter {
        let mut f = match args.sharegpt_context_len {
            Some(c) => LengthFilter::sglang(Some(c)),
            None => LengthFilter::vllm(fixed_output),
        };
        if let Some(m) = args.sharegpt_max_prompt_len {
            f.max_prompt = Some(m);
        }
        if let Some(m) = args.sharegpt_max_total_len {
            f.max_total = Some(m);
        }
        f
    }

    pub fn keeps(&self, prompt_len: usize, output_len: usize) -> bool {
        prompt_len >= self.min_prompt
            && output_len >= self.min_output
            && self.max_prompt.is_none_or(|m| prompt_len <= m)
            && self.max_total.is_none_or(|m| prompt_len + output_len <= m)
    }

    fn describe(&self) -> String {
        let mut rules = vec![format!("prompt >= {} tokens", self.min_prompt)];
        if self.min_output > 0 {
            rules.push(format!("output >= {}", self.min_output));
        }
        if let Some(m) = self.max_prompt {
            rules.push(format!("prompt <= {m}"));
        }
        if let Some(m) = self.max_total {
            rules.push(format!("prompt + output <= {m}"));
        }
        rules.join(", ")
    }
}

/// The fixed output length asked for, if any: `--output-len`, else `--sharegpt-output-len`.
pub fn fixed_output_len(args: &DatasetArgs) -> anyhow::Result<Option<usize>> {
    let fixed = args.output_len.or(args.sharegpt_output_len);
    ensure!(
        fixed != Some(0),
        "--sharegpt-output-len / --output-len 0: must be at least 1 token"
    );
    Ok(fixed)
}

/// SGLang's `--prompt-suffix`: cut a trailing `Assistant:`, add the suffix, add `Assistant:`.
pub fn apply_prompt_suffix(prompt: &str, suffix: &str) -> String {
    const ASSISTANT: &str = "Assistant:";
    if suffix.is_empty() {
        return prompt.to_string();
    }
    let head = prompt.strip_suffix(ASSISTANT).unwrap_or(prompt);
    format!("{head}{suffix}{ASSISTANT}")
}

/// Takes `f(item)` for items in order until `n` of them gave `Some`, tokenizing a window at a
/// time on all cores so a large file is not tokenized whole when few requests are asked for.
pub fn take_in_order<I, T, F>(items: &[I], n: usize, f: F) -> anyhow::Result<Vec<T>>
where
    I: Sync,
    T: Send,
    F: Fn(&I) -> anyhow::Result<Option<T>> + Sync,
{
    let mut out = Vec::with_capacity(n.min(items.len()));
    let mut next = 0;
    while out.len() < n && next < items.len() {
        let missing = n - out.len();
        // Most rows pass the filters: a window a little larger than what is missing usually
        // finishes in one round without tokenizing much that is not used.
        let window = (missing + missing / 4 + 64).min(items.len() - next);
        let got = build_parallel(window, |k| f(&items[next + k]))?;
        out.extend(got.into_iter().flatten().take(n - out.len()));
        next += window;
    }
    Ok(out)
}

pub fn load(args: &DatasetArgs, ctx: &Ctx, tok: &Tokenizer) -> anyhow::Result<Vec<Sample>> {
    if args.multi_turn {
        return load_conversations(args, ctx, tok);
    }
    ensure!(
        args.sharegpt_max_turns.is_none(),
        "--sharegpt-max-turns needs --multi-turn (without it every conversation is one turn)"
    );
    let path = sharegpt_path(args, "sharegpt")?;
    let fixed = fixed_output_len(args)?;
    let filter = LengthFilter::for_sharegpt(args, fixed.is_some());
    let pairs = read_pairs(path, "sharegpt")?;
    let total = pairs.len();
    let pairs = source::ordered(pairs, ctx.seed, args.disable_shuffle);
    let samples = take_in_order(&pairs, ctx.num_prompts, |p| {
        let prompt = apply_prompt_suffix(&p.prompt, &args.prompt_suffix);
        let prompt_len = tok.count(&prompt)?;
        if prompt_len < filter.min_prompt {
            return Ok(None);
        }
        let output_len = match fixed {
            Some(n) => n,
            None => tok.count(&p.completion)?,
        };
        Ok(filter
            .keeps(prompt_len, output_len)
            .then(|| Sample::text(prompt, prompt_len, output_len)))
    })?;
    ensure!(
        !samples.is_empty(),
        "{path}: none of the {total} conversations with two or more turns passes the length \
         filters ({})",
        filter.describe()
    );
    Ok(source::fit_count(
        samples,
        ctx.num_prompts,
        ctx.seed,
        args.no_oversample,
        "sharegpt",
    ))
}

/// `--multi-turn`: each conversation's rounds (user turn, recorded reply) become turns, sent
/// one after the other with the server's replies as history. A turn's prompt length counts
/// its history (earlier user turns, and each earlier reply at its output length); the
/// conversation ends before the first turn the length filters drop (it is dropped whole when
/// that is the first), or after `--sharegpt-max-turns`. `--num-prompts` counts conversations;
/// too few are oversampled as whole conversations.
fn load_conversations(
    args: &DatasetArgs,
    ctx: &Ctx,
    tok: &Tokenizer,
) -> anyhow::Result<Vec<Sample>> {
    ensure!(
        matches!(ctx.api, Api::Chat | Api::Responses),
        "--multi-turn sends each reply back as chat history: use a chat backend (openai-chat, \
         vllm-chat, sglang-oai-chat, lmdeploy-chat) or openai-responses"
    );
    let max_turns = args.sharegpt_max_turns.unwrap_or(usize::MAX);
    ensure!(max_turns >= 1, "--sharegpt-max-turns must be at least 1");
    let path = sharegpt_path(args, "sharegpt")?;
    let fixed = fixed_output_len(args)?;
    let filter = LengthFilter::for_sharegpt(args, fixed.is_some());
    let pairs = read_conversations(path, "sharegpt", max_turns.saturating_mul(2))?;
    let total = pairs.len();
    let pairs = source::ordered(pairs, ctx.seed, args.disable_shuffle);
    let conversations = take_in_order(&pairs, ctx.num_prompts, |p| {
        let rounds = std::iter::once([&p.prompt, &p.completion])
            .chain(p.rest.chunks_exact(2).map(|r| [&r[0], &r[1]]))
            .take(max_turns);
        let mut turns: Vec<Sample> = Vec::new();
        let (mut history, mut context) = (Vec::new(), 0usize);
        for (turn, [user, reply]) in rounds.enumerate() {
            let user = apply_prompt_suffix(user, &args.prompt_suffix);
            let user_len = tok.count(&user)?;
            let output_len = match fixed {
                Some(n) => n,
                None => tok.count(reply)?,
            };
            let prompt_len = context + user_len;
            if user_len < filter.min_prompt || !filter.keeps(prompt_len, output_len) {
                break;
            }
            turns.push(Sample {
                history: history.clone(),
                turn: turn as u32,
                ..Sample::text(user.clone(), prompt_len, output_len)
            });
            history.push(Message {
                role: "user".into(),
                content: user,
            });
            // The recorded reply stands for the live one until the run splices it in.
            history.push(Message {
                role: "assistant".into(),
                content: reply.clone(),
            });
            context = prompt_len + output_len;
        }
        Ok((!turns.is_empty()).then_some(turns))
    })?;
    ensure!(
        !conversations.is_empty(),
        "{path}: none of the {total} conversations with two or more turns has a first turn \
         that passes the length filters ({})",
        filter.describe()
    );
    let conversations = source::fit_count(
        conversations,
        ctx.num_prompts,
        ctx.seed,
        args.no_oversample,
        "sharegpt",
    );
    Ok(conversations.into_iter().flatten().collect())
}

// --- Reading the file ------------------------------------------------------------------------
//
// The standard file is ~650 MB of conversations; only the first two turns of each are kept,
// so it is read with a streaming visitor instead of a `serde_json::Value` tree. Shape problems
// are collected as data (the first one wins), not as serde errors, so the message can name the
// entry rather than a byte position inside it.

/// A shape problem: which field, and what is wrong with it.
#[derive(Debug)]
struct Bad {
    field: String,
    what: String,
    id: Option<String>,
}

fn bad(field: impl Into<String>, what: impl Into<String>) -> Bad {
    Bad {
        field: field.into(),
        what: what.into(),
        id: None,
    }
}

struct Entries {
    pairs: Vec<Pair>,
    total: usize,
    first_bad: Option<(usize, Bad)>,
}

impl<'de> Deserialize<'de> for Entries {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Entries;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON list of ShareGPT entries")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Entries, A::Error> {
                let mut out = Entries {
                    pairs: Vec::new(),
                    total: 0,
                    first_bad: None,
                };
                while let Some(entry) = seq.next_element::<Entry>()? {
                    let index = out.total;
                    out.total += 1;
                    if out.first_bad.is_some() {
                        continue;
                    }
                    match entry.into_pair() {
                        Ok(Some(pair)) => out.pairs.push(pair),
                        Ok(None) => {}
                        Err(b) => out.first_bad = Some((index, b)),
                    }
                }
                Ok(out)
            }
        }
        d.deserialize_seq(V)
    }
}

/// One entry: its id (for messages) and its conversation, or what is wrong with it.
struct Entry {
    id: Option<String>,
    conversation: Option<Result<Turns, Bad>>,
    not_object: Option<&'static str>,
}

impl Entry {
    fn into_pair(self) -> Result<Option<Pair>, Bad> {
        let with_id = |mut b: Bad| {
            b.id = self.id.clone();
            b
        };
        if let Some(kind) = self.not_object {
            return Err(bad("(entry)", format!("must be an object, got {kind}")));
        }
        let turns = match self.conversation {
            None => return Err(with_id(bad("conversations", "is missing"))),
            Some(Err(b)) => return Err(with_id(b)),
            Some(Ok(t)) => t,
        };
        if turns.count < 2 {
            return Ok(None);
        }
        let mut kept = turns.kept.into_iter();
        let pair = match (kept.next(), kept.next()) {
            (Some(Ok(prompt)), Some(Ok(completion))) => (prompt, completion),
            (Some(Err(b)), _) | (_, Some(Err(b))) => return Err(with_id(b)),
            _ => return Err(with_id(bad("conversations", "lost a turn"))),
        };
        let rest = kept.collect::<Result<Vec<_>, _>>().map_err(with_id)?;
        Ok(Some(Pair {
            prompt: pair.0,
            completion: pair.1,
            rest,
        }))
    }
}

/// Shorthand for visitors that accept one JSON kind and record any other as a problem.
macro_rules! other_kinds {
    ($value:ty, $on:expr) => {
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<$value, E> {
            Ok($on("a boolean"))
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<$value, E> {
            Ok($on("a number"))
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<$value, E> {
            Ok($on("a number"))
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<$value, E> {
            Ok($on("a number"))
        }
        fn visit_str<E: de::Error>(self, _: &str) -> Result<$value, E> {
            Ok($on("a string"))
        }
        fn visit_unit<E: de::Error>(self) -> Result<$value, E> {
            Ok($on("null"))
        }
    };
}

impl<'de> Deserialize<'de> for Entry {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        fn not_object(kind: &'static str) -> Entry {
            Entry {
                id: None,
                conversation: None,
                not_object: Some(kind),
            }
        }
        impl<'de> Visitor<'de> for V {
            type Value = Entry;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a ShareGPT entry")
            }
            other_kinds!(Entry, not_object);
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Entry, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(not_object("an array"))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Entry, A::Error> {
                let mut entry = Entry {
                    id: None,
                    conversation: None,
                    not_object: None,
                };
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "conversations" | "conversation" if entry.conversation.is_none() => {
                            entry.conversation = Some(map.next_value::<TurnsOrBad>()?.0);
                        }
                        "id" => {
                            entry.id = Some(map.next_value::<serde_json::Value>()?.to_string());
                        }
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(entry)
            }
        }
        d.deserialize_any(V)
    }
}

/// The turn count and the kept turns' text (or what is wrong with them).
struct Turns {
    count: usize,
    kept: Vec<Result<String, Bad>>,
}

struct TurnsOrBad(Result<Turns, Bad>);

impl<'de> Deserialize<'de> for TurnsOrBad {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        fn not_array(kind: &'static str) -> TurnsOrBad {
            TurnsOrBad(Err(bad(
                "conversations",
                format!("must be an array, got {kind}"),
            )))
        }
        impl<'de> Visitor<'de> for V {
            type Value = TurnsOrBad;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list of turns")
            }
            other_kinds!(TurnsOrBad, not_array);
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<TurnsOrBad, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(not_array("an object"))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<TurnsOrBad, A::Error> {
                let keep = KEEP_TURNS.with(|k| k.get());
                let mut turns = Turns {
                    count: 0,
                    kept: Vec::with_capacity(keep.min(64)),
                };
                loop {
                    if turns.count < keep {
                        match seq.next_element::<Turn>()? {
                            Some(t) => turns.kept.push(t.text(turns.count)),
                            None => break,
                        }
                    } else if seq.next_element::<IgnoredAny>()?.is_none() {
                        break;
                    }
                    turns.count += 1;
                }
                Ok(TurnsOrBad(Ok(turns)))
            }
        }
        d.deserialize_any(V)
    }
}

/// One turn: its `value` (or SGLang's `content`), or what was found instead.
enum Turn {
    Text(String),
    NotString(&'static str),
    Missing,
    NotObject(&'static str),
}

impl Turn {
    fn text(self, index: usize) -> Result<String, Bad> {
        let field = format!("conversations[{index}].value");
        match self {
            Turn::Text(s) => Ok(s),
            Turn::NotString(kind) => Err(bad(field, format!("must be a string, got {kind}"))),
            Turn::Missing => Err(bad(field, "is missing")),
            Turn::NotObject(kind) => Err(bad(
                format!("conversations[{index}]"),
                format!("must be an object, got {kind}"),
            )),
        }
    }
}

/// A turn's text field, or the kind of JSON value found instead of a string.
struct TextField(Result<String, &'static str>);

impl<'de> Deserialize<'de> for TextField {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        fn other(kind: &'static str) -> TextField {
            TextField(Err(kind))
        }
        impl<'de> Visitor<'de> for V {
            type Value = TextField;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<TextField, E> {
                Ok(other("a boolean"))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<TextField, E> {
                Ok(other("a number"))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<TextField, E> {
                Ok(other("a number"))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<TextField, E> {
                Ok(other("a number"))
            }
            fn visit_unit<E: de::Error>(self) -> Result<TextField, E> {
                Ok(other("null"))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<TextField, E> {
                Ok(TextField(Ok(s.to_string())))
            }
            fn visit_string<E: de::Error>(self, s: String) -> Result<TextField, E> {
                Ok(TextField(Ok(s)))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<TextField, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(other("an array"))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<TextField, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(other("an object"))
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for Turn {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Turn;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a turn")
            }
            other_kinds!(Turn, Turn::NotObject);
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Turn, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Turn::NotObject("an array"))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Turn, A::Error> {
                let (mut value, mut content) = (None, None);
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "value" => value = Some(map.next_value::<TextField>()?.0),
                        "content" => content = Some(map.next_value::<TextField>()?.0),
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(match value.or(content) {
                    Some(Ok(s)) => Turn::Text(s),
                    Some(Err(kind)) => Turn::NotString(kind),
                    None => Turn::Missing,
                })
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_lines_follow_top_level_elements_only() {
        let text = "[\n  {\"a\": [1, {\"b\": \"x,]\"}]},\n  {\"c\": \"\\\"\"}\n, 3]";
        assert_eq!(entry_lines(text), vec![2, 3, 4]);
        assert_eq!(entry_lines("[]"), Vec::<usize>::new());
        assert_eq!(entry_lines("[ 1 ]"), vec![1]);
    }

    #[test]
    fn filters_follow_vllm_and_sglang_rules() {
        let v = LengthFilter::vllm(false);
        assert!(v.keeps(4, 4) && v.keeps(1024, 1024));
        assert!(!v.keeps(3, 100) && !v.keeps(100, 3));
        assert!(!v.keeps(1025, 10) && !v.keeps(1000, 1049));
        assert!(LengthFilter::vllm(true).keeps(10, 1));
        let s = LengthFilter::sglang(Some(5000));
        assert!(s.keeps(2, 2) && s.keeps(4000, 1000) && !s.keeps(4000, 1001));
        assert!(!s.keeps(1, 10) && !s.keeps(10, 1));
        assert!(LengthFilter::sglang(None).keeps(100_000, 100_000));
    }

    #[test]
    fn prompt_suffix_is_applied_like_sglang() {
        assert_eq!(apply_prompt_suffix("Hi", ""), "Hi");
        assert_eq!(apply_prompt_suffix("Hi", " ok"), "Hi okAssistant:");
        assert_eq!(
            apply_prompt_suffix("Hi Assistant:", " ok"),
            "Hi  okAssistant:"
        );
    }

    #[test]
    fn take_in_order_stops_at_n_and_keeps_order() {
        let items: Vec<usize> = (0..1000).collect();
        let odd = take_in_order(&items, 300, |&i| Ok((i % 2 == 1).then_some(i))).unwrap();
        assert_eq!(odd, (0..300).map(|k| 2 * k + 1).collect::<Vec<_>>());
        let all = take_in_order(&items, 5000, |&i| Ok(Some(i))).unwrap();
        assert_eq!(all.len(), 1000);
    }
}

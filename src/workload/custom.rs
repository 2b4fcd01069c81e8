//! The `custom` dataset: a JSON Lines file of your own prompts, as `vllm bench serve
//! --dataset-name custom` reads it, with SGLang's custom rows accepted as well.
//!
//! vLLM's rows are `{"prompt": "text", "output_tokens": 128}` (`output_tokens` optional). Every
//! row is used, no length filter: prompt length is the tokenizer's count, output length is
//! `--custom-output-len` (default 256; `--output-len` overrides it), or with `-1` each row's
//! `output_tokens`, which every row must then have. SGLang's rows are
//! `{"conversations": [{"content" | "value": prompt}, {"content" | "value": reply}, ...]}`:
//! rows with fewer than two turns are dropped, the output length is the reply's token count
//! unless `--output-len` / `--sharegpt-output-len` fixes it, and SGLang's filters apply (at
//! least 2 tokens each; prompt + output within `--sharegpt-context-len` when given). The two
//! kinds may be mixed. Rows are shuffled with `--seed` unless `--disable-shuffle`, taken in
//! order, and oversampled up to `--num-prompts` as vLLM does.
//!
//! Every row is checked before anything is tokenized: a bad row is one error naming the file,
//! the line and the field. Departures: the shuffle uses our seeded stream (not Python's
//! `random`); SGLang rows with an `"image"` are refused (not sent without their image);
//! `--prompt-suffix` (SGLang's) is applied to every row when given. vLLM renders its chat
//! template into custom prompts unless `--skip-chat-template`; here that is
//! `--apply-chat-template`'s job, after loading.

use anyhow::{anyhow, ensure};
use serde_json::Value;

use super::sharegpt::{apply_prompt_suffix, fixed_output_len, take_in_order, LengthFilter};
use super::source::{self, kind, Row};
use super::{Ctx, DatasetArgs, Sample};
use crate::tokenizer::Tokenizer;

/// One usable row.
#[derive(Clone, Debug)]
enum Item {
    /// vLLM's `{"prompt"}` row, with its output length already known.
    Prompt { prompt: String, output_len: usize },
    /// SGLang's conversation row: the first two turns.
    Conversation { prompt: String, reply: String },
}

pub fn load(args: &DatasetArgs, ctx: &Ctx, tok: &Tokenizer) -> anyhow::Result<Vec<Sample>> {
    let path = args.path_for(
        "custom",
        "a JSON Lines file with one {\"prompt\": \"...\", \"output_tokens\": N} object per line",
    )?;
    let output = output_len_flag(args)?;
    let fixed_reply = fixed_output_len(args)?;
    let filter = LengthFilter::sglang(args.sharegpt_context_len);

    let rows = source::read_jsonl(path, "custom")?;
    let mut items = Vec::with_capacity(rows.len());
    for row in &rows {
        if let Some(item) = item(row, output)? {
            items.push(item);
        }
    }
    drop(rows);
    let total = items.len();
    let items = source::ordered(items, ctx.seed, args.disable_shuffle);

    let suffix = &args.prompt_suffix;
    let samples = take_in_order(&items, ctx.num_prompts, |it| match it {
        Item::Prompt { prompt, output_len } => {
            let prompt = apply_prompt_suffix(prompt, suffix);
            let prompt_len = tok.count(&prompt)?;
            Ok(Some(Sample::text(prompt, prompt_len, *output_len)))
        }
        Item::Conversation { prompt, reply } => {
            let prompt = apply_prompt_suffix(prompt, suffix);
            let prompt_len = tok.count(&prompt)?;
            let output_len = match fixed_reply {
                Some(n) => n,
                None => tok.count(reply)?,
            };
            Ok(filter
                .keeps(prompt_len, output_len)
                .then(|| Sample::text(prompt, prompt_len, output_len)))
        }
    })?;
    ensure!(
        !samples.is_empty(),
        "{path}: no usable rows ({total} rows with a prompt; conversation rows need two turns \
         and must pass SGLang's length filters: {})",
        describe(&filter)
    );
    Ok(source::fit_count(
        samples,
        ctx.num_prompts,
        ctx.seed,
        args.no_oversample,
        "custom",
    ))
}

/// What `--custom-output-len` (or `--output-len`) asks for: a length, or `None` for `-1`.
fn output_len_flag(args: &DatasetArgs) -> anyhow::Result<Option<usize>> {
    let flag = args.output_len.map_or(args.custom_output_len, |n| n as i64);
    match flag {
        -1 => Ok(None),
        n if n >= 1 => Ok(Some(n as usize)),
        n => Err(anyhow!(
            "--custom-output-len {n}: must be at least 1, or -1 to take each row's \
             \"output_tokens\""
        )),
    }
}

fn describe(filter: &LengthFilter) -> String {
    match filter.max_total {
        Some(c) => format!("at least 2 tokens each, prompt + output <= {c}"),
        None => "at least 2 tokens each".to_string(),
    }
}

/// The row as an [`Item`], `None` for a conversation row with fewer than two turns.
fn item(row: &Row, output: Option<usize>) -> anyhow::Result<Option<Item>> {
    if row.get("prompt").is_some() {
        let prompt = row.str("prompt")?.to_string();
        let output_len = match output {
            Some(n) => n,
            None => row
                .uint("output_tokens")
                .map_err(|e| anyhow!("{e} (--custom-output-len -1 reads it from every row)"))?
                as usize,
        };
        return Ok(Some(Item::Prompt { prompt, output_len }));
    }
    let (field, turns) = match (row.get("conversations"), row.get("conversation")) {
        (Some(t), _) => ("conversations", t),
        (None, Some(t)) => ("conversation", t),
        (None, None) => {
            return Err(row.error(
                "prompt",
                "is missing; each row is {\"prompt\": \"...\"} (vLLM) or {\"conversations\": \
                 [{\"content\": \"...\"}, ...]} (SGLang)",
            ))
        }
    };
    let Value::Array(turns) = turns else {
        return Err(row.error(field, &format!("must be an array, got {}", kind(turns))));
    };
    if row.get("image").is_some_and(|v| !v.is_null()) {
        return Err(row.error(
            "image",
            "is not supported: custom rows are sent as text only; use the image dataset for \
             requests with images",
        ));
    }
    if turns.len() < 2 {
        return Ok(None);
    }
    let text = |i: usize| -> anyhow::Result<String> {
        let at = format!("{field}[{i}]");
        let Value::Object(turn) = &turns[i] else {
            return Err(row.error(&at, &format!("must be an object, got {}", kind(&turns[i]))));
        };
        match turn.get("content").or_else(|| turn.get("value")) {
            Some(Value::String(s)) => Ok(s.clone()),
            Some(other) => Err(row.error(
                &format!("{at}.content"),
                &format!("must be a string, got {}", kind(other)),
            )),
            None => Err(row.error(&format!("{at}.content"), "is missing (or \"value\")")),
        }
    };
    Ok(Some(Item::Conversation {
        prompt: text(0)?,
        reply: text(1)?,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(custom_output_len: i64, output_len: Option<usize>) -> DatasetArgs {
        DatasetArgs {
            dataset_name: "custom".into(),
            custom_output_len,
            output_len,
            ..Default::default()
        }
    }

    #[test]
    fn output_len_flag_accepts_minus_one_and_positive_only() {
        assert_eq!(output_len_flag(&args(256, None)).unwrap(), Some(256));
        assert_eq!(output_len_flag(&args(-1, None)).unwrap(), None);
        assert_eq!(output_len_flag(&args(-1, Some(9))).unwrap(), Some(9));
        for bad in [0, -2] {
            let e = output_len_flag(&args(bad, None)).unwrap_err().to_string();
            assert!(e.contains("--custom-output-len"), "{e}");
        }
    }

    #[test]
    fn rows_of_both_kinds_become_items() {
        let row = |v: Value| Row {
            path: "f.jsonl",
            line: 7,
            obj: v.as_object().unwrap().clone(),
        };
        let p = item(
            &row(serde_json::json!({"prompt": "hi", "output_tokens": 5})),
            None,
        )
        .unwrap()
        .unwrap();
        assert!(matches!(p, Item::Prompt { output_len: 5, .. }));
        let c = item(
            &row(serde_json::json!({"conversations": [{"value": "q"}, {"content": "a"}]})),
            Some(3),
        )
        .unwrap()
        .unwrap();
        assert!(
            matches!(c, Item::Conversation { ref prompt, ref reply } if prompt == "q" && reply == "a")
        );
        let short = item(
            &row(serde_json::json!({"conversation": [{"value": "q"}]})),
            None,
        );
        assert!(short.unwrap().is_none());
        let e = item(
            &row(serde_json::json!({"conversations": [{"value": "q"}, {"x": 1}]})),
            None,
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("f.jsonl:7") && e.contains("conversations[1].content"),
            "{e}"
        );
        let e = item(&row(serde_json::json!({"conversations": "q"})), None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("must be an array"), "{e}");
        let e = item(&row(serde_json::json!({"text": "q"})), None)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("f.jsonl:7") && e.contains("\"prompt\" is missing"),
            "{e}"
        );
    }
}

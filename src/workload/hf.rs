//! The `hf` dataset, for local copies of the hub datasets `vllm bench serve --dataset-name hf`
//! knows: `--dataset-path` is a `.json` / `.jsonl` file (a JSON list, or JSON Lines as
//! `datasets`' `to_json` writes them) or a directory holding one (`--hf-split` picks among
//! several); `--hf-name` (default: the path) says which hub dataset it is, which picks the
//! columns the way vLLM maps that dataset id:
//!
//! | `--hf-name` | prompt | output length (default) |
//! |---|---|---|
//! | likaixin/InstructCoder | `{input}\n\n{instruction} Just output the code, do not include any explanation.` | 200 |
//! | philschmid/mt-bench | `turns[0]` | 256 |
//! | openai/openai_humaneval | `prompt` | 256 |
//! | openai/gsm8k | `question` | 256 |
//! | AI-MO/aimo-validation-aime, AI-MO/NuminaMath-1.5, AI-MO/NuminaMath-CoT | `problem` | tokens of `solution`, kept if prompt 4..=2048 and total <= 32000 |
//! | Aeala/ShareGPT_Vicuna_unfiltered | `conversations[0].value` | tokens of `[1].value`, vLLM's ShareGPT filters |
//! | mgoin/mlperf-inference-llama2-data, -llama3.1-data | `question`, `system_prompt` as a system message | tokens of `output`, vLLM's ShareGPT filters |
//!
//! `--output-len` / `--hf-output-len` fixes the output length (and, as in vLLM, turns off the
//! filters that depend on it). Rows are shuffled with `--seed` unless `--disable-shuffle`,
//! taken in order, and oversampled up to `--num-prompts`. The multimodal datasets (images,
//! video, audio) are refused with a message, as are the text ones not built yet.
//!
//! Departures: no download from the hub and no parquet (convert to JSON Lines first, the error
//! says how); the shuffle is our seeded stream, not `datasets`' (same distribution, other
//! rows for a seed); token counts are without special tokens; vLLM renders the chat template
//! into InstructCoder, MT-Bench, HumanEval, GSM8K and MLPerf prompts client-side unless
//! `--skip-chat-template`, here that is `--apply-chat-template`'s job after loading.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, ensure};
use serde_json::Value;

use super::sharegpt::{entry_lines, take_in_order, LengthFilter};
use super::source::{self, kind, Row};
use super::{Ctx, DatasetArgs, Message, Sample};
use crate::tokenizer::Tokenizer;

/// How a dataset's rows become prompts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Columns {
    InstructCoder,
    MtBench,
    HumanEval,
    Gsm8k,
    Aimo,
    Conversation,
    MlPerf,
}

/// The text datasets this loader reads, by vLLM's dataset id.
const SUPPORTED: &[(&str, Columns)] = &[
    ("likaixin/InstructCoder", Columns::InstructCoder),
    ("philschmid/mt-bench", Columns::MtBench),
    ("openai/openai_humaneval", Columns::HumanEval),
    ("openai/gsm8k", Columns::Gsm8k),
    ("AI-MO/aimo-validation-aime", Columns::Aimo),
    ("AI-MO/NuminaMath-1.5", Columns::Aimo),
    ("AI-MO/NuminaMath-CoT", Columns::Aimo),
    ("Aeala/ShareGPT_Vicuna_unfiltered", Columns::Conversation),
    ("mgoin/mlperf-inference-llama2-data", Columns::MlPerf),
    ("mgoin/mlperf-inference-llama3.1-data", Columns::MlPerf),
];

/// vLLM's hub datasets this loader refuses, and why.
const REFUSED: &[(&str, &str)] = &[
    ("lmarena-ai/VisionArena-Chat", "needs its images"),
    ("lmarena-ai/vision-arena-bench-v0.1", "needs its images"),
    ("lmms-lab/LLaVA-OneVision-Data", "needs its images"),
    ("Lin-Chen/MMStar", "needs its images"),
    ("yale-nlp/MMVU", "needs its videos"),
    ("openslr/librispeech_asr", "needs its audio"),
    ("facebook/voxpopuli", "needs its audio"),
    ("LIUM/tedlium", "needs its audio"),
    ("edinburghcstr/ami", "needs its audio"),
    ("speechcolab/gigaspeech", "needs its audio"),
    ("kensho/spgispeech", "needs its audio"),
    ("vdaita/edit_5k_char", "is not built yet"),
    ("vdaita/edit_10k_char", "is not built yet"),
    ("zed-industries/zeta", "is not built yet"),
];

/// The dataset id's column mapping, or an error saying what is supported.
fn columns_for(name: &str) -> anyhow::Result<Columns> {
    if let Some((_, c)) = SUPPORTED.iter().find(|(id, _)| *id == name) {
        return Ok(*c);
    }
    let supported = SUPPORTED
        .iter()
        .map(|(id, _)| *id)
        .collect::<Vec<_>>()
        .join(", ");
    if let Some((id, why)) = REFUSED.iter().find(|(id, _)| *id == name) {
        bail!(
            "--hf-name {id}: this dataset {why}; servebench's hf loader reads text-only \
             datasets ({supported}); for synthetic images use --dataset-name image or random-mm"
        );
    }
    bail!(
        "--hf-name {name}: unknown dataset; the hf loader reads local copies of: {supported}. \
         Pass --hf-name with the hub id the file came from (it defaults to --dataset-path)"
    )
}

pub fn load(args: &DatasetArgs, ctx: &Ctx, tok: &Tokenizer) -> anyhow::Result<Vec<Sample>> {
    let path = args.path_for(
        "hf",
        "a local .json or .jsonl file of the dataset (or a directory holding one), with \
         --hf-name naming the hub dataset it came from",
    )?;
    let name = args.hf_name.as_deref().unwrap_or(path);
    let columns = columns_for(name)?;
    let file = data_file(path, args.hf_split.as_deref())?;
    let file = file.to_string_lossy().into_owned();
    let rows = read_rows(&file)?;

    let mut items = Vec::with_capacity(rows.len());
    for row in &rows {
        if let Some(item) = item(row, columns)? {
            items.push(item);
        }
    }
    drop(rows);
    let total = items.len();
    let items = source::ordered(items, ctx.seed, args.disable_shuffle);

    let fixed = args.output_len.or(args.hf_output_len);
    ensure!(
        fixed != Some(0),
        "--hf-output-len / --output-len 0: must be at least 1 token"
    );
    let samples = take_in_order(&items, ctx.num_prompts, |it| it.sample(columns, fixed, tok))?;
    ensure!(
        !samples.is_empty(),
        "{file}: none of the {total} rows passes vLLM's length filters for {name}; \
         --hf-output-len turns them off"
    );
    Ok(source::fit_count(
        samples,
        ctx.num_prompts,
        ctx.seed,
        args.no_oversample,
        "hf",
    ))
}

/// The file to read: `path` itself, or the one `.json` / `.jsonl` file in the directory
/// (searched two levels down; `--hf-split` picks by name among several).
fn data_file(path: &str, split: Option<&str>) -> anyhow::Result<PathBuf> {
    let p = Path::new(path);
    if !p.exists() {
        bail!(
            "--dataset-path {path}: no such file or directory. servebench does not download \
             from the hub: fetch the dataset's files first (e.g. `huggingface-cli download \
             --repo-type dataset ID --local-dir DIR`) and pass the local .json/.jsonl file with \
             --hf-name ID"
        );
    }
    if p.is_file() {
        ensure_json_like(p)?;
        return Ok(p.to_path_buf());
    }
    let mut found = Vec::new();
    let mut other = Vec::new();
    collect(p, 2, &mut found, &mut other)?;
    found.sort();
    if found.is_empty() {
        if let Some(columnar) = other.iter().find(|f| is_columnar(f)) {
            bail!("{}", columnar_error(columnar));
        }
        bail!("--dataset-path {path}: the directory holds no .json or .jsonl file");
    }
    if found.len() > 1 {
        if let Some(split) = split {
            found.retain(|f| {
                f.file_name()
                    .is_some_and(|n| n.to_string_lossy().contains(split))
            });
        }
    }
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => bail!(
            "--dataset-path {path}: no .json/.jsonl file has \"{}\" (--hf-split) in its name",
            split.unwrap_or_default()
        ),
        _ => bail!(
            "--dataset-path {path}: several data files ({}); pass one of them as \
             --dataset-path, or --hf-split to pick by name",
            found
                .iter()
                .map(|f| f.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

fn collect(
    dir: &Path,
    depth: usize,
    found: &mut Vec<PathBuf>,
    other: &mut Vec<PathBuf>,
) -> anyhow::Result<()> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| anyhow!("--dataset-path {}: cannot list ({e})", dir.display()))?;
    for entry in entries.flatten() {
        let p = entry.path();
        if p.is_dir() {
            if depth > 0
                && !p
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with('.'))
            {
                collect(&p, depth - 1, found, other)?;
            }
        } else if matches!(extension(&p).as_str(), "json" | "jsonl") {
            found.push(p);
        } else {
            other.push(p);
        }
    }
    Ok(())
}

fn extension(p: &Path) -> String {
    p.extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default()
}

fn is_columnar(p: &Path) -> bool {
    matches!(extension(p).as_str(), "parquet" | "arrow")
}

fn columnar_error(p: &Path) -> String {
    format!(
        "--dataset-path {}: parquet/arrow files are out of scope for the hf loader; convert to \
         JSON Lines first, e.g. python -c \"import datasets; \
         datasets.load_dataset('parquet', data_files='{}', split='train').to_json('data.jsonl')\" \
         and pass --dataset-path data.jsonl",
        p.display(),
        p.display()
    )
}

fn ensure_json_like(p: &Path) -> anyhow::Result<()> {
    if is_columnar(p) {
        bail!("{}", columnar_error(p));
    }
    Ok(())
}

/// The file's rows: JSON Lines, or the entries of a JSON list (each with its line).
fn read_rows(file: &str) -> anyhow::Result<Vec<Row<'_>>> {
    let text = source::read_text(file, "hf")?;
    if !text.trim_start().starts_with('[') {
        return source::read_jsonl(file, "hf");
    }
    let value: Value = serde_json::from_str(&text).map_err(|e| {
        anyhow!(
            "{file}:{}:{}: not valid JSON ({e}); the hf dataset is a JSON list or JSON Lines",
            e.line(),
            e.column()
        )
    })?;
    let Value::Array(entries) = value else {
        bail!("{file}: expected a JSON list of rows");
    };
    ensure!(
        !entries.is_empty(),
        "--dataset-path {file}: the list is empty (--dataset-name hf)"
    );
    let lines = entry_lines(&text);
    entries
        .into_iter()
        .enumerate()
        .map(|(i, v)| {
            let line = lines.get(i).copied().unwrap_or(0);
            match v {
                Value::Object(obj) => Ok(Row {
                    path: file,
                    line,
                    obj,
                }),
                other => Err(anyhow!(
                    "{file}:{line}: entry {i}: expected a JSON object, got {}",
                    kind(&other)
                )),
            }
        })
        .collect()
}

/// One row's text, before tokenizing.
#[derive(Clone, Debug)]
struct Item {
    prompt: String,
    /// Text whose token count is the output length when none is fixed.
    reply: Option<String>,
    system: Option<String>,
}

/// The row as an [`Item`]; `None` for a conversation with fewer than two turns.
fn item(row: &Row, columns: Columns) -> anyhow::Result<Option<Item>> {
    let plain = |prompt: &str| Item {
        prompt: prompt.to_string(),
        reply: None,
        system: None,
    };
    Ok(Some(match columns {
        Columns::InstructCoder => {
            let input = row.str("input")?;
            let instruction = row.str("instruction")?;
            plain(&format!(
                "{input}\n\n{instruction} Just output the code, do not include any explanation."
            ))
        }
        Columns::MtBench => match row.get("turns") {
            Some(Value::Array(turns)) => match turns.first() {
                Some(Value::String(s)) => plain(s),
                Some(other) => {
                    return Err(row.error(
                        "turns[0]",
                        &format!("must be a string, got {}", kind(other)),
                    ))
                }
                None => return Err(row.error("turns", "is empty")),
            },
            Some(other) => {
                return Err(row.error("turns", &format!("must be an array, got {}", kind(other))))
            }
            None => return Err(row.error("turns", "is missing")),
        },
        Columns::HumanEval => plain(row.str("prompt")?),
        Columns::Gsm8k => plain(row.str("question")?),
        Columns::Aimo => Item {
            prompt: row.str("problem")?.to_string(),
            reply: Some(row.str("solution")?.to_string()),
            system: None,
        },
        Columns::MlPerf => Item {
            prompt: row.str("question")?.to_string(),
            reply: Some(row.str("output")?.to_string()),
            system: Some(row.str("system_prompt")?.to_string()),
        },
        Columns::Conversation => {
            let turns = match row.get("conversations") {
                Some(Value::Array(t)) => t,
                Some(other) => {
                    return Err(row.error(
                        "conversations",
                        &format!("must be an array, got {}", kind(other)),
                    ))
                }
                None => return Err(row.error("conversations", "is missing")),
            };
            if turns.len() < 2 {
                return Ok(None);
            }
            let value = |i: usize| match turns[i].get("value") {
                Some(Value::String(s)) => Ok(s.clone()),
                Some(other) => Err(row.error(
                    &format!("conversations[{i}].value"),
                    &format!("must be a string, got {}", kind(other)),
                )),
                None => Err(row.error(&format!("conversations[{i}].value"), "is missing")),
            };
            Item {
                prompt: value(0)?,
                reply: Some(value(1)?),
                system: None,
            }
        }
    }))
}

impl Item {
    fn sample(
        &self,
        columns: Columns,
        fixed: Option<usize>,
        tok: &Tokenizer,
    ) -> anyhow::Result<Option<Sample>> {
        let prompt_len = tok.count(&self.prompt)?
            + match &self.system {
                Some(s) => tok.count(s)?,
                None => 0,
            };
        let default_output = match columns {
            Columns::InstructCoder => Some(200),
            Columns::MtBench | Columns::HumanEval | Columns::Gsm8k => Some(256),
            Columns::Aimo | Columns::Conversation | Columns::MlPerf => None,
        };
        let output_len = match (fixed.or(default_output), &self.reply) {
            (Some(n), _) => n,
            (None, Some(reply)) => tok.count(reply)?,
            (None, None) => bail!("hf: no output length for {columns:?}"),
        };
        // vLLM filters these on their reply length only; MLPerf's filter applies always.
        let filter = match columns {
            Columns::Aimo if fixed.is_none() => Some(LengthFilter {
                min_prompt: 4,
                min_output: 4,
                max_prompt: Some(2048),
                max_total: Some(32000),
            }),
            Columns::Conversation if fixed.is_none() => Some(LengthFilter::vllm(false)),
            Columns::MlPerf => Some(LengthFilter::vllm(false)),
            _ => None,
        };
        if filter.is_some_and(|f| !f.keeps(prompt_len, output_len)) {
            return Ok(None);
        }
        let mut sample = Sample::text(self.prompt.clone(), prompt_len, output_len);
        if let Some(system) = &self.system {
            sample.history.push(Message {
                role: "system".into(),
                content: system.clone(),
            });
        }
        Ok(Some(sample))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_map_to_columns_and_others_are_refused_clearly() {
        assert_eq!(
            columns_for("philschmid/mt-bench").unwrap(),
            Columns::MtBench
        );
        assert_eq!(columns_for("AI-MO/NuminaMath-1.5").unwrap(), Columns::Aimo);
        let e = columns_for("lmarena-ai/VisionArena-Chat")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("images") && e.contains("likaixin/InstructCoder"),
            "{e}"
        );
        let e = columns_for("some/thing").unwrap_err().to_string();
        assert!(
            e.contains("unknown dataset") && e.contains("openai/gsm8k"),
            "{e}"
        );
    }

    #[test]
    fn mlperf_rows_carry_the_system_prompt_as_history() {
        let row = Row {
            path: "m.jsonl",
            line: 1,
            obj: serde_json::json!({
                "system_prompt": "You answer briefly.",
                "question": "Why is the sky blue on a clear afternoon?",
                "output": "Air scatters short blue wavelengths of sunlight more than red ones."
            })
            .as_object()
            .unwrap()
            .clone(),
        };
        let tok = Tokenizer::embedded_default();
        let it = item(&row, Columns::MlPerf).unwrap().unwrap();
        let s = it.sample(Columns::MlPerf, None, &tok).unwrap().unwrap();
        assert_eq!(s.history.len(), 1);
        assert_eq!(s.history[0].role, "system");
        assert_eq!(
            s.prompt_len,
            tok.count("You answer briefly.").unwrap()
                + tok
                    .count("Why is the sky blue on a clear afternoon?")
                    .unwrap()
        );
        assert_eq!(
            s.output_len,
            tok.count("Air scatters short blue wavelengths of sunlight more than red ones.")
                .unwrap()
        );
    }
}

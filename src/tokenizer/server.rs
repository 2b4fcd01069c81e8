//! Server-side alignment of random-style prompts, as `vllm bench serve` does it: the client's
//! tokenizer builds each prompt to an exact token count, but the server's tokenizer may count
//! the same text differently (another tokenizer, another version, a GGUF vocabulary). Before
//! the clock starts the first prompt is sent to the server's `POST /tokenize`; when the counts
//! differ, every prompt is tokenized by the server, cut to its target length and turned back
//! into text with `POST /detokenize` (and counted once more, since a cut can re-merge), so the
//! server sees the lengths that were asked for.
//!
//! The `/tokenize` dialect is detected from the reply:
//! - vLLM: `{"prompt","add_special_tokens"}` → `{"count","max_model_len","tokens","token_strs"}`,
//!   `/detokenize` `{"tokens"}` → `{"prompt"}`;
//! - SGLang: the same request → `{"tokens","count","max_model_len"}`, `/detokenize` → `{"text"}`;
//! - llama.cpp: `{"content","add_special"}` → `{"tokens"}` (a request without `content` gets
//!   `{"tokens":[]}`), `/detokenize` → `{"content"}`.
//!
//! Anything else (no route, an error, an unknown shape) gives a warning that names the server,
//! and the run goes on with the client's prompts.

use serde_json::{json, Value};

use crate::engine::{control, target::Target};
use crate::workload::{Prompt, Sample};

/// Concurrent pre-run requests while aligning (vLLM uses 64; control requests open a
/// connection each, so fewer keep a small server responsive).
const WORKERS: usize = 16;

/// Datasets whose prompts are built to an exact token count from token ids, which is what
/// vLLM aligns.
pub fn applies_to(dataset_name: &str) -> bool {
    matches!(
        dataset_name,
        "random" | "prefix_repetition" | "prefix-repetition"
    )
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    Vllm,
    Sglang,
    LlamaCpp,
}

impl Dialect {
    pub fn name(self) -> &'static str {
        match self {
            Dialect::Vllm => "vllm",
            Dialect::Sglang => "sglang",
            Dialect::LlamaCpp => "llamacpp",
        }
    }
}

/// The ids of a `/tokenize` reply and the dialect its shape shows; None for any other shape.
pub fn parse_tokenize_reply(body: &[u8]) -> Option<(Dialect, Vec<u32>)> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let obj = v.as_object()?;
    let ids = obj
        .get("tokens")?
        .as_array()?
        .iter()
        .map(|t| {
            // llama.cpp with `with_pieces`: [{"id": 1, "piece": "a"}, ...]
            let id = t.as_u64().or_else(|| t.get("id")?.as_u64())?;
            u32::try_from(id).ok()
        })
        .collect::<Option<Vec<u32>>>()?;
    let dialect = match (obj.get("count"), obj.contains_key("token_strs")) {
        (Some(c), _) if c.as_u64() != Some(ids.len() as u64) => return None,
        (Some(_), true) => Dialect::Vllm,
        (Some(_), false) => Dialect::Sglang,
        (None, _) => Dialect::LlamaCpp,
    };
    Some((dialect, ids))
}

/// The text of a `/detokenize` reply: `prompt` (vLLM), `text` (SGLang) or `content`
/// (llama.cpp).
pub fn parse_detokenize_reply(body: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(body).ok()?;
    ["prompt", "text", "content"]
        .iter()
        .find_map(|k| v.get(*k)?.as_str().map(str::to_string))
}

/// A server whose `/tokenize` dialect is known.
pub struct ServerTokenizer<'a> {
    target: &'a Target,
    model: &'a str,
    pub dialect: Dialect,
}

impl<'a> ServerTokenizer<'a> {
    /// Asks the server to tokenize `probe`, in vLLM's request shape and then in llama.cpp's;
    /// the server and the probe's ids, or why the server has no usable `/tokenize`.
    pub fn detect(
        target: &'a Target,
        model: &'a str,
        probe: &str,
    ) -> Result<(ServerTokenizer<'a>, Vec<u32>), String> {
        let openai = json!({"model": model, "prompt": probe, "add_special_tokens": false});
        let first = match control::post(target, "/tokenize", &openai.to_string()) {
            Ok(body) => match parse_tokenize_reply(&body) {
                // llama.cpp answers a request without `content` with no tokens.
                Some((Dialect::LlamaCpp, ids)) if ids.is_empty() && !probe.is_empty() => {
                    "an empty token list".to_string()
                }
                Some((dialect, ids)) => return Ok((Self::with(target, model, dialect), ids)),
                None => format!("an unexpected reply: {}", snippet(&body)),
            },
            Err(e) => format!("{e:#}"),
        };
        let llama = json!({"content": probe, "add_special": false, "with_pieces": false});
        match control::post(target, "/tokenize", &llama.to_string()) {
            Ok(body) => match parse_tokenize_reply(&body) {
                Some((Dialect::LlamaCpp, ids)) if !ids.is_empty() || probe.is_empty() => {
                    Ok((Self::with(target, model, Dialect::LlamaCpp), ids))
                }
                _ => Err(first),
            },
            Err(_) => Err(first),
        }
    }

    fn with(target: &'a Target, model: &'a str, dialect: Dialect) -> ServerTokenizer<'a> {
        ServerTokenizer {
            target,
            model,
            dialect,
        }
    }

    pub fn tokenize(&self, text: &str) -> anyhow::Result<Vec<u32>> {
        let body = match self.dialect {
            Dialect::LlamaCpp => {
                json!({"content": text, "add_special": false, "with_pieces": false})
            }
            _ => json!({"model": self.model, "prompt": text, "add_special_tokens": false}),
        };
        let reply = control::post(self.target, "/tokenize", &body.to_string())?;
        parse_tokenize_reply(&reply)
            .map(|(_, ids)| ids)
            .ok_or_else(|| anyhow::anyhow!("/tokenize: unexpected reply {}", snippet(&reply)))
    }

    pub fn detokenize(&self, ids: &[u32]) -> anyhow::Result<String> {
        let body = match self.dialect {
            Dialect::LlamaCpp => json!({ "tokens": ids }),
            _ => json!({"model": self.model, "tokens": ids}),
        };
        let reply = control::post(self.target, "/detokenize", &body.to_string())?;
        parse_detokenize_reply(&reply)
            .ok_or_else(|| anyhow::anyhow!("/detokenize: unexpected reply {}", snippet(&reply)))
    }
}

/// What alignment did, for the console and the result file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The server has no usable `/tokenize`; prompts are the client's.
    Unavailable { reason: String },
    /// The server counts the first prompt as the client does; nothing changed.
    Agreed { dialect: Dialect },
    /// Every prompt was recounted by the server.
    Aligned {
        dialect: Dialect,
        prompts: usize,
        /// Cut to the target length and detokenized by the server.
        truncated: usize,
        /// Shorter than the target on the server: sent as they were, counted as the server
        /// counts them.
        short: usize,
        /// The server failed to tokenize or detokenize them: left as the client built them.
        failed: usize,
    },
}

impl Outcome {
    /// The `server_alignment` object of the result file.
    pub fn to_json(&self) -> Value {
        match self {
            Outcome::Unavailable { reason } => {
                json!({"status": "unavailable", "reason": reason})
            }
            Outcome::Agreed { dialect } => {
                json!({"status": "agreed", "dialect": dialect.name()})
            }
            Outcome::Aligned {
                dialect,
                prompts,
                truncated,
                short,
                failed,
            } => json!({
                "status": "aligned",
                "dialect": dialect.name(),
                "prompts": prompts,
                "truncated": truncated,
                "shorter": short,
                "failed": failed,
            }),
        }
    }
}

/// Aligns the text prompts of `samples` with the server's tokenizer (see the module
/// comment). `server` names the server in messages. Never fails: problems are warnings.
pub fn align(samples: &mut [Sample], target: &Target, model: &str, server: &str) -> Outcome {
    let Some(first) = samples.iter().find_map(|s| match &s.prompt {
        Prompt::Text(t) => Some((t.clone(), s.prompt_len)),
        Prompt::Ids(_) => None,
    }) else {
        return Outcome::Unavailable {
            reason: "the prompts are token ids: the server reads them as they are".into(),
        };
    };
    let (client, probe_ids) = match ServerTokenizer::detect(target, model, &first.0) {
        Ok(found) => found,
        Err(why) => {
            eprintln!(
                "WARNING: server-side alignment skipped: {server} has no /tokenize servebench \
                 understands ({why}); prompt lengths are the client tokenizer's counts"
            );
            return Outcome::Unavailable { reason: why };
        }
    };
    let dialect = client.dialect;
    if probe_ids.len() == first.1 {
        println!(
            "Server tokenizer check: {server} /tokenize ({}) counts the first prompt as {} \
             tokens, as the client does; prompts are left as built",
            dialect.name(),
            first.1
        );
        return Outcome::Agreed { dialect };
    }
    println!(
        "Server tokenizer mismatch: {server} /tokenize ({}) counts the first prompt as {} \
         tokens, the client's tokenizer {}; re-tokenizing every prompt on the server",
        dialect.name(),
        probe_ids.len(),
        first.1
    );
    let chunk = samples.len().div_ceil(WORKERS).max(1);
    let tallies: Vec<[usize; 4]> = std::thread::scope(|scope| {
        let handles: Vec<_> = samples
            .chunks_mut(chunk)
            .map(|part| {
                let client = &client;
                scope.spawn(move || {
                    let mut t = [0usize; 4];
                    for s in part {
                        t[realign(client, s) as usize] += 1;
                    }
                    t
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or([0, 0, 0, 0]))
            .collect()
    });
    let sum = |i: usize| tallies.iter().map(|t| t[i]).sum::<usize>();
    let outcome = Outcome::Aligned {
        dialect,
        prompts: samples.len(),
        truncated: sum(Step::Truncated as usize),
        short: sum(Step::Short as usize),
        failed: sum(Step::Failed as usize),
    };
    if let Outcome::Aligned {
        truncated,
        short,
        failed,
        ..
    } = &outcome
    {
        println!(
            "Aligned {} prompts with the server's tokenizer: {truncated} cut to length, \
             {short} shorter than asked (kept), {failed} left as built",
            samples.len()
        );
        if *failed > 0 {
            eprintln!(
                "WARNING: {server} could not tokenize or detokenize {failed} prompts; they keep \
                 the client's text and count"
            );
        }
    }
    outcome
}

#[derive(Clone, Copy)]
enum Step {
    Exact = 0,
    Truncated = 1,
    Short = 2,
    Failed = 3,
}

/// One prompt recounted by the server, cut to its target when longer. Detokenized text does
/// not always re-tokenize to the same ids (pieces merge or split across the cut), so the cut
/// text is counted again; while it misses, one id fewer is kept, a few times at most, and the
/// closest cut wins (one at or under the target before one over it).
fn realign(client: &ServerTokenizer<'_>, s: &mut Sample) -> Step {
    const TRIES: usize = 6;
    let Prompt::Text(text) = &s.prompt else {
        return Step::Exact;
    };
    let target = (s.prompt_len as i64 - s.mismatch).max(0) as usize;
    let Ok(ids) = client.tokenize(text) else {
        return Step::Failed;
    };
    let (step, ids) = match ids.len().cmp(&target) {
        std::cmp::Ordering::Less => (Step::Short, ids),
        std::cmp::Ordering::Equal => (Step::Exact, ids),
        std::cmp::Ordering::Greater => {
            let miss = |n: usize| (n.abs_diff(target), n > target);
            let mut best: Option<(String, Vec<u32>)> = None;
            for keep in (target.saturating_sub(TRIES - 1)..=target).rev() {
                let Ok(cut) = client.detokenize(&ids[..keep]) else {
                    return Step::Failed;
                };
                let Ok(recount) = client.tokenize(&cut) else {
                    return Step::Failed;
                };
                let exact = recount.len() == target;
                if best
                    .as_ref()
                    .is_none_or(|(_, b)| miss(recount.len()) < miss(b.len()))
                {
                    best = Some((cut, recount));
                }
                if exact {
                    break;
                }
            }
            let Some((cut, recount)) = best else {
                return Step::Failed;
            };
            s.prompt = Prompt::Text(cut);
            (Step::Truncated, recount)
        }
    };
    s.prompt_len = ids.len();
    s.mismatch = ids.len() as i64 - target as i64;
    if s.token_ids.is_some() {
        s.token_ids = Some(ids);
    }
    step
}

fn snippet(body: &[u8]) -> String {
    // Scrubbed before it is cut, so no part of a key the server echoes can show.
    let text = crate::secrets::scrub(&String::from_utf8_lossy(body)).into_owned();
    text.chars()
        .take(200)
        .collect::<String>()
        .trim()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dialects_from_reply_shapes() {
        let p = |s: &str| parse_tokenize_reply(s.as_bytes());
        assert_eq!(
            p(r#"{"count":2,"max_model_len":8,"tokens":[5,7],"token_strs":null}"#),
            Some((Dialect::Vllm, vec![5, 7]))
        );
        assert_eq!(
            p(r#"{"tokens":[5],"count":1,"max_model_len":8}"#),
            Some((Dialect::Sglang, vec![5]))
        );
        assert_eq!(
            p(r#"{"tokens":[3,4]}"#),
            Some((Dialect::LlamaCpp, vec![3, 4]))
        );
        assert_eq!(
            p(r#"{"tokens":[{"id":9,"piece":"a"}]}"#),
            Some((Dialect::LlamaCpp, vec![9]))
        );
        for bad in [
            r#"{"count":3,"tokens":[1]}"#,
            r#"{"tokens":["a"]}"#,
            r#"{"tokens":[-1]}"#,
            r#"{"ids":[1]}"#,
            "[1,2]",
            "not json",
        ] {
            assert_eq!(p(bad), None, "{bad}");
        }
    }

    #[test]
    fn detokenize_replies() {
        let d = |s: &str| parse_detokenize_reply(s.as_bytes());
        assert_eq!(d(r#"{"prompt":"a b"}"#).as_deref(), Some("a b"));
        assert_eq!(d(r#"{"text":"x"}"#).as_deref(), Some("x"));
        assert_eq!(d(r#"{"content":"y"}"#).as_deref(), Some("y"));
        assert_eq!(d(r#"{"content":3}"#), None);
    }

    #[test]
    fn only_random_style_datasets_align() {
        assert!(applies_to("random") && applies_to("prefix_repetition"));
        assert!(!applies_to("sharegpt") && !applies_to("random-ids"));
    }
}

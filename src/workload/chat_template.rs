//! `--apply-chat-template`: the tokenizer's own Jinja chat template, rendered client-side, as
//! `vllm bench serve` and `sglang.bench_serving` do with `tokenizer.apply_chat_template(...,
//! tokenize=False, add_generation_prompt=True)`.
//!
//! Where the template comes from, first found wins:
//! 1. `--chat-template FILE` (or the template text itself, when no such file exists and the
//!    text holds Jinja tags, as vLLM allows);
//! 2. `chat_template.jinja` next to the tokenizer (newer transformers save it there);
//! 3. `"chat_template"` in `tokenizer_config.json` next to the tokenizer: a string, or a list
//!    of `{"name", "template"}` of which `default` is taken.
//!
//! "Next to the tokenizer" is the directory given as the tokenizer, or the directory of the
//! `tokenizer.json` file given. `bos_token`, `eos_token`, `unk_token` and `pad_token` come
//! from `tokenizer_config.json` (strings or `{"content": …}` objects).
//!
//! The environment matches transformers': `trim_blocks` and `lstrip_blocks` on, loop controls,
//! `raise_exception(msg)`, `strftime_now(fmt)`, a `tojson` that does not escape HTML
//! characters, Python's `str`/`dict` methods (`.strip()`, `.startswith()`, `.items()`, …)
//! and `tools`/`documents` passed as none.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context};
use minijinja::value::{Kwargs, Value, ValueKind};
use minijinja::{Environment, Error, ErrorKind};
use serde_json::Value as Json;

use super::{DatasetArgs, Prompt, Sample};
use crate::tokenizer::Tokenizer;

const NAME: &str = "chat_template";
/// What [`Tokenizer::embedded_default`] reports as its id.
const EMBEDDED_ID: &str = "servebench-default";

pub struct ChatTemplate {
    env: Environment<'static>,
    /// Where the template came from, for errors.
    origin: String,
    /// Special tokens the template may print, by variable name.
    tokens: BTreeMap<&'static str, String>,
}

impl std::fmt::Debug for ChatTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatTemplate")
            .field("origin", &self.origin)
            .field("tokens", &self.tokens)
            .finish_non_exhaustive()
    }
}

impl ChatTemplate {
    pub fn for_tokenizer(tok: &Tokenizer, args: &DatasetArgs) -> anyhow::Result<ChatTemplate> {
        let dir = tokenizer_dir(tok);
        let config = match &dir {
            Some(dir) => read_config(&dir.join("tokenizer_config.json"))?,
            None => None,
        };
        let tokens = special_tokens(config.as_ref());

        let (source, origin) = if let Some(given) = args.chat_template.as_deref() {
            template_arg(given)?
        } else {
            let Some(dir) = dir else {
                let which = if tok.id() == EMBEDDED_ID {
                    "the built-in default tokenizer has no chat template".to_string()
                } else {
                    format!("tokenizer {} is not a local file or directory", tok.id())
                };
                bail!(
                    "--apply-chat-template: {which}; pass --chat-template FILE, or --tokenizer \
                     DIR where DIR holds tokenizer.json and a tokenizer_config.json with a \
                     \"chat_template\""
                );
            };
            let jinja = dir.join("chat_template.jinja");
            if jinja.is_file() {
                let text = std::fs::read_to_string(&jinja)
                    .with_context(|| format!("cannot read {}", jinja.display()))?;
                (text, jinja.display().to_string())
            } else {
                let path = dir.join("tokenizer_config.json");
                let Some(config) = &config else {
                    bail!(
                        "--apply-chat-template: {} is missing, so tokenizer {} has no chat \
                         template; pass --chat-template FILE",
                        path.display(),
                        tok.id()
                    );
                };
                (
                    template_in_config(config, &path)?,
                    path.display().to_string(),
                )
            }
        };
        ChatTemplate::new(source, origin, tokens)
    }

    /// A template from its text; `origin` names it in errors.
    pub fn from_source(source: &str, origin: &str) -> anyhow::Result<ChatTemplate> {
        ChatTemplate::new(source.to_string(), origin.to_string(), BTreeMap::new())
    }

    fn new(
        source: String,
        origin: String,
        tokens: BTreeMap<&'static str, String>,
    ) -> anyhow::Result<ChatTemplate> {
        let mut env = Environment::new();
        let syntax = minijinja::syntax::SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .build()
            .map_err(|e| anyhow!("chat template syntax config: {e}"))?;
        env.set_syntax(syntax);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function("raise_exception", raise_exception);
        env.add_function("strftime_now", strftime_now);
        env.add_filter("tojson", tojson);
        env.add_template_owned(NAME, source)
            .map_err(|e| anyhow!("chat template {origin}: {}", describe(&e)))?;
        Ok(ChatTemplate {
            env,
            origin,
            tokens,
        })
    }

    /// Renders the sample's history and prompt into one text prompt and recounts its tokens.
    pub fn apply(&self, sample: &mut Sample, tok: &Tokenizer) -> anyhow::Result<()> {
        let Prompt::Text(prompt) = &sample.prompt else {
            bail!(
                "--apply-chat-template needs text prompts; this dataset sends token ids \
                 (drop --apply-chat-template, or use a dataset with text prompts)"
            );
        };
        let message = |role: &str, content: &str| {
            Value::from(BTreeMap::from([
                ("role", Value::from(role)),
                ("content", Value::from(content)),
            ]))
        };
        let messages: Vec<Value> = sample
            .history
            .iter()
            .map(|m| message(&m.role, &m.content))
            .chain(std::iter::once(message("user", prompt)))
            .collect();
        let rendered = self.render(messages)?;
        sample.prompt_len = tok.count(&rendered)?;
        sample.prompt = Prompt::Text(rendered);
        sample.history.clear();
        // The ids were those of the bare prompt.
        sample.token_ids = None;
        Ok(())
    }

    fn render(&self, messages: Vec<Value>) -> anyhow::Result<String> {
        let mut ctx: BTreeMap<&str, Value> = self
            .tokens
            .iter()
            .map(|(k, v)| (*k, Value::from(v.as_str())))
            .collect();
        ctx.insert("messages", Value::from(messages));
        ctx.insert("add_generation_prompt", Value::from(true));
        ctx.insert("tools", Value::from(()));
        ctx.insert("documents", Value::from(()));
        let template = self
            .env
            .get_template(NAME)
            .map_err(|e| anyhow!("chat template {}: {}", self.origin, describe(&e)))?;
        template
            .render(Value::from(ctx))
            .map_err(|e| anyhow!("chat template {}: {}", self.origin, describe(&e)))
    }
}

/// The error with its template line, without minijinja's debug dump.
fn describe(e: &Error) -> String {
    let mut text = match e.kind() {
        // raise_exception's message is the template author's words: show them alone.
        ErrorKind::InvalidOperation if e.detail().is_some() => {
            e.detail().unwrap_or_default().to_string()
        }
        _ => e.to_string(),
    };
    if let Some(line) = e.line() {
        if !text.contains("line") {
            text.push_str(&format!(" (line {line})"));
        }
    }
    text
}

/// The directory the tokenizer came from; None for the embedded one.
fn tokenizer_dir(tok: &Tokenizer) -> Option<PathBuf> {
    // Hub ids: the snapshot directory in the HF cache.
    if let Some(dir) = tok.dir() {
        return Some(dir.to_path_buf());
    }
    let path = Path::new(tok.id());
    if path.is_dir() {
        Some(path.to_path_buf())
    } else if path.is_file() {
        Some(
            path.parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."))
                .to_path_buf(),
        )
    } else {
        None
    }
}

fn read_config(path: &Path) -> anyhow::Result<Option<Json>> {
    if !path.is_file() {
        return Ok(None);
    }
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let json = serde_json::from_str(&text).map_err(|e| {
        anyhow!(
            "{}:{}:{}: not valid JSON ({e})",
            path.display(),
            e.line(),
            e.column()
        )
    })?;
    Ok(Some(json))
}

/// `--chat-template`: a file, or the template itself.
fn template_arg(given: &str) -> anyhow::Result<(String, String)> {
    let path = Path::new(given);
    if path.is_file() {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("--chat-template {given}: cannot read"))?;
        return Ok((text, given.to_string()));
    }
    if given.contains("{%") || given.contains("{{") {
        return Ok((given.to_string(), "given with --chat-template".to_string()));
    }
    bail!("--chat-template {given}: no such file (give a Jinja template file or its text)")
}

/// `"chat_template"` of a tokenizer_config.json: a string, or named templates.
fn template_in_config(config: &Json, path: &Path) -> anyhow::Result<String> {
    let p = path.display();
    match config.get("chat_template") {
        Some(Json::String(s)) => Ok(s.clone()),
        Some(Json::Array(named)) => {
            let names: Vec<&str> = named
                .iter()
                .filter_map(|t| t.get("name").and_then(Json::as_str))
                .collect();
            named
                .iter()
                .find(|t| t.get("name").and_then(Json::as_str) == Some("default"))
                .and_then(|t| t.get("template"))
                .and_then(Json::as_str)
                .map(str::to_string)
                .ok_or_else(|| {
                    anyhow!(
                        "{p}: field \"chat_template\" lists templates {names:?} but none named \
                         \"default\" with a \"template\" string; pass --chat-template FILE"
                    )
                })
        }
        Some(other) => bail!(
            "{p}: field \"chat_template\" must be a string or a list of {{\"name\", \
             \"template\"}}, got {}",
            super::source::kind(other)
        ),
        None => bail!(
            "{p}: field \"chat_template\" is missing, so the tokenizer has no chat template; \
             pass --chat-template FILE"
        ),
    }
}

fn special_tokens(config: Option<&Json>) -> BTreeMap<&'static str, String> {
    let mut out = BTreeMap::new();
    let Some(config) = config else {
        return out;
    };
    for name in ["bos_token", "eos_token", "unk_token", "pad_token"] {
        let text = match config.get(name) {
            Some(Json::String(s)) => Some(s.clone()),
            Some(Json::Object(o)) => o.get("content").and_then(Json::as_str).map(str::to_string),
            _ => None,
        };
        if let Some(text) = text {
            out.insert(name, text);
        }
    }
    out
}

fn raise_exception(message: String) -> Result<Value, Error> {
    Err(Error::new(ErrorKind::InvalidOperation, message))
}

/// Local time formatted with a strftime pattern; a bad pattern is an error, not a panic.
fn strftime_now(format: String) -> Result<Value, Error> {
    use chrono::format::{Item, StrftimeItems};
    let items: Vec<Item> = StrftimeItems::new(&format).collect();
    if items.iter().any(|i| matches!(i, Item::Error)) {
        return Err(Error::new(
            ErrorKind::InvalidOperation,
            format!("strftime_now: bad format {format:?}"),
        ));
    }
    let now = chrono::Local::now();
    Ok(Value::from(
        now.format_with_items(items.into_iter()).to_string(),
    ))
}

/// transformers' `tojson`: `json.dumps(x, ensure_ascii=False, indent=…)`, no HTML escaping.
fn tojson(value: &Value, indent: Option<Value>, kwargs: Kwargs) -> Result<Value, Error> {
    let indent = match indent {
        Some(v) => Some(v),
        None => kwargs.get::<Option<Value>>("indent")?,
    };
    let sort_keys = kwargs.get::<Option<bool>>("sort_keys")?.unwrap_or(false);
    kwargs.assert_all_used()?;
    let json = to_json(value, sort_keys)?;
    let text = match indent.and_then(|v| v.as_usize()) {
        Some(width) => pretty(&json, width),
        None => python_dumps(&json),
    };
    Ok(Value::from_safe_string(text))
}

fn to_json(value: &Value, sort_keys: bool) -> Result<Json, Error> {
    Ok(match value.kind() {
        ValueKind::Undefined | ValueKind::None => Json::Null,
        ValueKind::Bool => Json::Bool(value.is_true()),
        ValueKind::Number => match value.as_i64() {
            Some(i) => Json::from(i),
            None => f64::try_from(value.clone())
                .ok()
                .and_then(serde_json::Number::from_f64)
                .map_or(Json::Null, Json::Number),
        },
        ValueKind::String => Json::String(value.as_str().unwrap_or_default().to_string()),
        ValueKind::Map => {
            let mut entries = Vec::new();
            for key in value.try_iter()? {
                let item = value.get_item(&key)?;
                let key = key.as_str().map_or_else(|| key.to_string(), str::to_string);
                entries.push((key, to_json(&item, sort_keys)?));
            }
            if sort_keys {
                entries.sort_by(|a, b| a.0.cmp(&b.0));
            }
            Json::Object(entries.into_iter().collect())
        }
        ValueKind::Seq | ValueKind::Iterable => Json::Array(
            value
                .try_iter()?
                .map(|v| to_json(&v, sort_keys))
                .collect::<Result<_, _>>()?,
        ),
        // Bytes, plain objects, and kinds later minijinja versions add.
        _ => Json::String(value.to_string()),
    })
}

/// `json.dumps` without indent: `", "` and `": "` separators.
fn python_dumps(json: &Json) -> String {
    let mut out = String::new();
    write_json(json, &mut out);
    out
}

fn write_json(json: &Json, out: &mut String) {
    match json {
        Json::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_json(item, out);
            }
            out.push(']');
        }
        Json::Object(map) => {
            out.push('{');
            for (i, (k, v)) in map.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                out.push_str(&Json::String(k.clone()).to_string());
                out.push_str(": ");
                write_json(v, out);
            }
            out.push('}');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

/// `json.dumps(indent=n)`: `","` and `": "` separators, one item per line.
fn pretty(json: &Json, width: usize) -> String {
    let mut buf = Vec::new();
    let indent = vec![b' '; width];
    let formatter = serde_json::ser::PrettyFormatter::with_indent(&indent);
    let mut ser = serde_json::Serializer::with_formatter(&mut buf, formatter);
    use serde::Serialize;
    // Serialising a serde_json::Value into memory cannot fail.
    let _ = json.serialize(&mut ser);
    String::from_utf8(buf).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::Message;

    const TEMPLATE: &str = "{% for m in messages %}{% if m['role'] not in ['system', 'user', \
        'assistant'] %}{{ raise_exception('bad role ' + m['role']) }}{% endif %}\
        <|{{ m.role }}|>{{ m.content.strip() }}\n{% endfor %}\
        {% if add_generation_prompt %}<|assistant|>{% endif %}";

    #[test]
    fn template_renders_history_and_prompt() {
        let t = ChatTemplate::from_source(TEMPLATE, "test").unwrap();
        let tok = Tokenizer::embedded_default();
        let mut s = Sample::text("  hello world ".into(), 2, 5);
        s.history.push(Message {
            role: "system".into(),
            content: "be brief".into(),
        });
        s.token_ids = Some(vec![1, 2]);
        t.apply(&mut s, &tok).unwrap();
        let want = "<|system|>be brief\n<|user|>hello world\n<|assistant|>";
        assert_eq!(s.prompt, Prompt::Text(want.into()));
        assert_eq!(s.prompt_len, tok.count(want).unwrap());
        assert!(s.history.is_empty() && s.token_ids.is_none());
        assert_eq!(s.output_len, 5);
    }

    #[test]
    fn raise_exception_and_id_prompts_are_clear_errors() {
        let t = ChatTemplate::from_source(TEMPLATE, "test").unwrap();
        let tok = Tokenizer::embedded_default();
        let mut s = Sample::text("hi".into(), 1, 1);
        s.history.push(Message {
            role: "tool".into(),
            content: "x".into(),
        });
        let e = t.apply(&mut s, &tok).unwrap_err().to_string();
        assert!(e.contains("bad role tool") && e.contains("test"), "{e}");
        let mut ids = Sample::text(String::new(), 2, 1);
        ids.prompt = Prompt::Ids(vec![5, 6]);
        let e = t.apply(&mut ids, &tok).unwrap_err().to_string();
        assert!(e.contains("needs text prompts"), "{e}");
        let e = ChatTemplate::from_source("{% for %}", "broken.jinja")
            .unwrap_err()
            .to_string();
        assert!(e.contains("broken.jinja"), "{e}");
    }

    #[test]
    fn hf_helpers_behave_like_transformers() {
        let t = ChatTemplate::from_source(
            "{{ messages[0].content | tojson }}|{{ {'a': [1, 'x<y']} | tojson }}|\
             {{ tools is none }}|{{ '%Y' | length }}|{{ strftime_now('%Y') | length }}|\
             {% for m in messages %}{% if loop.first %}{% continue %}{% endif %}{% endfor %}\
             {{ 'a,b'.split(',') | join('+') }}|{{ 'Hi'.startswith('H') }}",
            "t",
        )
        .unwrap();
        let out = t
            .render(vec![Value::from(BTreeMap::from([(
                "content",
                Value::from("é<&>'"),
            )]))])
            .unwrap();
        assert_eq!(out, "\"é<&>'\"|{\"a\": [1, \"x<y\"]}|True|2|4|a+b|True");
        let bad = ChatTemplate::from_source("{{ strftime_now('%Q') }}", "t").unwrap();
        assert!(bad.render(vec![]).is_err());
    }

    #[test]
    fn embedded_tokenizer_is_recognised() {
        assert_eq!(Tokenizer::embedded_default().id(), EMBEDDED_ID);
    }

    #[test]
    fn chat_template_is_shareable() {
        fn sync<T: Send + Sync>() {}
        sync::<ChatTemplate>();
    }
}

//! A Hugging Face `tokenizer.json` behind the handful of calls a benchmark client needs.
//!
//! Encoding and decoding run the same Rust code as the Python `tokenizers` library, so ids
//! match `transformers`' fast tokenizers exactly. The few properties `vllm bench serve` reads
//! from a `transformers` tokenizer (`vocab_size`, `all_special_ids`,
//! `num_special_tokens_to_add()`) are computed once at load time with the same meaning.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context};
use tokenizers::PostProcessor;

pub mod hub;
pub mod server;

pub use hub::HubOptions;

/// The embedded tokenizer: DeepSeek V4's byte-level BPE cut to its first 8,192 ids.
const EMBEDDED_JSON: &[u8] = include_bytes!("../../assets/default-tokenizer.json");
const EMBEDDED_ID: &str = "servebench-default";

pub struct Tokenizer {
    inner: tokenizers::Tokenizer,
    id: String,
    /// The directory whose tokenizer_config.json / chat_template.jinja belong to this
    /// tokenizer (the hub snapshot for hub ids); None for the embedded one.
    dir: Option<PathBuf>,
    /// The hub commit the files came from, for hub ids.
    revision: Option<String>,
    /// SHA-256 of the tokenizer.json bytes, lower-case hex.
    sha256: String,
    vocab_size: usize,
    special_ids: Vec<u32>,
    num_special_tokens_to_add: usize,
}

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokenizer")
            .field("id", &self.id)
            .field("revision", &self.revision)
            .field("vocab_size", &self.vocab_size)
            .field("special_ids", &self.special_ids)
            .finish_non_exhaustive()
    }
}

impl Tokenizer {
    /// Loads a `tokenizer.json`, given either as the file or as a directory holding it.
    pub fn from_path(path: &Path) -> anyhow::Result<Tokenizer> {
        let file: PathBuf = if path.is_dir() {
            let candidate = path.join("tokenizer.json");
            if !candidate.is_file() {
                bail!(
                    "tokenizer path {}: the directory holds no tokenizer.json; pass a \
                     tokenizer.json file or a directory that contains one",
                    path.display()
                );
            }
            candidate
        } else if path.is_file() {
            path.to_path_buf()
        } else {
            bail!(
                "tokenizer path {}: no such file or directory; pass a tokenizer.json file or \
                 a directory that contains one",
                path.display()
            );
        };
        let bytes = std::fs::read(&file)
            .with_context(|| format!("tokenizer path {}: cannot read", file.display()))?;
        let mut tok = Self::from_json(&bytes, path.display().to_string()).with_context(|| {
            format!(
                "tokenizer path {}: not a Hugging Face tokenizer.json",
                file.display()
            )
        })?;
        tok.dir = Some(match file.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        });
        Ok(tok)
    }

    /// What `--tokenizer` / `--model` name: a tokenizer.json, a directory holding one, or a
    /// hub id (`org/name`) read from the HF cache, downloaded into it first when absent.
    /// A local path wins over a hub id of the same spelling, as in transformers.
    pub fn load(spec: &str, hub: &HubOptions) -> anyhow::Result<Tokenizer> {
        let path = Path::new(spec);
        if path.exists() {
            return Self::from_path(path);
        }
        if !hub::looks_like_hub_id(spec) {
            bail!(
                "tokenizer {spec}: no such file or directory, and not a hub id (org/name); \
                 pass a tokenizer.json file, a directory that contains one, or a hub id"
            );
        }
        let snapshot = hub::resolve(spec, hub)?;
        let mut tok = Self::from_path(&snapshot.dir)?;
        tok.id = spec.to_string();
        tok.revision = Some(snapshot.commit);
        Ok(tok)
    }

    /// The tokenizer compiled into the binary, for demos, tests and the mock server.
    pub fn embedded_default() -> Tokenizer {
        // The asset is fixed at build time and loading it is covered by the tests, so a
        // failure here is a broken build, not bad input.
        Self::from_json(EMBEDDED_JSON, EMBEDDED_ID.to_string())
            .expect("embedded default tokenizer must load")
    }

    fn from_json(bytes: &[u8], id: String) -> anyhow::Result<Tokenizer> {
        let mut inner = tokenizers::Tokenizer::from_bytes(bytes).map_err(|e| anyhow!("{e}"))?;
        // transformers switches off whatever truncation/padding the file carries unless a
        // call asks for it; lengths must not be capped behind our back.
        inner
            .with_truncation(None)
            .map_err(|e| anyhow!("cannot disable truncation: {e}"))?;
        inner.with_padding(None);

        let vocab_size = inner.get_vocab_size(false);
        let mut special_ids: Vec<u32> = inner
            .get_added_tokens_decoder()
            .into_iter()
            .filter(|(_, token)| token.special)
            .map(|(id, _)| id)
            .collect();
        special_ids.sort_unstable();
        let num_special_tokens_to_add = inner
            .get_post_processor()
            .map_or(0, |p| p.added_tokens(false));

        Ok(Tokenizer {
            inner,
            id,
            dir: None,
            revision: None,
            sha256: sha256_hex(bytes),
            vocab_size,
            special_ids,
            num_special_tokens_to_add,
        })
    }

    /// What to report as `tokenizer_id`: the path as given, or `servebench-default`.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Where tokenizer_config.json and chat_template.jinja are looked for: the directory
    /// given, the directory of the file given, or the hub snapshot. None when embedded.
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// The hub commit (40 hex digits) the files were read from, for hub ids.
    pub fn revision(&self) -> Option<&str> {
        self.revision.as_deref()
    }

    /// SHA-256 of the tokenizer.json bytes (lower-case hex), so a result file pins the exact
    /// vocabulary even when the id is a local path.
    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    /// Token ids of `text` without special tokens (`add_special_tokens=False`).
    pub fn encode(&self, text: &str) -> anyhow::Result<Vec<u32>> {
        let encoding = self
            .inner
            .encode_fast(text, false)
            .map_err(|e| anyhow!("tokenizer {}: cannot encode text: {e}", self.id))?;
        Ok(encoding.get_ids().to_vec())
    }

    /// Number of tokens in `text` without special tokens.
    pub fn count(&self, text: &str) -> anyhow::Result<usize> {
        let encoding = self
            .inner
            .encode_fast(text, false)
            .map_err(|e| anyhow!("tokenizer {}: cannot encode text: {e}", self.id))?;
        Ok(encoding.len())
    }

    /// Text of `ids`, special tokens included (transformers' `decode` default). Ids outside
    /// the vocabulary are dropped, as the Python library does.
    pub fn decode(&self, ids: &[u32]) -> anyhow::Result<String> {
        self.inner
            .decode(ids, false)
            .map_err(|e| anyhow!("tokenizer {}: cannot decode ids: {e}", self.id))
    }

    /// transformers' `tokenizer.vocab_size`: the model's vocabulary without added tokens.
    pub fn vocab_size(&self) -> usize {
        self.vocab_size
    }

    /// Ids of the added tokens marked special, ascending (`all_special_ids` for tokenizers
    /// whose config lists the same tokens as special, which is the common case).
    pub fn special_ids(&self) -> &[u32] {
        &self.special_ids
    }

    /// How many ids the post-processor adds around a single sequence.
    pub fn num_special_tokens_to_add(&self) -> usize {
        self.num_special_tokens_to_add
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, bytes);
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_tokenizer_matches_python_ids() {
        let tok = Tokenizer::embedded_default();
        assert_eq!(tok.id(), "servebench-default");
        // Expected ids from the Python `tokenizers` package (0.23.3) on the same file:
        // Tokenizer.from_file(...).encode(s, add_special_tokens=False).ids
        let cases: [(&str, &[u32]); 3] = [
            ("hello world", &[263, 862, 81, 2058]),
            (
                "Über naïve café 12345 —\n\tdone!",
                &[
                    130, 253, 581, 3119, 130, 110, 427, 274, 2797, 619, 223, 6895, 1883, 2136, 201,
                    200, 70, 791, 3,
                ],
            ),
            ("<｜begin▁of▁sentence｜>x", &[0, 90]),
        ];
        for (text, expected) in cases {
            assert_eq!(tok.encode(text).unwrap(), expected, "{text:?}");
            assert_eq!(tok.count(text).unwrap(), expected.len());
            assert_eq!(tok.decode(expected).unwrap(), text);
        }
        // Python: decode([0, 3, 100, 5000, 8191], skip_special_tokens=False)
        assert_eq!(
            tok.decode(&[0, 3, 100, 5000, 8191]).unwrap(),
            "<｜begin▁of▁sentence｜>!\u{fffd}\u{fffd}care"
        );
    }

    #[test]
    fn embedded_tokenizer_properties() {
        let tok = Tokenizer::embedded_default();
        assert_eq!(tok.vocab_size(), 8192);
        assert_eq!(tok.special_ids(), &[0, 1, 2]);
        assert_eq!(tok.num_special_tokens_to_add(), 0);
    }

    #[test]
    fn special_tokens_survive_decode() {
        let tok = Tokenizer::embedded_default();
        let text = tok.decode(&[0, 3]).unwrap();
        assert!(text.starts_with("<｜begin▁of▁sentence｜>"), "{text}");
        // Added tokens in text are matched even without add_special_tokens.
        assert_eq!(tok.encode(&text).unwrap(), vec![0, 3]);
    }

    #[test]
    fn missing_path_names_the_path() {
        let err = Tokenizer::from_path(Path::new("/nonexistent/tok")).unwrap_err();
        let msg = format!("{err:#}");
        assert!(msg.contains("/nonexistent/tok"), "{msg}");
        assert!(msg.contains("tokenizer.json"), "{msg}");
    }

    #[test]
    fn directory_without_tokenizer_json_is_an_error() {
        let dir = std::env::temp_dir().join(format!("sb-tok-empty-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let err = Tokenizer::from_path(&dir).unwrap_err();
        assert!(format!("{err:#}").contains("holds no tokenizer.json"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn loads_from_directory_and_file() {
        let dir = std::env::temp_dir().join(format!("sb-tok-dir-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("tokenizer.json");
        std::fs::write(&file, EMBEDDED_JSON).unwrap();
        let from_dir = Tokenizer::from_path(&dir).unwrap();
        let from_file = Tokenizer::from_path(&file).unwrap();
        assert_eq!(from_dir.id(), dir.display().to_string());
        assert_eq!(from_file.id(), file.display().to_string());
        assert_eq!(
            from_dir.encode("Über naïve café").unwrap(),
            from_file.encode("Über naïve café").unwrap()
        );
        std::fs::write(&file, b"{not json").unwrap();
        let err = Tokenizer::from_path(&file).unwrap_err();
        assert!(format!("{err:#}").contains("not a Hugging Face tokenizer.json"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

//! Hub ids (`org/name`) for `--tokenizer` / `--model`: the tokenizer files are read from the
//! standard Hugging Face cache, and downloaded into it (with HF's own `hf-hub` client) only
//! when they are not there yet and the hub is not switched off.
//!
//! The cache layout is the one `huggingface_hub` writes and reads:
//! `<cache>/models--org--name/refs/<revision>` holds a commit hash and
//! `<cache>/models--org--name/snapshots/<commit>/tokenizer.json` the file. A revision that is
//! itself a commit hash is looked up in `snapshots/` directly.
//!
//! Environment, as `huggingface_hub` reads it: `HF_HUB_CACHE` (else `$HF_HOME/hub`, else
//! `$XDG_CACHE_HOME/huggingface/hub`, else `~/.cache/huggingface/hub`), `HF_TOKEN` (else the
//! `token` file `huggingface-cli login` writes), `HF_HUB_OFFLINE` / `TRANSFORMERS_OFFLINE`,
//! `HF_ENDPOINT`.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail};
use hf_hub::api::sync::{ApiBuilder, ApiError};
use hf_hub::{Cache, Repo, RepoType};

/// Fetched with the tokenizer when the repo has them: special tokens and the chat template.
const COMPANIONS: [&str; 3] = [
    "tokenizer_config.json",
    "special_tokens_map.json",
    "chat_template.jinja",
];
const TOKENIZER_FILE: &str = "tokenizer.json";
const DEFAULT_ENDPOINT: &str = "https://huggingface.co";

/// Where and how hub ids are resolved.
#[derive(Clone, Debug)]
pub struct HubOptions {
    /// Branch, tag or commit; `main` when not given.
    pub revision: String,
    /// The `hub/` directory of the HF cache.
    pub cache_dir: PathBuf,
    pub token: Option<String>,
    /// No network: the cache alone answers.
    pub offline: bool,
    pub endpoint: String,
}

impl HubOptions {
    /// From the environment (see the module comment) and `--tokenizer-revision`.
    pub fn from_env(revision: Option<&str>) -> HubOptions {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        let home = var("HOME").map(PathBuf::from);
        let hf_home = var("HF_HOME").map(PathBuf::from).or_else(|| {
            let xdg = var("XDG_CACHE_HOME")
                .map(PathBuf::from)
                .or_else(|| home.as_ref().map(|h| h.join(".cache")));
            xdg.map(|d| d.join("huggingface"))
        });
        let hf_home = hf_home.unwrap_or_else(|| PathBuf::from(".cache/huggingface"));
        let cache_dir = var("HF_HUB_CACHE")
            .map(PathBuf::from)
            .unwrap_or_else(|| hf_home.join("hub"));
        let token = var("HF_TOKEN")
            .or_else(|| var("HUGGING_FACE_HUB_TOKEN"))
            .or_else(|| {
                let file = var("HF_TOKEN_PATH")
                    .map(PathBuf::from)
                    .unwrap_or_else(|| hf_home.join("token"));
                std::fs::read_to_string(file)
                    .ok()
                    .map(|t| t.trim().to_string())
                    .filter(|t| !t.is_empty())
            });
        let truthy = |k: &str| {
            var(k).is_some_and(|v| {
                matches!(
                    v.trim().to_ascii_lowercase().as_str(),
                    "1" | "on" | "yes" | "true"
                )
            })
        };
        HubOptions {
            revision: revision
                .filter(|r| !r.is_empty())
                .unwrap_or("main")
                .to_string(),
            cache_dir,
            token,
            offline: truthy("HF_HUB_OFFLINE") || truthy("TRANSFORMERS_OFFLINE"),
            endpoint: var("HF_ENDPOINT")
                .map(|e| e.trim_end_matches('/').to_string())
                .unwrap_or_else(|| DEFAULT_ENDPOINT.to_string()),
        }
    }
}

/// A resolved snapshot: the directory holding tokenizer.json and the commit it belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    pub dir: PathBuf,
    pub commit: String,
}

/// Whether `s` is spelled like a hub model id: `name` or `org/name`, of letters, digits,
/// `-`, `_` and `.`, without `..` or a leading/trailing separator.
pub fn looks_like_hub_id(s: &str) -> bool {
    let part_ok = |p: &str| {
        !p.is_empty()
            && p.len() <= 96
            && !p.starts_with(['.', '-'])
            && !p.ends_with('.')
            && !p.contains("..")
            && p.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    };
    match s.split_once('/') {
        Some((org, name)) => part_ok(org) && part_ok(name),
        None => part_ok(s),
    }
}

/// The snapshot of `id` at `opts.revision`: from the cache, else downloaded into it.
pub fn resolve(id: &str, opts: &HubOptions) -> anyhow::Result<Snapshot> {
    if let Some(found) = cached(&opts.cache_dir, id, &opts.revision) {
        return Ok(found);
    }
    if opts.offline {
        bail!(
            "tokenizer {id}: the hub is off (HF_HUB_OFFLINE) and the HF cache at {} holds no \
             {TOKENIZER_FILE} for revision {}; run once with the network (or `huggingface-cli \
             download {id} {TOKENIZER_FILE} tokenizer_config.json` elsewhere and copy the cache), \
             point HF_HOME / HF_HUB_CACHE at a filled cache, or pass --tokenizer PATH",
            repo_dir(&opts.cache_dir, id).display(),
            opts.revision
        );
    }
    download(id, opts)
}

fn repo_dir(cache_dir: &Path, id: &str) -> PathBuf {
    cache_dir.join(format!("models--{}", id.replace('/', "--")))
}

/// The cached snapshot of `id` at `revision` that holds tokenizer.json, if any.
pub fn cached(cache_dir: &Path, id: &str, revision: &str) -> Option<Snapshot> {
    let repo = repo_dir(cache_dir, id);
    let commit = match std::fs::read_to_string(repo.join("refs").join(revision)) {
        Ok(c) => c.trim().to_string(),
        Err(_) if is_commit_hash(revision) => revision.to_string(),
        Err(_) => return None,
    };
    if !is_commit_hash(&commit) {
        return None;
    }
    let dir = repo.join("snapshots").join(&commit);
    dir.join(TOKENIZER_FILE)
        .is_file()
        .then_some(Snapshot { dir, commit })
}

fn is_commit_hash(s: &str) -> bool {
    s.len() == 40 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

fn download(id: &str, opts: &HubOptions) -> anyhow::Result<Snapshot> {
    let api = ApiBuilder::from_cache(Cache::new(opts.cache_dir.clone()))
        .with_endpoint(opts.endpoint.clone())
        .with_token(opts.token.clone())
        .with_progress(false)
        .with_retries(2)
        .build()
        .map_err(|e| anyhow!("tokenizer {id}: cannot set up the hub client: {e}"))?;
    let repo = api.repo(Repo::with_revision(
        id.to_string(),
        RepoType::Model,
        opts.revision.clone(),
    ));
    eprintln!(
        "Downloading {TOKENIZER_FILE} of {id} (revision {}) from {} into {}",
        opts.revision,
        opts.endpoint,
        opts.cache_dir.display()
    );
    let file = repo
        .download(TOKENIZER_FILE)
        .map_err(|e| anyhow!("{}", refusal(id, opts, &e)))?;
    for extra in COMPANIONS {
        // Optional files: most repos lack one or two; a missing one is no error.
        let _ = repo.download(extra);
    }
    let dir = file
        .parent()
        .ok_or_else(|| anyhow!("tokenizer {id}: the hub client returned {}", file.display()))?
        .to_path_buf();
    let commit = dir
        .file_name()
        .map(|c| c.to_string_lossy().into_owned())
        .unwrap_or_default();
    Ok(Snapshot { dir, commit })
}

/// What to tell the user when the download of `id` failed with `err`.
fn refusal(id: &str, opts: &HubOptions, err: &ApiError) -> String {
    let mut err = err;
    while let ApiError::TooManyRetries(inner) = err {
        err = inner;
    }
    match err {
        ApiError::RequestError(e) => match e.as_ref() {
            ureq::Error::Status(status, response) => status_message(
                id,
                &opts.revision,
                &opts.endpoint,
                *status,
                response.header("x-error-code"),
                opts.token.is_some(),
            ),
            ureq::Error::Transport(t) => format!(
                "tokenizer {id}: cannot reach {} ({t}); on a machine without network fill the HF \
                 cache elsewhere and set HF_HUB_OFFLINE=1, or pass --tokenizer PATH",
                opts.endpoint
            ),
        },
        other => format!(
            "tokenizer {id}: downloading {TOKENIZER_FILE} into {} failed: {other}",
            opts.cache_dir.display()
        ),
    }
}

/// The message for a refused hub request: HTTP `status` and the hub's `X-Error-Code` header
/// (`RepoNotFound`, `GatedRepo`, `EntryNotFound`, `RevisionNotFound`). The hub answers 401
/// both for private/missing repos and for gated ones without a token, so the code decides
/// before the status does.
pub fn status_message(
    id: &str,
    revision: &str,
    endpoint: &str,
    status: u16,
    error_code: Option<&str>,
    has_token: bool,
) -> String {
    let page = format!("{endpoint}/{id}");
    match (error_code, status) {
        (Some("GatedRepo"), _) | (None, 403) => {
            let token = if has_token {
                "the token in HF_TOKEN has no access to it yet"
            } else {
                "no token was given"
            };
            format!(
                "tokenizer {id}: the model is gated and {token}: accept its terms at {page}, \
                 then set HF_TOKEN to a token of that account (HTTP {status})"
            )
        }
        (Some("EntryNotFound"), _) => format!(
            "tokenizer {id}: the repo has no {TOKENIZER_FILE} at revision {revision}; it may \
             ship only a slow (sentencepiece) tokenizer: pass --tokenizer with a repo or \
             directory that has {TOKENIZER_FILE} (HTTP {status})"
        ),
        (Some("RevisionNotFound"), _) => format!(
            "tokenizer {id}: no revision {revision} (--tokenizer-revision); name a branch, \
             tag or commit of {page} (HTTP {status})"
        ),
        (Some("RepoNotFound"), _) | (None, 401 | 404) => {
            let private = if has_token {
                "or HF_TOKEN cannot see it if it is private"
            } else {
                "or set HF_TOKEN if it is a private repo"
            };
            format!(
                "tokenizer {id}: no such model on {endpoint}: check the id ({private}), or \
                 pass --tokenizer PATH to a local tokenizer.json (HTTP {status})"
            )
        }
        (code, _) => format!(
            "tokenizer {id}: the hub refused the download of {TOKENIZER_FILE} (HTTP {status}{}); \
             retry later, or pass --tokenizer PATH",
            code.map(|c| format!(", {c}")).unwrap_or_default()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hub_id_spelling() {
        for ok in ["gpt2", "Qwen/Qwen2.5-0.5B-Instruct", "org_x/m.v1"] {
            assert!(looks_like_hub_id(ok), "{ok}");
        }
        for bad in [
            "",
            "/abs/path",
            "./rel",
            "a/b/c",
            "a/../b",
            "a b",
            "org/",
            ".hidden",
        ] {
            assert!(!looks_like_hub_id(bad), "{bad}");
        }
    }

    #[test]
    fn messages_say_what_to_do() {
        let m = |code, status, token| {
            status_message("org/m", "main", DEFAULT_ENDPOINT, status, code, token)
        };
        let gated = m(Some("GatedRepo"), 401, false);
        assert!(
            gated.contains("gated") && gated.contains("HF_TOKEN"),
            "{gated}"
        );
        assert!(gated.contains("https://huggingface.co/org/m"), "{gated}");
        assert!(m(None, 403, true).contains("has no access"));
        let missing = m(Some("RepoNotFound"), 401, false);
        assert!(missing.contains("no such model"), "{missing}");
        assert!(m(None, 404, false).contains("no such model"));
        assert!(m(Some("EntryNotFound"), 404, false).contains("no tokenizer.json"));
        assert!(m(Some("RevisionNotFound"), 404, false).contains("no revision main"));
        assert!(m(None, 500, false).contains("HTTP 500"));
    }

    #[test]
    fn cache_lookup_by_ref_and_by_commit() {
        let root = std::env::temp_dir().join(format!("sb-hub-{}", std::process::id()));
        let commit = "0123456789abcdef0123456789abcdef01234567";
        let repo = root.join("models--org--m");
        std::fs::create_dir_all(repo.join("refs")).unwrap();
        std::fs::create_dir_all(repo.join("snapshots").join(commit)).unwrap();
        assert_eq!(cached(&root, "org/m", "main"), None);
        std::fs::write(repo.join("refs/main"), format!("{commit}\n")).unwrap();
        assert_eq!(
            cached(&root, "org/m", "main"),
            None,
            "no tokenizer.json yet"
        );
        std::fs::write(
            repo.join("snapshots").join(commit).join(TOKENIZER_FILE),
            "{}",
        )
        .unwrap();
        let found = cached(&root, "org/m", "main").unwrap();
        assert_eq!(found.commit, commit);
        assert_eq!(cached(&root, "org/m", commit), Some(found));
        assert_eq!(cached(&root, "org/m", "v2"), None);
        let opts = HubOptions {
            revision: "v2".into(),
            cache_dir: root.clone(),
            token: None,
            offline: true,
            endpoint: DEFAULT_ENDPOINT.into(),
        };
        let err = resolve("org/m", &opts).unwrap_err().to_string();
        assert!(
            err.contains("HF_HUB_OFFLINE") && err.contains("revision v2"),
            "{err}"
        );
        std::fs::remove_dir_all(&root).unwrap();
    }
}

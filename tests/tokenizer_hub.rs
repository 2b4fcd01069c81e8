//! Tokenizers named the way users name them: a file, a directory, a hub id read from a
//! prepared HF cache with the hub switched off, and the hub's refusals (gated, not found)
//! answered by a local stand-in for the hub, so no test touches the network.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};

use servebench::tokenizer::{HubOptions, Tokenizer};

mod common;

use common::temp_dir;

const TOKENIZER: &[u8] = include_bytes!("../assets/default-tokenizer.json");
const COMMIT: &str = "5f0e1c2d3b4a59687766554433221100ffeeddcc";

/// `$HF_HOME/hub/models--org--name/{refs/main, snapshots/<sha>/...}` as huggingface_hub
/// writes it.
fn fill_cache(hf_home: &Path, id: &str) -> PathBuf {
    let repo = hf_home
        .join("hub")
        .join(format!("models--{}", id.replace('/', "--")));
    let snap = repo.join("snapshots").join(COMMIT);
    std::fs::create_dir_all(&snap).unwrap();
    std::fs::create_dir_all(repo.join("refs")).unwrap();
    std::fs::write(repo.join("refs/main"), COMMIT).unwrap();
    std::fs::write(snap.join("tokenizer.json"), TOKENIZER).unwrap();
    std::fs::write(
        snap.join("tokenizer_config.json"),
        r#"{"chat_template": "{% for m in messages %}<{{ m.role }}>{{ m.content }}{% endfor %}"}"#,
    )
    .unwrap();
    snap
}

fn opts(hf_home: &Path, offline: bool, endpoint: &str) -> HubOptions {
    HubOptions {
        revision: "main".into(),
        cache_dir: hf_home.join("hub"),
        token: None,
        offline,
        endpoint: endpoint.into(),
    }
}

#[test]
fn file_directory_and_cached_hub_id_load_the_same_tokenizer() {
    let dir = temp_dir("local");
    std::fs::write(dir.join("tokenizer.json"), TOKENIZER).unwrap();
    let none = opts(&dir, true, "http://127.0.0.1:9");
    let from_file = Tokenizer::load(dir.join("tokenizer.json").to_str().unwrap(), &none).unwrap();
    let from_dir = Tokenizer::load(dir.to_str().unwrap(), &none).unwrap();
    assert_eq!(from_dir.dir(), Some(dir.as_path()));
    assert_eq!(from_file.dir(), Some(dir.as_path()));
    assert_eq!(from_file.revision(), None);

    let home = temp_dir("home");
    let snap = fill_cache(&home, "org/name");
    let hub = Tokenizer::load("org/name", &opts(&home, true, "http://127.0.0.1:9")).unwrap();
    assert_eq!(hub.id(), "org/name");
    assert_eq!(hub.revision(), Some(COMMIT));
    assert_eq!(hub.dir(), Some(snap.as_path()));
    // A commit as the revision is read from snapshots/ without a ref.
    let mut by_commit = opts(&home, true, "http://127.0.0.1:9");
    by_commit.revision = COMMIT.into();
    assert_eq!(
        Tokenizer::load("org/name", &by_commit).unwrap().revision(),
        Some(COMMIT)
    );

    let text = "Über naïve café 12345";
    for t in [&from_file, &from_dir, &hub] {
        assert_eq!(t.encode(text).unwrap(), from_file.encode(text).unwrap());
        assert_eq!(t.sha256(), from_file.sha256());
    }
    assert_eq!(from_file.sha256().len(), 64);
    // Other bytes, another hash.
    let other = dir.join("other.json");
    let mut bytes = TOKENIZER.to_vec();
    bytes.push(b'\n');
    std::fs::write(&other, bytes).unwrap();
    let other = Tokenizer::load(other.to_str().unwrap(), &none).unwrap();
    assert_ne!(other.sha256(), from_file.sha256());
    std::fs::remove_dir_all(&dir).unwrap();
    std::fs::remove_dir_all(&home).unwrap();
}

#[test]
fn offline_with_nothing_cached_says_what_to_do() {
    let home = temp_dir("offline");
    let err = Tokenizer::load("org/absent", &opts(&home, true, "http://127.0.0.1:9"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("HF_HUB_OFFLINE"), "{err}");
    assert!(err.contains("models--org--absent"), "{err}");
    assert!(err.contains("--tokenizer PATH"), "{err}");
    let err = Tokenizer::load("not a path or id", &opts(&home, true, "http://127.0.0.1:9"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("not a hub id"), "{err}");
    std::fs::remove_dir_all(&home).unwrap();
}

/// A stand-in hub that answers every request with `status` and `X-Error-Code: code`.
fn refusing_hub(status: u16, code: &'static str) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut s) = conn else { return };
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let body = format!("{{\"error\":\"{code}\"}}");
            let _ = write!(
                s,
                "HTTP/1.1 {status} Refused\r\nX-Error-Code: {code}\r\nContent-Length: {}\r\n\
                 Connection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    format!("http://{addr}")
}

#[test]
fn gated_and_missing_repos_are_named_with_the_fix() {
    let home = temp_dir("refused");
    let gated = refusing_hub(401, "GatedRepo");
    let err = Tokenizer::load("org/gated", &opts(&home, false, &gated))
        .unwrap_err()
        .to_string();
    assert!(err.contains("gated") && err.contains("HF_TOKEN"), "{err}");
    assert!(err.contains(&format!("{gated}/org/gated")), "{err}");

    let missing = refusing_hub(404, "RepoNotFound");
    let err = Tokenizer::load("org/missing", &opts(&home, false, &missing))
        .unwrap_err()
        .to_string();
    assert!(err.contains("no such model"), "{err}");
    assert!(err.contains("--tokenizer PATH"), "{err}");
    std::fs::remove_dir_all(&home).unwrap();
}

//! Every cargo-fuzz target's check (src/fuzzing.rs) on the stable toolchain: the checked-in
//! seeds (fuzz/seeds/TARGET/) and then seeded mutations of them and random bytes, so the
//! invariants run in every `cargo test` without cargo-fuzz. SERVEBENCH_FUZZ_ITERS sets the
//! number of generated inputs per target (default 2000).

use std::path::Path;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use servebench::fuzzing::TARGETS;

/// Tokens the mutator splices in, so random edits reach framing and JSON states.
const TOKENS: &[&[u8]] = &[
    b"\r\n",
    b"\n\n",
    b"\r",
    b"data: ",
    b"event: ",
    b": ping\n\n",
    b"0\r\n\r\n",
    b"a;x=1\r\n",
    b"HTTP/1.1 200 OK\r\n",
    b"Transfer-Encoding: chunked\r\n",
    b"Content-Length: 7\r\n",
    b"Connection: close\r\n",
    b"[DONE]",
    b"\"text\":",
    b"\"choices\":[{",
    b"\"delta\":{\"content\":",
    b"\"usage\":{\"prompt_tokens\":1}",
    b"\"error\":",
    b"\\u00e9",
    b"\\ud83d\\ude00",
    b"\\ud800",
    b"\\",
    b"\"",
    b"null",
    b"1e400",
    b"\xef\xbb\xbf",
    b"\xff",
];

fn seeds(target: &str) -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/seeds")
        .join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files.iter().map(|p| std::fs::read(p).unwrap()).collect()
}

fn mutate(rng: &mut StdRng, input: &mut Vec<u8>) {
    for _ in 0..rng.gen_range(1..=6) {
        let at = rng.gen_range(0..=input.len());
        match rng.gen_range(0..6) {
            0 if at < input.len() => input[at] = rng.gen(),
            1 => input.insert(at, rng.gen()),
            2 if at < input.len() => {
                let end = rng.gen_range(at..=input.len().min(at + 16));
                input.drain(at..end);
            }
            3 => {
                let token = TOKENS[rng.gen_range(0..TOKENS.len())];
                input.splice(at..at, token.iter().copied());
            }
            4 if at < input.len() => {
                // Duplicate a stretch: repeated events, keys and chunks.
                let end = rng.gen_range(at..=input.len().min(at + 64));
                let copy = input[at..end].to_vec();
                input.splice(at..at, copy);
            }
            // The selector bytes up front choose cuts and APIs: vary them often.
            _ if !input.is_empty() => {
                let i = rng.gen_range(0..input.len().min(3));
                input[i] = rng.gen();
            }
            _ => {}
        }
    }
}

fn iterations() -> usize {
    std::env::var("SERVEBENCH_FUZZ_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000)
}

fn replay(name: &str) {
    let target = TARGETS
        .iter()
        .find(|t| t.name == name)
        .unwrap_or_else(|| panic!("no target {name}"));
    let seeds = seeds(name);
    assert!(!seeds.is_empty(), "{name}: no seeds");
    for seed in &seeds {
        (target.check)(seed);
    }
    // Loading a dataset writes a file and tokenizes: far slower than a parser.
    let n = if name == "datasets" {
        iterations() / 20
    } else {
        iterations()
    };
    let mut rng = StdRng::seed_from_u64(0x5e7e_be9c ^ name.len() as u64);
    for i in 0..n {
        let input = if i % 8 == 7 {
            let len = rng.gen_range(0..512);
            (0..len).map(|_| rng.gen()).collect()
        } else {
            let mut input = seeds[rng.gen_range(0..seeds.len())].clone();
            mutate(&mut rng, &mut input);
            input
        };
        let outcome = std::panic::catch_unwind(|| (target.check)(&input));
        if let Err(panic) = outcome {
            let why = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            panic!("{name}: input {i} fails ({why}): {input:?}");
        }
    }
}

#[test]
fn every_target_has_a_test_and_seeds() {
    let manifest =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/Cargo.toml"))
            .unwrap();
    let this = include_str!("fuzz_replay.rs");
    for t in TARGETS {
        assert!(
            manifest.contains(&format!("name = \"{}\"", t.name)),
            "{} is not a cargo-fuzz target",
            t.name
        );
        assert!(
            this.contains(&format!("fn {}() {{", t.name)),
            "{} has no replay test",
            t.name
        );
        assert!(!seeds(t.name).is_empty(), "{} has no seeds", t.name);
    }
}

#[test]
fn http_head() {
    replay("http_head");
}

#[test]
fn chunked() {
    replay("chunked");
}

#[test]
fn sse() {
    replay("sse");
}

#[test]
fn response() {
    replay("response");
}

#[test]
fn completions() {
    replay("completions");
}

#[test]
fn formats() {
    replay("formats");
}

#[test]
fn whole_body() {
    replay("whole_body");
}

#[test]
fn stream_completions() {
    replay("stream_completions");
}

#[test]
fn stream_chat() {
    replay("stream_chat");
}

#[test]
fn stream_responses() {
    replay("stream_responses");
}

#[test]
fn stream_sglang() {
    replay("stream_sglang");
}

#[test]
fn stream_tgi() {
    replay("stream_tgi");
}

#[test]
fn stream_triton() {
    replay("stream_triton");
}

#[test]
fn datasets() {
    replay("datasets");
}

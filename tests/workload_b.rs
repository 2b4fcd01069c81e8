//! Datasets timed_trace, mooncake, burstgpt, sonnet and prefix_repetition, loaded from the
//! small files in tests/data/workloads through `workload::load`.

use std::collections::HashSet;

use servebench::backend::Api;
use servebench::tokenizer::Tokenizer;
use servebench::workload::{self, sonnet::BASE_PROMPT, Ctx, DatasetArgs, Prompt, Sample};

fn data(name: &str) -> String {
    format!("{}/tests/data/workloads/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn args(name: &str, file: Option<&str>) -> DatasetArgs {
    DatasetArgs {
        dataset_name: name.into(),
        dataset_path: file.map(data),
        ..Default::default()
    }
}

fn ctx(num_prompts: usize, seed: u64) -> Ctx {
    Ctx {
        num_prompts,
        seed,
        api: Api::Completions,
    }
}

fn load(a: &DatasetArgs, c: &Ctx) -> anyhow::Result<Vec<Sample>> {
    workload::load(a, c, &Tokenizer::embedded_default())
}

fn err(a: &DatasetArgs, c: &Ctx) -> String {
    match load(a, c) {
        Ok(s) => panic!("expected an error, got {} samples", s.len()),
        Err(e) => format!("{e:#}"),
    }
}

fn ids(s: &Sample) -> &[u32] {
    match &s.prompt {
        Prompt::Ids(ids) => ids,
        Prompt::Text(t) => panic!("expected ids, got text {t:?}"),
    }
}

fn text(s: &Sample) -> &str {
    s.prompt.as_text().expect("a text prompt")
}

fn common_prefix<'a>(a: &'a str, b: &str) -> &'a str {
    let n = a
        .char_indices()
        .zip(b.chars())
        .take_while(|((_, x), y)| x == y)
        .last()
        .map_or(0, |((i, c), _)| i + c.len_utf8());
    &a[..n]
}

// --- timed_trace ---------------------------------------------------------------------------

fn timed(chunk: usize) -> DatasetArgs {
    DatasetArgs {
        timed_trace_chunk_hash_size: chunk,
        ..args("timed_trace", Some("timed_trace.jsonl"))
    }
}

#[test]
fn timed_trace_lengths_blocks_and_times() {
    let s = load(&timed(16), &ctx(100, 1)).unwrap();
    assert_eq!(s.len(), 6, "every row once, no oversampling");
    let lens: Vec<usize> = s.iter().map(|x| x.prompt_len).collect();
    assert_eq!(lens, [40, 40, 20, 36, 12, 16]);
    for x in &s {
        assert_eq!(ids(x).len(), x.prompt_len);
    }
    let outs: Vec<usize> = s.iter().map(|x| x.output_len).collect();
    assert_eq!(outs, [8, 9, 5, 7, 3, 4]);
    // Rows 0 and 1 share hash ids 1, 2 and then differ (3 vs 4).
    assert_eq!(ids(&s[0])[..32], ids(&s[1])[..32]);
    assert_ne!(ids(&s[0])[32..], ids(&s[1])[32..]);
    // Hash 1's block is the same wherever it appears, cut short or not.
    assert_eq!(ids(&s[3])[..32], ids(&s[0])[..32]);
    assert_eq!(ids(&s[4])[..], ids(&s[0])[..12]);
    // Different hash ids, different blocks.
    assert_ne!(ids(&s[2])[..16], ids(&s[0])[..16]);
    assert_ne!(ids(&s[0])[..16], ids(&s[0])[16..32]);
    // No special ids (0..3 are special in the test tokenizer).
    assert!(s.iter().flat_map(ids).all(|&id| id >= 3));

    let times: Vec<f64> = s.iter().map(|x| x.timestamp_s.unwrap()).collect();
    assert_eq!(times, [0.0, 0.5, 2.0, 3.0, 3.25, 4.0]);
    let slow = DatasetArgs {
        timed_trace_sec_multiplier: 2.0,
        ..timed(16)
    };
    let times: Vec<f64> = load(&slow, &ctx(3, 1))
        .unwrap()
        .iter()
        .map(|x| x.timestamp_s.unwrap())
        .collect();
    assert_eq!(times, [0.0, 1.0, 4.0]);
}

#[test]
fn timed_trace_takes_the_first_rows_and_pads_short_hash_lists_by_seed() {
    let a = load(&timed(16), &ctx(4, 1)).unwrap();
    assert_eq!(a.len(), 4);
    assert_eq!(a[3].output_len, 7);
    let again = load(&timed(16), &ctx(4, 1)).unwrap();
    assert_eq!(a, again);
    let other = load(&timed(16), &ctx(4, 2)).unwrap();
    // Hash blocks do not depend on the seed; the padding of row 3 (36 > 2 × 16) does.
    assert_eq!(ids(&a[0]), ids(&other[0]));
    assert_eq!(ids(&a[3])[..32], ids(&other[3])[..32]);
    assert_ne!(ids(&a[3])[32..], ids(&other[3])[32..]);
    // Another chunk size gives other blocks.
    let b = load(&timed(8), &ctx(1, 1)).unwrap();
    assert_ne!(ids(&a[0])[..8], ids(&b[0])[..8]);
}

#[test]
fn timed_trace_field_names_come_from_the_label_flags() {
    let a = DatasetArgs {
        timed_trace_label_timestamp: "t".into(),
        timed_trace_label_input_length: "isl".into(),
        timed_trace_label_output_length: "osl".into(),
        timed_trace_label_hash_ids: "blocks".into(),
        timed_trace_chunk_hash_size: 12,
        ..args("timed_trace", Some("timed_trace_labels.jsonl"))
    };
    let s = load(&a, &ctx(10, 0)).unwrap();
    assert_eq!(s.len(), 2);
    assert_eq!((s[0].prompt_len, s[1].output_len), (24, 3));
    assert_eq!(s[1].timestamp_s, Some(2.0));
    assert_eq!(ids(&s[0])[..12], ids(&s[1])[..12]);
    assert_ne!(ids(&s[0])[12..], ids(&s[1])[12..]);
    // The default labels do not match this file: the error names the field and the flag.
    let e = err(
        &args("timed_trace", Some("timed_trace_labels.jsonl")),
        &ctx(1, 0),
    );
    assert!(
        e.contains(":1:") && e.contains("\"timestamp\" is missing"),
        "{e}"
    );
    assert!(e.contains("--timed-trace-label-timestamp"), "{e}");
}

#[test]
fn timed_trace_bad_input_is_one_clear_error() {
    let c = ctx(10, 0);
    let e = err(&args("timed_trace", Some("no_such_trace.jsonl")), &c);
    assert!(e.contains("no such file"), "{e}");
    let e = err(&args("timed_trace", None), &c);
    assert!(e.contains("needs --dataset-path"), "{e}");
    let e = err(&args("timed_trace", Some("timed_trace_bad_json.jsonl")), &c);
    assert!(
        e.contains("timed_trace_bad_json.jsonl:2:") && e.contains("not valid JSON"),
        "{e}"
    );
    let e = err(&args("timed_trace", Some("timed_trace_empty.jsonl")), &c);
    assert!(
        e.contains("timed_trace_empty.jsonl") && e.contains("no rows"),
        "{e}"
    );
    let e = err(
        &args("timed_trace", Some("timed_trace_missing_field.jsonl")),
        &c,
    );
    assert!(
        e.contains("timed_trace_missing_field.jsonl:3:")
            && e.contains("\"output_length\" is missing"),
        "{e}"
    );
    let chat = Ctx {
        api: Api::Chat,
        ..ctx(10, 0)
    };
    let e = err(&timed(16), &chat);
    assert!(e.contains("token ids") && e.contains("Chat"), "{e}");
    let sglang = Ctx {
        api: Api::SglangGenerate,
        ..ctx(2, 0)
    };
    assert_eq!(load(&timed(16), &sglang).unwrap().len(), 2);
}

// --- mooncake ------------------------------------------------------------------------------

fn mooncake(file: &str) -> DatasetArgs {
    DatasetArgs {
        mooncake_block_size: 16,
        ..args("mooncake", Some(file))
    }
}

#[test]
fn mooncake_prompts_hit_input_length_and_share_blocks_as_text() {
    let tok = Tokenizer::embedded_default();
    let s = load(&mooncake("mooncake.jsonl"), &ctx(100, 3)).unwrap();
    assert_eq!(s.len(), 5);
    let want = [40, 45, 20, 70, 30];
    for (x, &n) in s.iter().zip(&want) {
        assert_eq!(x.prompt_len, n, "{:?}", text(x));
        assert_eq!(tok.count(text(x)).unwrap(), n);
        assert_eq!(x.token_ids.as_ref().unwrap().len(), n);
        assert_eq!(x.mismatch, 0);
    }
    let outs: Vec<usize> = s.iter().map(|x| x.output_len).collect();
    assert_eq!(
        outs,
        [10, 12, 6, 8, 256],
        "missing output_length: SGLang's 256"
    );
    // Rows 0, 1 and 3 start with hash ids 0, 1: the same two blocks of text.
    let shared = common_prefix(text(&s[0]), text(&s[1]));
    assert!(tok.count(shared).unwrap() >= 30, "{shared:?}");
    assert!(text(&s[3]).starts_with(shared));
    // Rows 1 and 3 go on with hash id 3 (cut short in row 1, whole in row 3).
    assert!(common_prefix(text(&s[1]), text(&s[3])).len() > shared.len());
    // Row 2 shares nothing with them.
    assert!(tok.count(common_prefix(text(&s[0]), text(&s[2]))).unwrap() <= 1);

    let times: Vec<f64> = s.iter().map(|x| x.timestamp_s.unwrap()).collect();
    assert_eq!(times, [0.0, 1.5, 1.5, 4.0, 6.25]);
    let slow = DatasetArgs {
        mooncake_slowdown_factor: 2.0,
        ..mooncake("mooncake.jsonl")
    };
    let t: Vec<f64> = load(&slow, &ctx(2, 3))
        .unwrap()
        .iter()
        .map(|x| x.timestamp_s.unwrap())
        .collect();
    assert_eq!(t, [0.0, 3.0]);
}

#[test]
fn mooncake_is_deterministic_and_reads_timestamps_only_when_all_rows_have_them() {
    let a = load(&mooncake("mooncake.jsonl"), &ctx(2, 3)).unwrap();
    assert_eq!(a.len(), 2, "--num-prompts takes the first rows");
    assert_eq!(a, load(&mooncake("mooncake.jsonl"), &ctx(2, 3)).unwrap());

    let partial = load(&mooncake("mooncake_no_timestamp.jsonl"), &ctx(5, 0)).unwrap();
    assert!(partial.iter().all(|x| x.timestamp_s.is_none()));
    let replay = DatasetArgs {
        use_trace_timestamps: true,
        ..mooncake("mooncake_no_timestamp.jsonl")
    };
    let e = err(&replay, &ctx(5, 0));
    assert!(
        e.contains("mooncake_no_timestamp.jsonl:2:") && e.contains("\"timestamp\" is missing"),
        "{e}"
    );
    let e = err(&mooncake("timed_trace_labels.jsonl"), &ctx(5, 0));
    assert!(
        e.contains("timed_trace_labels.jsonl:1:") && e.contains("\"input_length\" is missing"),
        "{e}"
    );
    let e = err(&mooncake("timed_trace_bad_json.jsonl"), &ctx(5, 0));
    assert!(e.contains("timed_trace_bad_json.jsonl:2:"), "{e}");
}

#[test]
fn mooncake_default_block_size_covers_long_prompts() {
    let tok = Tokenizer::embedded_default();
    // 512-token blocks (the default): row 0 of this file is 40 tokens, under one block.
    let s = load(&args("mooncake", Some("mooncake.jsonl")), &ctx(1, 0)).unwrap();
    assert_eq!(s[0].prompt_len, 40);
    assert_eq!(tok.count(text(&s[0])).unwrap(), 40);
}

// --- burstgpt ------------------------------------------------------------------------------

/// (Request tokens, Response tokens) of the GPT-4 rows with a response in burstgpt.csv.
const KEPT: [(usize, usize); 5] = [(40, 12), (25, 30), (60, 8), (33, 5), (17, 41)];

#[test]
fn burstgpt_keeps_gpt4_rows_with_responses() {
    let tok = Tokenizer::embedded_default();
    let s = load(&args("burstgpt", Some("burstgpt.csv")), &ctx(5, 0)).unwrap();
    let mut got: Vec<(usize, usize)> = s.iter().map(|x| (x.prompt_len, x.output_len)).collect();
    got.sort();
    let mut want = KEPT.to_vec();
    want.sort();
    assert_eq!(got, want, "all five kept rows, each once");
    for x in &s {
        assert_eq!(tok.count(text(x)).unwrap(), x.prompt_len);
        assert_eq!(x.timestamp_s, None, "not replayed unless asked");
    }
    // More requests than rows: drawn again, never from the dropped rows.
    let many = load(&args("burstgpt", Some("burstgpt.csv")), &ctx(40, 0)).unwrap();
    assert_eq!(many.len(), 40);
    assert!(many
        .iter()
        .all(|x| KEPT.contains(&(x.prompt_len, x.output_len))));
    let capped = DatasetArgs {
        no_oversample: true,
        ..args("burstgpt", Some("burstgpt.csv"))
    };
    assert_eq!(load(&capped, &ctx(40, 0)).unwrap().len(), 5);
}

#[test]
fn burstgpt_is_deterministic_per_seed() {
    let a = args("burstgpt", Some("burstgpt.csv"));
    let x = load(&a, &ctx(30, 7)).unwrap();
    assert_eq!(x, load(&a, &ctx(30, 7)).unwrap());
    let y = load(&a, &ctx(30, 8)).unwrap();
    let order = |s: &[Sample]| s.iter().map(|x| x.output_len).collect::<Vec<_>>();
    assert_ne!(order(&x), order(&y));
}

#[test]
fn burstgpt_replays_timestamps_in_file_order() {
    let a = DatasetArgs {
        burstgpt_replay_timestamps: true,
        ..args("burstgpt", Some("burstgpt.csv"))
    };
    let s = load(&a, &ctx(3, 0)).unwrap();
    let got: Vec<(usize, usize, f64)> = s
        .iter()
        .map(|x| (x.prompt_len, x.output_len, x.timestamp_s.unwrap()))
        .collect();
    assert_eq!(got, [(40, 12, 0.0), (25, 30, 1.5), (60, 8, 4.5)]);
    assert_eq!(load(&a, &ctx(50, 0)).unwrap().len(), 5);
}

#[test]
fn burstgpt_bad_input_names_the_column_and_line() {
    let c = ctx(5, 0);
    let e = err(&args("burstgpt", Some("burstgpt_missing_column.csv")), &c);
    assert!(
        e.contains("\"Response tokens\" is missing")
            && e.contains("Timestamp,Model,Request tokens,Total tokens,Log Type"),
        "{e}"
    );
    let e = err(&args("burstgpt", Some("burstgpt_bad_number.csv")), &c);
    assert!(
        e.contains("burstgpt_bad_number.csv:3:")
            && e.contains("\"Response tokens\"")
            && e.contains("lots"),
        "{e}"
    );
    let e = err(&args("burstgpt", Some("no_such.csv")), &c);
    assert!(e.contains("no such file"), "{e}");
    let e = err(&args("burstgpt", Some("sonnet_empty.txt")), &c);
    assert!(e.contains("Model"), "{e}");
    let e = err(&args("burstgpt", Some("timed_trace_empty.jsonl")), &c);
    assert!(e.contains("empty"), "{e}");
}

// --- sonnet --------------------------------------------------------------------------------

fn sonnet(input: usize, prefix: usize) -> DatasetArgs {
    DatasetArgs {
        sonnet_input_len: input,
        sonnet_prefix_len: prefix,
        sonnet_output_len: 30,
        ..args("sonnet", Some("sonnet.txt"))
    }
}

#[test]
fn sonnet_prompts_share_the_prefix_lines_and_stay_under_the_length() {
    let tok = Tokenizer::embedded_default();
    let lines: Vec<String> = std::fs::read_to_string(data("sonnet.txt"))
        .unwrap()
        .split_inclusive('\n')
        .map(String::from)
        .collect();
    let avg =
        lines.iter().map(|l| tok.count(l).unwrap()).sum::<usize>() as f64 / lines.len() as f64;
    let s = load(&sonnet(160, 60), &ctx(12, 4)).unwrap();
    assert_eq!(s.len(), 12);
    // The first lines of the file follow the base prompt in every prompt.
    let prefix = format!("{BASE_PROMPT}{}{}", lines[0], lines[1]);
    let mut tails = HashSet::new();
    for x in &s {
        assert!(text(x).starts_with(&prefix), "{:?}", text(x));
        assert_eq!(x.prompt_len, tok.count(text(x)).unwrap());
        assert!(x.prompt_len <= 160, "{}", x.prompt_len);
        assert!(x.prompt_len as f64 >= 160.0 - 3.0 * avg, "{}", x.prompt_len);
        assert_eq!(x.output_len, 30);
        tails.insert(text(x)[prefix.len()..].to_string());
    }
    assert!(tails.len() > 6, "the other lines are drawn per request");
    // Same seed, same prompts; another seed, others.
    assert_eq!(s, load(&sonnet(160, 60), &ctx(12, 4)).unwrap());
    assert_ne!(s, load(&sonnet(160, 60), &ctx(12, 5)).unwrap());
    // Without a prefix the prompts start right after the base prompt with drawn lines.
    let free = load(&sonnet(160, 0), &ctx(12, 4)).unwrap();
    let starts: HashSet<&str> = free
        .iter()
        .map(|x| text(x)[BASE_PROMPT.len()..].split('\n').next().unwrap())
        .collect();
    assert!(starts.len() > 1);
}

#[test]
fn sonnet_bad_input_is_an_error() {
    let c = ctx(2, 0);
    let e = err(&sonnet(10, 0), &c);
    assert!(
        e.contains("--sonnet-input-len 10") && e.contains("base prompt"),
        "{e}"
    );
    let e = err(&sonnet(100, 200), &c);
    assert!(e.contains("--sonnet-prefix-len 200"), "{e}");
    let e = err(
        &DatasetArgs {
            dataset_path: Some(data("sonnet_empty.txt")),
            ..sonnet(100, 10)
        },
        &c,
    );
    assert!(
        e.contains("sonnet_empty.txt") && e.contains("no lines"),
        "{e}"
    );
    let e = err(&args("sonnet", Some("missing_sonnet.txt")), &c);
    assert!(e.contains("no such file"), "{e}");
}

// --- prefix_repetition ---------------------------------------------------------------------

fn prefix_rep(prefix: usize, suffix: usize, groups: usize) -> DatasetArgs {
    DatasetArgs {
        prefix_repetition_prefix_len: prefix,
        prefix_repetition_suffix_len: suffix,
        prefix_repetition_num_prefixes: groups,
        prefix_repetition_output_len: 9,
        ..args("prefix_repetition", None)
    }
}

#[test]
fn prefix_repetition_shares_each_prefix_across_its_group() {
    let tok = Tokenizer::embedded_default();
    let s = load(&prefix_rep(32, 24, 4), &ctx(10, 11)).unwrap();
    assert_eq!(s.len(), 8, "10 / 4 = 2 per prefix, as vLLM");
    let head = |x: &Sample| x.token_ids.as_ref().unwrap()[..28].to_vec();
    let heads: HashSet<Vec<u32>> = s.iter().map(head).collect();
    assert_eq!(heads.len(), 4);
    for h in &heads {
        assert_eq!(s.iter().filter(|x| &head(x) == h).count(), 2);
    }
    for x in &s {
        assert_eq!(x.prompt_len, 56);
        assert_eq!(tok.count(text(x)).unwrap(), 56);
        assert_eq!(x.output_len, 9);
    }
    let suffixes: HashSet<&[u32]> = s
        .iter()
        .map(|x| &x.token_ids.as_ref().unwrap()[34..])
        .collect();
    assert_eq!(suffixes.len(), 8, "every suffix is its own");

    assert_eq!(s, load(&prefix_rep(32, 24, 4), &ctx(10, 11)).unwrap());
    assert_ne!(s, load(&prefix_rep(32, 24, 4), &ctx(10, 12)).unwrap());
    // --disable-shuffle keeps each group together; --output-len overrides the output.
    let grouped = DatasetArgs {
        disable_shuffle: true,
        output_len: Some(3),
        ..prefix_rep(32, 24, 4)
    };
    let g = load(&grouped, &ctx(10, 11)).unwrap();
    assert_eq!(head(&g[0]), head(&g[1]));
    assert_ne!(head(&g[1]), head(&g[2]));
    assert!(g.iter().all(|x| x.output_len == 3));
    let mut a: Vec<_> = s.iter().map(text).collect();
    let mut b: Vec<_> = g.iter().map(text).collect();
    assert_ne!(a, b, "shuffled by default");
    a.sort();
    b.sort();
    assert_eq!(a, b, "the same prompts either way");
}

#[test]
fn prefix_repetition_bad_flags_are_errors() {
    let e = err(&prefix_rep(8, 8, 20), &ctx(10, 0));
    assert!(e.contains("--num-prompts (10)"), "{e}");
    let e = err(&prefix_rep(8, 8, 0), &ctx(10, 0));
    assert!(e.contains("--prefix-repetition-num-prefixes"), "{e}");
    let with_path = DatasetArgs {
        dataset_path: Some(data("sonnet.txt")),
        ..prefix_rep(8, 8, 2)
    };
    assert!(err(&with_path, &ctx(10, 0)).contains("Cannot use 'prefix_repetition'"));
}

//! The sharegpt, custom and hf datasets, and SGLang's random and random-ids, loaded through
//! `workload::load` from the small files in tests/data/workloads/.

use std::collections::HashSet;
use std::path::PathBuf;

use serde_json::Value;
use servebench::backend::Api;
use servebench::tokenizer::Tokenizer;
use servebench::workload::{self, Ctx, DatasetArgs, Prompt, RandomFlavor, Sample};

fn data(name: &str) -> String {
    format!("{}/tests/data/workloads/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn ctx(num_prompts: usize, seed: u64) -> Ctx {
    Ctx {
        num_prompts,
        seed,
        api: Api::Chat,
    }
}

fn args(name: &str, path: Option<&str>) -> DatasetArgs {
    DatasetArgs {
        dataset_name: name.into(),
        dataset_path: path.map(data),
        ..Default::default()
    }
}

fn load(a: &DatasetArgs, c: &Ctx) -> Vec<Sample> {
    workload::load(a, c, &Tokenizer::embedded_default()).unwrap()
}

fn load_err(a: &DatasetArgs, c: &Ctx) -> String {
    format!(
        "{:#}",
        workload::load(a, c, &Tokenizer::embedded_default()).unwrap_err()
    )
}

fn text(s: &Sample) -> &str {
    s.prompt.as_text().expect("a text prompt")
}

fn texts(samples: &[Sample]) -> Vec<&str> {
    samples.iter().map(text).collect()
}

/// A file of our own in a per-process temp directory (for generated or empty inputs).
fn temp_file(name: &str, body: &str) -> String {
    let dir = std::env::temp_dir().join(format!("servebench-workload-a-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path: PathBuf = dir.join(name);
    std::fs::write(&path, body).unwrap();
    path.to_string_lossy().into_owned()
}

// --- sharegpt --------------------------------------------------------------------------------

/// The first two turns of each entry with two or more, in file order, read independently.
fn sharegpt_pairs(path: &str) -> Vec<(String, String)> {
    let v: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .filter_map(|e| {
            let turns = e
                .get("conversations")
                .or(e.get("conversation"))?
                .as_array()?;
            (turns.len() >= 2).then(|| {
                (
                    turns[0]["value"].as_str().unwrap().to_string(),
                    turns[1]["value"].as_str().unwrap().to_string(),
                )
            })
        })
        .collect()
}

/// What vLLM's rules keep, in file order: (prompt, prompt_len, output_len).
fn expected_vllm(path: &str, fixed: Option<usize>) -> Vec<(String, usize, usize)> {
    let tok = Tokenizer::embedded_default();
    sharegpt_pairs(path)
        .into_iter()
        .filter_map(|(p, c)| {
            let pl = tok.count(&p).unwrap();
            let ol = fixed.unwrap_or_else(|| tok.count(&c).unwrap());
            let ok = pl >= 4 && (fixed.is_some() || ol >= 4) && pl <= 1024 && pl + ol <= 2048;
            ok.then_some((p, pl, ol))
        })
        .collect()
}

fn triples(samples: &[Sample]) -> Vec<(String, usize, usize)> {
    samples
        .iter()
        .map(|s| (text(s).to_string(), s.prompt_len, s.output_len))
        .collect()
}

#[test]
fn sharegpt_keeps_pairs_that_pass_vllm_filters_in_file_order() {
    let tok = Tokenizer::embedded_default();
    let path = data("sharegpt-small.json");
    let mut a = args("sharegpt", Some("sharegpt-small.json"));
    a.disable_shuffle = true;
    a.no_oversample = true;
    let samples = load(&a, &ctx(1000, 1));
    let expected = expected_vllm(&path, None);
    assert_eq!(triples(&samples), expected);

    // The rules that excluded the hand-made entries are the ones meant.
    assert!(tok.count("Hi").unwrap() < 4 && tok.count("Ok").unwrap() < 4);
    assert!(tok.count("Yes.").unwrap() < 4);
    let prompts: HashSet<&str> = texts(&samples).into_iter().collect();
    for gone in [
        "Hi",
        "Ok",
        "Is the ocean salty because of rivers carrying minerals?",
        "Can you tell me a fun fact about octopuses?",
    ] {
        assert!(!prompts.contains(gone), "{gone:?} should be filtered out");
    }
    // SGLang's "conversation" key, and a conversation with four turns (first two used).
    assert!(prompts.contains("What should I pack for a day hike in the mountains?"));
    let bread = samples
        .iter()
        .find(|s| text(s).starts_with("Explain why bread"))
        .unwrap();
    assert_eq!(
        bread.output_len,
        tok.count("Cold temperatures speed up the way starch molecules crystallise again after baking, so the crumb turns firm and dry sooner in the fridge than at room temperature.").unwrap()
    );
    // 30 entries less: one turn, no turns, "Hi", "Ok" (short prompts), "Yes." (short reply).
    assert_eq!(samples.len(), 30 - 5);
    for s in &samples {
        assert_eq!(s.prompt_len, tok.count(text(s)).unwrap());
        assert!(s.history.is_empty() && s.token_ids.is_none() && s.images.is_empty());
    }
}

fn long_entries() -> String {
    let tok = Tokenizer::embedded_default();
    let words = |n: usize| format!("Please continue this list:{}", " the".repeat(n));
    let long_prompt = words(1100);
    let mid_prompt = words(900);
    let long_reply = words(1200);
    let short_reply = words(100);
    let three = "Why?";
    assert!(tok.count(&long_prompt).unwrap() > 1024);
    assert!(tok.count(&mid_prompt).unwrap() <= 1024);
    assert!(tok.count(&mid_prompt).unwrap() + tok.count(&long_reply).unwrap() > 2048);
    assert!((2..4).contains(&tok.count(three).unwrap()));
    let entry = |p: &str, c: &str| serde_json::json!({"conversations": [{"from": "human", "value": p}, {"from": "gpt", "value": c}]});
    let mut list: Vec<Value> =
        serde_json::from_str(&std::fs::read_to_string(data("sharegpt-small.json")).unwrap())
            .unwrap();
    list.push(entry(&long_prompt, &short_reply));
    list.push(entry(&mid_prompt, &long_reply));
    list.push(entry(
        three,
        "Because the reply here is long enough to count.",
    ));
    serde_json::to_string_pretty(&list).unwrap()
}

#[test]
fn sharegpt_length_caps_and_sglang_context_len() {
    let path = temp_file("sharegpt-long.json", &long_entries());
    let base = DatasetArgs {
        dataset_name: "sharegpt".into(),
        dataset_path: Some(path.clone()),
        disable_shuffle: true,
        no_oversample: true,
        ..Default::default()
    };
    let vllm = load(&base, &ctx(1000, 1));
    assert_eq!(triples(&vllm), expected_vllm(&path, None));
    assert_eq!(
        vllm.len(),
        25,
        "the three added entries are all filtered out"
    );

    // SGLang's rules: no prompt cap, total within the context length, at least 2 tokens.
    let tok = Tokenizer::embedded_default();
    let sg = DatasetArgs {
        sharegpt_context_len: Some(5000),
        ..base.clone()
    };
    let expected = |context: usize| -> Vec<(String, usize, usize)> {
        sharegpt_pairs(&path)
            .into_iter()
            .filter_map(|(p, c)| {
                let (pl, ol) = (tok.count(&p).unwrap(), tok.count(&c).unwrap());
                (pl >= 2 && ol >= 2 && pl + ol <= context).then_some((p, pl, ol))
            })
            .collect()
    };
    let kept = load(&sg, &ctx(1000, 1));
    assert_eq!(triples(&kept), expected(5000));
    // At least 2 tokens: "Hi", "Ok" and "Yes." are kept now; only the short conversations go.
    assert_eq!(kept.len(), 28 + 3);
    assert!(kept.iter().any(|s| s.prompt_len > 1024));
    assert!(kept.iter().any(|s| text(s) == "Why?"));
    let tight = load(
        &DatasetArgs {
            sharegpt_context_len: Some(1500),
            ..base
        },
        &ctx(1000, 1),
    );
    assert_eq!(triples(&tight), expected(1500));
    // The 900 + 1200 pair no longer fits; the 1100 + 100 one does.
    assert_eq!(tight.len(), kept.len() - 1);
    assert!(tight.iter().any(|s| s.prompt_len > 1024));
}

#[test]
fn sharegpt_fixed_output_len_skips_the_output_check() {
    let mut a = args("sharegpt", Some("sharegpt-small.json"));
    a.disable_shuffle = true;
    a.no_oversample = true;
    a.sharegpt_output_len = Some(7);
    let samples = load(&a, &ctx(1000, 1));
    assert_eq!(
        triples(&samples),
        expected_vllm(&data("sharegpt-small.json"), Some(7))
    );
    assert!(texts(&samples).contains(&"Is the ocean salty because of rivers carrying minerals?"));
    a.output_len = Some(11);
    assert!(load(&a, &ctx(5, 1)).iter().all(|s| s.output_len == 11));
}

#[test]
fn sharegpt_is_deterministic_per_seed_and_oversamples() {
    let a = args("sharegpt", Some("sharegpt-small.json"));
    let one = load(&a, &ctx(25, 7));
    assert_eq!(one, load(&a, &ctx(25, 7)));
    let other = load(&a, &ctx(25, 8));
    assert_ne!(texts(&one), texts(&other));
    // Same set, another order: all 25 usable pairs either way.
    let set = |s: &[Sample]| {
        texts(s)
            .into_iter()
            .map(String::from)
            .collect::<HashSet<_>>()
    };
    assert_eq!(set(&one), set(&other));
    let in_file_order: Vec<_> = expected_vllm(&data("sharegpt-small.json"), None)
        .into_iter()
        .map(|t| t.0)
        .collect();
    assert_ne!(texts(&one), in_file_order);
    // Fewer requests: a prefix of the same shuffled order.
    let five = load(&a, &ctx(5, 7));
    assert_eq!(five, one[..5]);
    // More requests than pairs: vLLM's oversampling, unless --no-oversample.
    let many = load(&a, &ctx(60, 7));
    assert_eq!(many.len(), 60);
    assert_eq!(many[..25], one[..]);
    assert!(many[25..].iter().all(|s| one.contains(s)));
    let mut capped = a.clone();
    capped.no_oversample = true;
    assert_eq!(load(&capped, &ctx(60, 7)).len(), 25);
}

#[test]
fn sharegpt_bad_inputs_name_file_entry_line_and_field() {
    let c = ctx(5, 0);
    let e = load_err(&args("sharegpt", None), &c);
    assert!(e.contains("--dataset-path"), "{e}");
    assert!(
        e.contains("anon8231489123/ShareGPT_Vicuna_unfiltered"),
        "{e}"
    );
    assert!(
        e.contains("https://huggingface.co/datasets/anon8231489123/ShareGPT_Vicuna_unfiltered/resolve/main/ShareGPT_V3_unfiltered_cleaned_split.json"),
        "{e}"
    );
    assert!(e.contains("wget ") && e.contains("curl "), "{e}");
    let e = load_err(&args("sharegpt", Some("sharegpt-missing.json")), &c);
    assert!(
        e.contains("sharegpt-missing.json: no such file") && e.contains("wget"),
        "{e}"
    );

    let cases = [
        (
            "sharegpt-bad-syntax.json",
            vec![":3:", "not a ShareGPT JSON file"],
        ),
        ("sharegpt-empty.json", vec!["the list is empty"]),
        ("sharegpt-not-list.json", vec![":1:", "JSON list"]),
        (
            "sharegpt-no-conversations.json",
            vec![":4: entry 2", "\"c\"", "field \"conversations\" is missing"],
        ),
        (
            "sharegpt-bad-turn.json",
            vec![
                ":3: entry 1",
                "\"bad\"",
                "\"conversations[1].value\" is missing",
            ],
        ),
    ];
    for (file, needles) in cases {
        let e = load_err(&args("sharegpt", Some(file)), &c);
        assert!(e.contains(&data(file)), "{file}: {e}");
        for n in needles {
            assert!(e.contains(n), "{file}: want {n:?} in: {e}");
        }
    }
}

// --- SGLang's random and random-ids -----------------------------------------------------------

fn sglang_random(input: usize, output: usize, ratio: f64) -> DatasetArgs {
    DatasetArgs {
        dataset_name: "random".into(),
        dataset_path: Some(data("sharegpt-small.json")),
        random_input_len: input,
        random_output_len: Some(output),
        random_range_ratio: ratio,
        ..Default::default()
    }
}

/// Every prompt is exactly its length in tokens, and that length is its encoding.
fn assert_exact(samples: &[Sample], tok: &Tokenizer) {
    for (i, s) in samples.iter().enumerate() {
        assert_eq!(s.mismatch, 0, "sample {i}");
        let ids = tok.encode(text(s)).unwrap();
        assert_eq!(ids.len(), s.prompt_len, "sample {i}");
        assert_eq!(s.token_ids.as_ref(), Some(&ids), "sample {i}");
    }
}

#[test]
fn sglang_random_lengths_follow_sglang_ranges_and_are_exact() {
    let tok = Tokenizer::embedded_default();
    assert_eq!(tok.num_special_tokens_to_add(), 0);
    let a = sglang_random(64, 20, 1.0);
    assert_eq!(a.random_flavor(), RandomFlavor::Sglang);
    let exact = load(&a, &ctx(100, 3));
    assert!(exact
        .iter()
        .all(|s| s.prompt_len == 64 && s.output_len == 20));
    assert_exact(&exact, &tok);

    // r = 0.25, L = 40: [10, 40]; r = 0: [1, L]; both ends are reached.
    let quarter = load(&sglang_random(40, 40, 0.25), &ctx(400, 3));
    assert_exact(&quarter, &tok);
    let (lo, hi) = min_max(quarter.iter().map(|s| s.prompt_len));
    assert_eq!((lo, hi), (10, 40));
    let (lo, hi) = min_max(quarter.iter().map(|s| s.output_len));
    assert_eq!((lo, hi), (10, 40));
    let zero = load(&sglang_random(12, 12, 0.0), &ctx(400, 3));
    assert_exact(&zero, &tok);
    assert_eq!(min_max(zero.iter().map(|s| s.prompt_len)), (1, 12));
    assert_eq!(min_max(zero.iter().map(|s| s.output_len)), (1, 12));

    // Long prompts tile the turn's ids; still exact.
    let long = load(&sglang_random(3000, 10, 0.5), &ctx(40, 9));
    assert_exact(&long, &tok);
    assert!(long.iter().all(|s| (1500..=3000).contains(&s.prompt_len)));
}

fn min_max(v: impl Iterator<Item = usize>) -> (usize, usize) {
    v.fold((usize::MAX, 0), |(lo, hi), x| (lo.min(x), hi.max(x)))
}

#[test]
fn sglang_random_takes_its_text_from_sharegpt_first_turns() {
    let mut a = sglang_random(300, 10, 1.0);
    a.disable_shuffle = true;
    let samples = load(&a, &ctx(6, 1));
    // Entries with two or more turns, in file order; SGLang's random keeps short ones.
    let firsts: Vec<String> = sharegpt_pairs(&data("sharegpt-small.json"))
        .into_iter()
        .map(|p| p.0)
        .collect();
    assert_eq!(firsts[2], "Hi");
    for (i, s) in samples.iter().enumerate() {
        let t = text(s);
        assert!(t.starts_with(&firsts[i]), "sample {i}: {t:?}");
        // 300 tokens of a short turn: the turn repeated.
        assert!(
            t.matches(firsts[i].as_str()).count() >= 2,
            "sample {i}: {t:?}"
        );
    }
    // Shorter than the turn: a cut of it.
    let mut short = sglang_random(5, 10, 1.0);
    short.disable_shuffle = true;
    let cut = load(&short, &ctx(2, 1));
    assert!(firsts[0].starts_with(text(&cut[0])), "{:?}", text(&cut[0]));
    assert!(firsts[1].starts_with(text(&cut[1])), "{:?}", text(&cut[1]));

    // Deterministic per seed, and shuffled by it.
    let b = sglang_random(50, 10, 0.5);
    assert_eq!(load(&b, &ctx(20, 4)), load(&b, &ctx(20, 4)));
    assert_ne!(load(&b, &ctx(20, 4)), load(&b, &ctx(20, 5)));
}

#[test]
fn sglang_random_bad_flags_are_errors() {
    let mut no_file = DatasetArgs {
        dataset_name: "random".into(),
        random_flavor: Some(RandomFlavor::Sglang),
        ..Default::default()
    };
    let e = load_err(&no_file, &ctx(4, 0));
    assert!(
        e.contains("--dataset-path") && e.contains("ShareGPT_V3_unfiltered_cleaned_split.json"),
        "{e}"
    );
    no_file.dataset_path = Some(data("nope.json"));
    assert!(load_err(&no_file, &ctx(4, 0)).contains("no such file"));
    let mut prefix = sglang_random(10, 10, 0.0);
    prefix.random_prefix_len = 4;
    assert!(load_err(&prefix, &ctx(4, 0)).contains("--random-prefix-len"));
    let zero = sglang_random(0, 10, 0.0);
    assert!(load_err(&zero, &ctx(4, 0)).contains("--random-input-len 0"));
}

fn random_ids(input: usize, ratio: f64) -> DatasetArgs {
    DatasetArgs {
        dataset_name: "random-ids".into(),
        random_input_len: input,
        random_output_len: Some(16),
        random_range_ratio: ratio,
        ..Default::default()
    }
}

#[test]
fn random_ids_are_ids_for_completions_and_exact_text_for_chat() {
    let tok = Tokenizer::embedded_default();
    let special: HashSet<u32> = tok.special_ids().iter().copied().collect();
    let mut c = ctx(200, 11);
    for api in [Api::Completions, Api::SglangGenerate] {
        c.api = api;
        let samples = load(&random_ids(100, 0.0), &c);
        for s in &samples {
            let Prompt::Ids(ids) = &s.prompt else {
                panic!("{api:?}: expected ids")
            };
            assert_eq!(ids.len(), s.prompt_len);
            assert_eq!(s.token_ids.as_ref(), Some(ids));
            assert!((1..=100).contains(&s.prompt_len));
            assert!(ids.iter().all(|id| !special.contains(id)));
            // Consecutive through the allowed ids (the specials skipped).
            for w in ids.windows(2) {
                assert!(w[1] == w[0] + 1 || w[1] < w[0], "{w:?}");
            }
        }
        assert_eq!(min_max(samples.iter().map(|s| s.prompt_len)), (1, 100));
    }

    c.api = Api::Chat;
    let exact = load(&random_ids(256, 1.0), &c);
    assert!(exact.iter().all(|s| s.prompt_len == 256));
    assert_exact(&exact, &tok);
    let wide = load(&random_ids(2000, 0.0), &ctx(60, 2));
    assert_exact(&wide, &tok);

    let a = random_ids(64, 0.5);
    assert_eq!(load(&a, &ctx(30, 1)), load(&a, &ctx(30, 1)));
    assert_ne!(load(&a, &ctx(30, 1)), load(&a, &ctx(30, 2)));
}

// --- custom ----------------------------------------------------------------------------------

fn custom_rows(file: &str) -> Vec<Value> {
    std::fs::read_to_string(data(file))
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn custom_prompts_and_output_lengths() {
    let tok = Tokenizer::embedded_default();
    let rows = custom_rows("custom-prompts.jsonl");
    let mut a = args("custom", Some("custom-prompts.jsonl"));
    a.disable_shuffle = true;
    let samples = load(&a, &ctx(rows.len(), 1));
    assert_eq!(samples.len(), rows.len());
    for (s, r) in samples.iter().zip(&rows) {
        assert_eq!(text(s), r["prompt"].as_str().unwrap());
        assert_eq!(s.prompt_len, tok.count(text(s)).unwrap());
        assert_eq!(s.output_len, 256);
    }
    a.custom_output_len = -1;
    let per_row = load(&a, &ctx(rows.len(), 1));
    for (s, r) in per_row.iter().zip(&rows) {
        assert_eq!(s.output_len as u64, r["output_tokens"].as_u64().unwrap());
    }
    a.output_len = Some(9);
    assert!(load(&a, &ctx(3, 1)).iter().all(|s| s.output_len == 9));

    // Shuffled per seed; oversampled past the file's rows.
    let b = args("custom", Some("custom-prompts.jsonl"));
    let one = load(&b, &ctx(12, 5));
    assert_eq!(one, load(&b, &ctx(12, 5)));
    assert_ne!(texts(&one), texts(&load(&b, &ctx(12, 6))));
    assert_ne!(texts(&one), texts(&samples));
    let many = load(&b, &ctx(40, 5));
    assert_eq!(many.len(), 40);
    assert!(many.iter().all(|s| one.contains(s)));
}

#[test]
fn custom_accepts_sglang_conversation_rows() {
    let tok = Tokenizer::embedded_default();
    let mut a = args("custom", Some("custom-sglang.jsonl"));
    a.disable_shuffle = true;
    a.custom_output_len = -1;
    a.no_oversample = true;
    let samples = load(&a, &ctx(100, 1));
    assert!(
        tok.count("ok").unwrap() < 2,
        "the short row is dropped by SGLang's filter"
    );
    let got: Vec<(&str, usize)> = samples.iter().map(|s| (text(s), s.output_len)).collect();
    let reply = |t: &str| tok.count(t).unwrap();
    assert_eq!(
        got,
        vec![
            (
                "What is the capital of Portugal and what is it known for?",
                reply("Lisbon is the capital, known for its hills, trams and tiled buildings.")
            ),
            (
                "How many legs does a spider have?",
                reply("A spider has eight legs.")
            ),
            (
                "Name a river that flows through Egypt.",
                reply("The Nile flows through Egypt to the Mediterranean Sea.")
            ),
            ("A vLLM-style row mixed in with the conversation rows.", 33),
        ]
    );
    a.sharegpt_output_len = Some(5);
    let fixed = load(&a, &ctx(100, 1));
    assert!(fixed[..3].iter().all(|s| s.output_len == 5));
}

#[test]
fn custom_bad_inputs_name_file_line_and_field() {
    let c = ctx(3, 0);
    let e = load_err(&args("custom", None), &c);
    assert!(e.contains("--dataset-path"), "{e}");
    let e = load_err(&args("custom", Some("custom-missing.jsonl")), &c);
    assert!(e.contains("custom-missing.jsonl: no such file"), "{e}");
    let e = load_err(&args("custom", Some("custom-bad-json.jsonl")), &c);
    assert!(
        e.contains(&format!("{}:2:", data("custom-bad-json.jsonl"))),
        "{e}"
    );
    let empty = temp_file("custom-empty.jsonl", "\n\n");
    let e = load_err(
        &DatasetArgs {
            dataset_name: "custom".into(),
            dataset_path: Some(empty.clone()),
            ..Default::default()
        },
        &c,
    );
    assert!(e.contains(&empty) && e.contains("no rows"), "{e}");
    let e = load_err(&args("custom", Some("custom-no-prompt.jsonl")), &c);
    assert!(
        e.contains(&format!("{}:3:", data("custom-no-prompt.jsonl")))
            && e.contains("field \"prompt\" is missing"),
        "{e}"
    );
    // output_tokens is only needed with -1.
    let mut a = args("custom", Some("custom-no-output-tokens.jsonl"));
    assert_eq!(load(&a, &c).len(), 3);
    a.custom_output_len = -1;
    let e = load_err(&a, &c);
    assert!(
        e.contains(&format!("{}:2:", data("custom-no-output-tokens.jsonl")))
            && e.contains("field \"output_tokens\" is missing"),
        "{e}"
    );
}

// --- hf --------------------------------------------------------------------------------------

fn hf(file: &str, name: &str) -> DatasetArgs {
    DatasetArgs {
        dataset_name: "hf".into(),
        dataset_path: Some(data(file)),
        hf_name: Some(name.into()),
        disable_shuffle: true,
        no_oversample: true,
        ..Default::default()
    }
}

fn jsonl(file: &str) -> Vec<Value> {
    custom_rows(file)
}

#[test]
fn hf_text_datasets_map_their_columns() {
    let tok = Tokenizer::embedded_default();
    let c = ctx(100, 1);

    let ic = load(&hf("hf-instructcoder.jsonl", "likaixin/InstructCoder"), &c);
    let rows = jsonl("hf-instructcoder.jsonl");
    assert_eq!(ic.len(), rows.len());
    for (s, r) in ic.iter().zip(&rows) {
        let want = format!(
            "{}\n\n{} Just output the code, do not include any explanation.",
            r["input"].as_str().unwrap(),
            r["instruction"].as_str().unwrap()
        );
        assert_eq!(text(s), want);
        assert_eq!(s.prompt_len, tok.count(&want).unwrap());
        assert_eq!(s.output_len, 200);
    }

    let mt = load(&hf("hf-mt-bench.json", "philschmid/mt-bench"), &c);
    let list: Vec<Value> =
        serde_json::from_str(&std::fs::read_to_string(data("hf-mt-bench.json")).unwrap()).unwrap();
    assert_eq!(
        texts(&mt),
        list.iter()
            .map(|r| r["turns"][0].as_str().unwrap())
            .collect::<Vec<_>>()
    );
    assert!(mt.iter().all(|s| s.output_len == 256));
    let mut fixed = hf("hf-mt-bench.json", "philschmid/mt-bench");
    fixed.hf_output_len = Some(17);
    assert!(load(&fixed, &c).iter().all(|s| s.output_len == 17));

    let gsm = load(&hf("hf-gsm8k.jsonl", "openai/gsm8k"), &c);
    assert_eq!(
        texts(&gsm),
        jsonl("hf-gsm8k.jsonl")
            .iter()
            .map(|r| r["question"].as_str().unwrap())
            .collect::<Vec<_>>()
    );
    let he = load(&hf("hf-humaneval.jsonl", "openai/openai_humaneval"), &c);
    assert_eq!(
        text(&he[0]),
        jsonl("hf-humaneval.jsonl")[0]["prompt"].as_str().unwrap()
    );
    assert!(he
        .iter()
        .all(|s| s.output_len == 256 && s.prompt_len == tok.count(text(s)).unwrap()));
}

#[test]
fn hf_aimo_output_is_the_solution_length_and_filtered() {
    let tok = Tokenizer::embedded_default();
    let rows = jsonl("hf-aimo.jsonl");
    let samples = load(&hf("hf-aimo.jsonl", "AI-MO/NuminaMath-1.5"), &ctx(100, 1));
    let solution = |r: &Value| r["solution"].as_str().unwrap().to_string();
    assert!(tok.count("2").unwrap() < 4);
    let kept: Vec<&Value> = rows.iter().filter(|r| solution(r) != "2").collect();
    assert_eq!(samples.len(), kept.len());
    for (s, r) in samples.iter().zip(kept) {
        assert_eq!(text(s), r["problem"].as_str().unwrap());
        assert_eq!(s.output_len, tok.count(&solution(r)).unwrap());
    }
    let mut fixed = hf("hf-aimo.jsonl", "AI-MO/aimo-validation-aime");
    fixed.hf_output_len = Some(64);
    assert_eq!(load(&fixed, &ctx(100, 1)).len(), rows.len());

    // Shuffled per seed unless --disable-shuffle.
    let mut shuffled = hf("hf-instructcoder.jsonl", "likaixin/InstructCoder");
    shuffled.disable_shuffle = false;
    let a = load(&shuffled, &ctx(5, 1));
    assert_eq!(a, load(&shuffled, &ctx(5, 1)));
    let seeds_differ = (2..6).any(|seed| texts(&load(&shuffled, &ctx(5, seed))) != texts(&a));
    assert!(seeds_differ);
}

#[test]
fn hf_directories_splits_and_refusals() {
    let c = ctx(10, 1);
    let e = load_err(&hf("hf-split", "openai/gsm8k"), &c);
    assert!(
        e.contains("several data files") && e.contains("--hf-split"),
        "{e}"
    );
    let mut test_split = hf("hf-split", "openai/gsm8k");
    test_split.hf_split = Some("test".into());
    let s = load(&test_split, &c);
    assert_eq!(
        texts(&s),
        vec![jsonl("hf-gsm8k.jsonl")[2]["question"].as_str().unwrap()]
    );

    let e = load_err(&hf("hf-parquet", "openai/gsm8k"), &c);
    assert!(e.contains("parquet") && e.contains("to_json"), "{e}");
    let e = load_err(&hf("hf-gsm8k.jsonl", "lmarena-ai/VisionArena-Chat"), &c);
    assert!(
        e.contains("images") && e.contains("likaixin/InstructCoder"),
        "{e}"
    );
    let e = load_err(&hf("hf-gsm8k.jsonl", "nobody/nothing"), &c);
    assert!(
        e.contains("unknown dataset") && e.contains("philschmid/mt-bench"),
        "{e}"
    );
    // --hf-name defaults to the path, which is no dataset id.
    let mut no_name = hf("hf-gsm8k.jsonl", "x");
    no_name.hf_name = None;
    let e = load_err(&no_name, &c);
    assert!(
        e.contains("--hf-name") && e.contains("hf-gsm8k.jsonl"),
        "{e}"
    );
    let e = load_err(&hf("hf-absent.jsonl", "openai/gsm8k"), &c);
    assert!(e.contains("no such file") && e.contains("hub"), "{e}");
}

#[test]
fn hf_bad_rows_name_file_line_and_field() {
    let c = ctx(10, 1);
    let e = load_err(&hf("hf-gsm8k.jsonl", "likaixin/InstructCoder"), &c);
    assert!(
        e.contains(&format!("{}:1:", data("hf-gsm8k.jsonl"))) && e.contains("\"input\""),
        "{e}"
    );
    let list = "[\n  {\"turns\": [\"A fine first question?\"]},\n  {\"prompts\": [\"no turns here\"]}\n]\n";
    let path = temp_file("hf-bad-mt.json", list);
    let a = DatasetArgs {
        hf_name: Some("philschmid/mt-bench".into()),
        dataset_path: Some(path.clone()),
        ..hf("hf-mt-bench.json", "x")
    };
    let e = load_err(&a, &c);
    assert!(
        e.contains(&format!("{path}:3:")) && e.contains("\"turns\" is missing"),
        "{e}"
    );
    let empty = temp_file("hf-empty.json", "[]");
    let e = load_err(
        &DatasetArgs {
            dataset_path: Some(empty),
            ..a.clone()
        },
        &c,
    );
    assert!(e.contains("empty"), "{e}");
}

#[test]
fn sharegpt_multi_turn_keeps_rounds_as_turns_with_history() {
    let mut a = args("sharegpt", Some("sharegpt-multiturn.json"));
    a.multi_turn = true;
    a.disable_shuffle = true;
    a.sharegpt_output_len = Some(16);
    let c = ctx(4, 1);
    let tok = Tokenizer::embedded_default();
    let samples = load(&a, &c);
    let turns: Vec<u32> = samples.iter().map(|s| s.turn).collect();
    // garden: 3 rounds, bikes: 2, tea: 1, odd-ending: 1 (its unanswered question is no round).
    assert_eq!(turns, [0, 1, 2, 0, 1, 0, 0]);
    let third = &samples[2];
    assert_eq!(
        text(third),
        "And what should I do about slugs eating the lettuce leaves?"
    );
    let roles: Vec<&str> = third.history.iter().map(|m| m.role.as_str()).collect();
    assert_eq!(roles, ["user", "assistant", "user", "assistant"]);
    assert_eq!(third.history[0].content, text(&samples[0]));
    // A turn's prompt counts its history, each earlier reply at the output length.
    let count = |s: &str| tok.count(s).unwrap();
    assert_eq!(samples[0].prompt_len, count(text(&samples[0])));
    assert_eq!(
        samples[1].prompt_len,
        samples[0].prompt_len + 16 + count(text(&samples[1]))
    );
    assert!(samples.iter().all(|s| s.output_len == 16));

    // Caps: at most 2 turns, and a prompt cap that cuts the third garden turn's history.
    a.sharegpt_max_turns = Some(2);
    let capped: Vec<u32> = load(&a, &c).iter().map(|s| s.turn).collect();
    assert_eq!(capped, [0, 1, 0, 1, 0, 0]);
    a.sharegpt_max_turns = None;
    a.sharegpt_max_prompt_len = Some(samples[1].prompt_len);
    let cut: Vec<u32> = load(&a, &c).iter().map(|s| s.turn).collect();
    assert_eq!(&cut[..2], [0, 1]);
    assert_eq!(cut[2], 0, "the third garden turn is over the prompt cap");

    // Oversampling repeats whole conversations.
    a.sharegpt_max_prompt_len = None;
    let more = load(&a, &ctx(6, 1));
    assert_eq!(more.iter().filter(|s| s.turn == 0).count(), 6);
    for (i, s) in more.iter().enumerate() {
        if s.turn > 0 {
            assert_eq!(more[i - 1].turn, s.turn - 1);
        }
    }

    // Text-only backends cannot carry the replies.
    let completions = Ctx {
        api: Api::Completions,
        ..ctx(4, 1)
    };
    let e = load_err(&a, &completions);
    assert!(e.contains("chat backend"), "{e}");
}

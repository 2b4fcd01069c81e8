//! generated-shared-prefix, image, random-mm and --apply-chat-template, loaded through
//! `workload::load` as the CLI does.

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;

use base64::Engine;
use servebench::backend::Api;
use servebench::tokenizer::Tokenizer;
use servebench::workload::chat_template::ChatTemplate;
use servebench::workload::{load, Ctx, DatasetArgs, Message, Prompt, Sample};

fn ctx(num_prompts: usize, seed: u64, api: Api) -> Ctx {
    Ctx {
        num_prompts,
        seed,
        api,
    }
}

fn text(s: &Sample) -> &str {
    s.prompt.as_text().expect("text prompt")
}

fn err(args: &DatasetArgs, ctx: &Ctx, tok: &Tokenizer) -> String {
    format!("{:#}", load(args, ctx, tok).expect_err("should fail"))
}

// --- generated-shared-prefix --------------------------------------------------------------

fn gsp(groups: usize, per_group: usize) -> DatasetArgs {
    DatasetArgs {
        dataset_name: "generated-shared-prefix".into(),
        gsp_num_groups: groups,
        gsp_prompts_per_group: per_group,
        gsp_system_prompt_len: 48,
        gsp_question_len: 12,
        gsp_output_len: 7,
        gsp_ordered: true,
        ..Default::default()
    }
}

#[test]
fn gsp_groups_share_their_exact_system_prompt() {
    let tok = Tokenizer::embedded_default();
    let args = gsp(4, 5);
    let chat = load(&args, &ctx(1000, 11, Api::Chat), &tok).unwrap();
    assert_eq!(chat.len(), 20, "groups × prompts, not --num-prompts");
    let mut per_system: BTreeMap<&str, usize> = BTreeMap::new();
    for (slot, s) in chat.iter().enumerate() {
        assert_eq!(s.history.len(), 1);
        assert_eq!(s.history[0].role, "system");
        let system = s.history[0].content.as_str();
        *per_system.entry(system).or_default() += 1;
        // Ordered: slots of one group are adjacent.
        assert_eq!(system, chat[slot / 5 * 5].history[0].content);
        assert_eq!(tok.count(system).unwrap(), 48);
        assert_eq!(tok.count(text(s)).unwrap(), 12);
        assert_eq!(s.prompt_len, 60);
        assert_eq!(s.output_len, 7);
        assert_eq!(s.mismatch, 0);
    }
    assert_eq!(per_system.len(), 4);
    assert!(per_system.values().all(|&n| n == 5), "{per_system:?}");

    // Completions: the same system prompt and question joined into one text.
    let plain = load(&args, &ctx(1000, 11, Api::Completions), &tok).unwrap();
    assert_eq!(plain.len(), 20);
    for (p, c) in plain.iter().zip(&chat) {
        let joined = format!("{}\n\n{}", c.history[0].content, text(c));
        assert_eq!(text(p), joined);
        assert!(p.history.is_empty());
        assert_eq!(p.prompt_len, tok.count(&joined).unwrap());
    }
}

#[test]
fn gsp_is_deterministic_and_shuffled_unless_ordered() {
    let tok = Tokenizer::embedded_default();
    let mut args = gsp(3, 4);
    args.gsp_system_prompt_len = 8;
    args.gsp_ordered = false;
    let a = load(&args, &ctx(12, 5, Api::Completions), &tok).unwrap();
    let b = load(&args, &ctx(12, 5, Api::Completions), &tok).unwrap();
    let other = load(&args, &ctx(12, 6, Api::Completions), &tok).unwrap();
    assert_eq!(a, b);
    assert_ne!(a, other);
    args.gsp_ordered = true;
    let ordered = load(&args, &ctx(12, 5, Api::Completions), &tok).unwrap();
    assert_ne!(a, ordered, "shuffled order");
    let set = |v: &[Sample]| -> HashSet<String> { v.iter().map(|s| text(s).to_owned()).collect() };
    assert_eq!(set(&a), set(&ordered), "same requests");
}

fn group_sizes(samples: &[Sample]) -> Vec<usize> {
    let mut by_system: BTreeMap<&str, usize> = BTreeMap::new();
    for s in samples {
        *by_system.entry(&s.history[0].content).or_default() += 1;
    }
    let mut sizes: Vec<usize> = by_system.into_values().collect();
    sizes.sort_unstable_by(|a, b| b.cmp(a));
    sizes
}

#[test]
fn zipf_skews_group_sizes_and_uniform_does_not() {
    let tok = Tokenizer::embedded_default();
    let mut args = gsp(8, 50);
    args.gsp_system_prompt_len = 6;
    args.gsp_question_len = 2;
    let uniform = load(&args, &ctx(400, 2, Api::Chat), &tok).unwrap();
    assert_eq!(group_sizes(&uniform), vec![50; 8]);

    args.gsp_group_distribution = "zipf".into();
    args.gsp_zipf_alpha = 1.5;
    let zipf = load(&args, &ctx(400, 2, Api::Chat), &tok).unwrap();
    assert_eq!(zipf.len(), 400);
    // Slot order (ordered): group 0's system prompt is the one of the first uniform slot.
    let first_group = &uniform[0].history[0].content;
    let in_first = zipf
        .iter()
        .filter(|s| &s.history[0].content == first_group)
        .count();
    let sizes = group_sizes(&zipf);
    // Expected share of rank 1 with alpha 1.5 over 8 groups: 1 / 1.93 = 52%.
    assert_eq!(in_first, sizes[0], "group 0 is the largest: {sizes:?}");
    assert!((150..=260).contains(&in_first), "{sizes:?}");
    assert!(*sizes.last().unwrap() < 50, "{sizes:?}");
    // Questions stay those of the slot: the same pool as uniform.
    for (z, u) in zipf.iter().zip(&uniform) {
        assert_eq!(text(z), text(u));
    }
}

#[test]
fn gsp_range_ratio_follows_sglang() {
    let tok = Tokenizer::embedded_default();
    let mut args = gsp(6, 4);
    args.gsp_system_prompt_len = 40;
    args.gsp_question_len = 20;
    args.gsp_output_len = 10;
    args.gsp_range_ratio = 0.5;
    let samples = load(&args, &ctx(24, 3, Api::Chat), &tok).unwrap();
    let systems: HashSet<usize> = samples
        .iter()
        .map(|s| tok.count(&s.history[0].content).unwrap())
        .collect();
    assert!(systems.iter().all(|l| (20..=40).contains(l)), "{systems:?}");
    assert!(systems.len() > 1, "lengths vary: {systems:?}");
    for s in &samples {
        assert!((10..=20).contains(&tok.count(text(s)).unwrap()));
        assert!((5..=10).contains(&s.output_len));
    }
}

#[test]
fn gsp_bad_flags_are_named() {
    let tok = Tokenizer::embedded_default();
    let c = ctx(4, 0, Api::Completions);
    let e = err(&gsp(0, 4), &c, &tok);
    assert!(e.contains("--gsp-num-groups"), "{e}");
    let e = err(&gsp(2, 0), &c, &tok);
    assert!(e.contains("--gsp-prompts-per-group"), "{e}");
    let mut args = gsp(2, 2);
    args.gsp_range_ratio = 1.5;
    let e = err(&args, &c, &tok);
    assert!(e.contains("--gsp-range-ratio"), "{e}");
    let mut args = gsp(2, 2);
    args.gsp_group_distribution = "zipf".into();
    args.gsp_zipf_alpha = f64::NAN;
    let e = err(&args, &c, &tok);
    assert!(e.contains("--gsp-zipf-alpha"), "{e}");
}

// --- images ------------------------------------------------------------------------------

/// (format, height, width) of a base64 `data:` URL's image, read from its header.
fn image_info(url: &str) -> (&'static str, usize, usize) {
    let (head, data) = url.split_once(',').expect("data URL");
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(data)
        .expect("base64");
    let be16 = |i: usize| (bytes[i] as usize) << 8 | bytes[i + 1] as usize;
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        assert_eq!(head, "data:image/png;base64");
        assert_eq!(&bytes[12..16], b"IHDR");
        let be32 = |i: usize| u32::from_be_bytes(bytes[i..i + 4].try_into().unwrap()) as usize;
        return ("png", be32(20), be32(16));
    }
    assert!(bytes.starts_with(b"\xff\xd8"), "neither PNG nor JPEG");
    assert_eq!(head, "data:image/jpeg;base64");
    let mut i = 2;
    loop {
        assert_eq!(bytes[i], 0xff, "JPEG marker expected at {i}");
        let marker = bytes[i + 1];
        if (0xc0..=0xcf).contains(&marker) && ![0xc4, 0xc8, 0xcc].contains(&marker) {
            return ("jpeg", be16(i + 5), be16(i + 7));
        }
        i += 2 + be16(i + 2);
    }
}

fn image_args(resolution: &str, format: &str, content: &str) -> DatasetArgs {
    DatasetArgs {
        dataset_name: "image".into(),
        image_resolution: resolution.into(),
        image_format: format.into(),
        image_content: content.into(),
        random_input_len: 24,
        random_range_ratio: 0.5,
        ..Default::default()
    }
}

#[test]
fn image_dataset_sends_images_of_the_asked_size() {
    let tok = Tokenizer::embedded_default();
    for format in ["jpeg", "png"] {
        let mut args = image_args("24x40", format, "random");
        args.image_count = 3;
        args.random_image_count = true;
        let samples = load(&args, &ctx(20, 1, Api::Chat), &tok).unwrap();
        assert_eq!(samples.len(), 20);
        let counts: HashSet<usize> = samples.iter().map(|s| s.images.len()).collect();
        assert!(counts.iter().all(|n| (1..=3).contains(n)), "{counts:?}");
        assert!(counts.len() > 1, "--random-image-count varies: {counts:?}");
        for s in &samples {
            for url in &s.images {
                assert_eq!(image_info(url), (format, 24, 40));
            }
            // prompt_len counts the text only.
            assert_eq!(s.prompt_len, tok.count(text(s)).unwrap());
            assert!((12..=24).contains(&s.prompt_len), "{}", s.prompt_len);
            assert!(
                (512..=1024).contains(&s.output_len),
                "SGLang's default 1024"
            );
        }
    }
    let mut fixed = image_args("360p", "jpeg", "blank");
    fixed.image_count = 2;
    let samples = load(&fixed, &ctx(3, 1, Api::Chat), &tok).unwrap();
    assert!(samples.iter().all(|s| s.images.len() == 2));
    assert_eq!(image_info(&samples[0].images[0]), ("jpeg", 360, 640));
}

#[test]
fn blank_images_are_alike_and_random_ones_are_not() {
    let tok = Tokenizer::embedded_default();
    let mut blank = image_args("32x32", "png", "blank");
    blank.image_count = 2;
    let b = load(&blank, &ctx(4, 1, Api::Chat), &tok).unwrap();
    let blank_urls: HashSet<&String> = b.iter().flat_map(|s| &s.images).collect();
    assert_eq!(blank_urls.len(), 1);
    let mut random = blank.clone();
    random.image_content = "random".into();
    let r = load(&random, &ctx(4, 1, Api::Chat), &tok).unwrap();
    let random_urls: HashSet<&String> = r.iter().flat_map(|s| &s.images).collect();
    assert_eq!(random_urls.len(), 8);
    // Noise does not compress; white does.
    assert!(r[0].images[0].len() > 4 * b[0].images[0].len());
}

#[test]
fn random_resolution_range_and_determinism() {
    let tok = Tokenizer::embedded_default();
    let mut args = image_args("random:16x20-32x48", "jpeg", "random");
    args.image_count = 2;
    let a = load(&args, &ctx(10, 4, Api::Chat), &tok).unwrap();
    let sizes: HashSet<(usize, usize)> = a
        .iter()
        .flat_map(|s| &s.images)
        .map(|u| {
            let (_, h, w) = image_info(u);
            (h, w)
        })
        .collect();
    assert!(sizes
        .iter()
        .all(|&(h, w)| (16..=32).contains(&h) && (20..=48).contains(&w)));
    assert!(sizes.len() > 3, "{sizes:?}");
    assert_eq!(a, load(&args, &ctx(10, 4, Api::Chat), &tok).unwrap());
    let other = load(&args, &ctx(10, 5, Api::Chat), &tok).unwrap();
    assert_ne!(a[0].images, other[0].images);
    assert_ne!(a[0].prompt, other[0].prompt);
}

fn random_mm(buckets: &str) -> DatasetArgs {
    DatasetArgs {
        dataset_name: "random-mm".into(),
        random_input_len: 16,
        random_output_len: Some(9),
        random_mm_bucket_config: Some(buckets.into()),
        ..Default::default()
    }
}

#[test]
fn random_mm_draws_counts_and_buckets_like_vllm() {
    let tok = Tokenizer::embedded_default();
    let mut args = random_mm("{(8, 8, 1): 0.25, (16, 32, 1): 0.75, (720, 1280, 16): 0.0}");
    args.random_mm_base_items_per_request = 2;
    args.random_mm_num_mm_items_range_ratio = 0.5;
    let samples = load(&args, &ctx(200, 9, Api::Chat), &tok).unwrap();
    let mut counts = BTreeMap::new();
    let mut sizes = BTreeMap::new();
    for s in &samples {
        *counts.entry(s.images.len()).or_insert(0usize) += 1;
        for url in &s.images {
            let (format, h, w) = image_info(url);
            assert_eq!(format, "jpeg");
            *sizes.entry((h, w)).or_insert(0usize) += 1;
        }
        assert_eq!(s.prompt_len, tok.count(text(s)).unwrap());
        assert_eq!(s.prompt_len as i64 - s.mismatch, 16);
        assert_eq!(s.output_len, 9);
    }
    // k uniform on [floor(2·0.5), ceil(2·1.5)] = [1, 3].
    assert_eq!(counts.keys().copied().collect::<Vec<_>>(), vec![1, 2, 3]);
    let total: usize = sizes.values().sum();
    assert_eq!(sizes.len(), 2, "{sizes:?}");
    let big = sizes[&(16, 32)] as f64 / total as f64;
    assert!(
        (0.65..=0.85).contains(&big),
        "share of the 0.75 bucket: {big}"
    );

    // The image limit clamps the top of the range.
    args.random_mm_limit_mm_per_prompt = Some(r#"{"image": 1}"#.into());
    args.random_mm_num_mm_items_range_ratio = 1.0;
    let clamped = load(&args, &ctx(60, 9, Api::Chat), &tok).unwrap();
    let seen: HashSet<usize> = clamped.iter().map(|s| s.images.len()).collect();
    assert_eq!(seen, HashSet::from([0, 1]));
}

#[test]
fn random_mm_defaults_and_determinism() {
    let tok = Tokenizer::embedded_default();
    let args = DatasetArgs {
        dataset_name: "random-mm".into(),
        random_input_len: 8,
        ..Default::default()
    };
    let a = load(&args, &ctx(6, 1, Api::Chat), &tok).unwrap();
    for s in &a {
        assert_eq!(s.images.len(), 1);
        let (_, h, w) = image_info(&s.images[0]);
        assert!((h, w) == (256, 256) || (h, w) == (720, 1280), "{h}x{w}");
    }
    assert_eq!(a, load(&args, &ctx(6, 1, Api::Chat), &tok).unwrap());
    assert_ne!(a, load(&args, &ctx(6, 2, Api::Chat), &tok).unwrap());
}

#[test]
fn image_errors_are_clear() {
    let tok = Tokenizer::embedded_default();
    let chat = ctx(2, 0, Api::Chat);
    for name in ["image", "random-mm"] {
        let args = DatasetArgs {
            dataset_name: name.into(),
            ..Default::default()
        };
        let e = err(&args, &ctx(2, 0, Api::Completions), &tok);
        assert!(e.contains("openai-chat") && e.contains(name), "{e}");
    }
    let e = err(
        &random_mm("{(720, 1280, 16): 0.5, (8, 8, 1): 0.5}"),
        &chat,
        &tok,
    );
    assert!(e.contains("video is not supported"), "{e}");
    let e = err(&random_mm("{(8, 8, 1) 0.5}"), &chat, &tok);
    assert!(e.contains("--random-mm-bucket-config"), "{e}");
    let e = err(&random_mm("{(8, 8, 1): 0}"), &chat, &tok);
    assert!(e.contains("probability 0"), "{e}");
    let mut args = random_mm("{(8, 8, 1): 1}");
    args.random_mm_limit_mm_per_prompt = Some("{image: 3}".into());
    let e = err(&args, &chat, &tok);
    assert!(
        e.contains("--random-mm-limit-mm-per-prompt") && e.contains("JSON"),
        "{e}"
    );
    args.random_mm_limit_mm_per_prompt = Some(r#"{"video": 3}"#.into());
    let e = err(&args, &chat, &tok);
    assert!(e.contains("\"image\""), "{e}");
    for bad in ["1080", "12xx4", "random:10x10", "0x5"] {
        let e = err(&image_args(bad, "jpeg", "random"), &chat, &tok);
        assert!(e.contains("--image-resolution"), "{bad}: {e}");
    }
    let mut args = image_args("8x8", "jpeg", "random");
    args.image_count = 0;
    let e = err(&args, &chat, &tok);
    assert!(e.contains("--image-count"), "{e}");
}

// --- chat template -----------------------------------------------------------------------

/// A tokenizer directory: the embedded tokenizer.json beside the shipped
/// tokenizer_config.json (or beside `config`, if given).
fn tokenizer_dir(name: &str, config: Option<&str>) -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let dir = std::env::temp_dir().join(format!("servebench-wlc-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(
        root.join("assets/default-tokenizer.json"),
        dir.join("tokenizer.json"),
    )
    .unwrap();
    match config {
        Some(text) => std::fs::write(dir.join("tokenizer_config.json"), text).unwrap(),
        None => {
            std::fs::copy(
                root.join("tests/data/workloads/chat-template/tokenizer_config.json"),
                dir.join("tokenizer_config.json"),
            )
            .unwrap();
        }
    }
    dir
}

#[test]
fn chat_template_renders_like_transformers() {
    let dir = tokenizer_dir("render", None);
    // Given as the tokenizer.json file: the config is found beside it.
    let tok = Tokenizer::from_path(&dir.join("tokenizer.json")).unwrap();
    let args = DatasetArgs {
        apply_chat_template: true,
        ..Default::default()
    };
    let template = ChatTemplate::for_tokenizer(&tok, &args).unwrap();

    // Expected strings rendered by Python's jinja2 3.1 with transformers' settings.
    let mut s = Sample::text("hello world".into(), 2, 3);
    s.history.push(Message {
        role: "system".into(),
        content: " Be brief. ".into(),
    });
    template.apply(&mut s, &tok).unwrap();
    let want = "<｜begin▁of▁sentence｜><|system|>\nBe brief.\n<|user|>\nhello world<|assistant|>\n";
    assert_eq!(text(&s), want);
    assert_eq!(s.prompt_len, tok.count(want).unwrap());
    assert!(s.prompt_len > 10 && s.history.is_empty());

    let mut turns = Sample::text("again ".into(), 1, 3);
    turns.history = vec![
        Message {
            role: "user".into(),
            content: "hi".into(),
        },
        Message {
            role: "assistant".into(),
            content: "yo".into(),
        },
    ];
    template.apply(&mut turns, &tok).unwrap();
    assert_eq!(
        text(&turns),
        "<｜begin▁of▁sentence｜><|system|>\nYou are a helpful assistant.\n<|user|>\nhi\
         <|assistant|>\nyo<｜end▁of▁sentence｜><|user|>\nagain<|assistant|>\n"
    );

    // raise_exception's message reaches the user.
    let mut bad = Sample::text("x".into(), 1, 1);
    bad.history.push(Message {
        role: "tool".into(),
        content: "{}".into(),
    });
    let e = template.apply(&mut bad, &tok).unwrap_err().to_string();
    assert!(
        e.contains("Conversation roles must be user or assistant, got tool"),
        "{e}"
    );
}

#[test]
fn apply_chat_template_through_load() {
    let dir = tokenizer_dir("load", None);
    let tok = Tokenizer::from_path(&dir).unwrap();
    let mut args = gsp(2, 2);
    args.gsp_system_prompt_len = 10;
    args.gsp_question_len = 5;
    let bare = load(&args, &ctx(4, 1, Api::Completions), &tok).unwrap();
    let bare_chat = load(&args, &ctx(4, 1, Api::Chat), &tok).unwrap();
    args.apply_chat_template = true;
    let templated = load(&args, &ctx(4, 1, Api::Completions), &tok).unwrap();
    for (t, b) in templated.iter().zip(&bare) {
        assert!(t.history.is_empty());
        // No system message in a Completions prompt: the template's default system prompt.
        assert!(text(t)
            .starts_with("<｜begin▁of▁sentence｜><|system|>\nYou are a helpful assistant.\n"));
        assert!(text(t).ends_with("<|assistant|>\n"));
        assert!(text(t).contains(text(b).trim()));
        assert_eq!(t.prompt_len, tok.count(text(t)).unwrap());
        assert!(t.prompt_len > b.prompt_len);
    }
    // A chat backend sends messages; the server applies its own template.
    assert_eq!(load(&args, &ctx(4, 1, Api::Chat), &tok).unwrap(), bare_chat);
    args.skip_chat_template = true;
    assert_eq!(
        load(&args, &ctx(4, 1, Api::Completions), &tok).unwrap(),
        bare
    );
}

#[test]
fn chat_template_sources_and_errors() {
    let args = DatasetArgs {
        apply_chat_template: true,
        ..Default::default()
    };
    let embedded = Tokenizer::embedded_default();
    let e = ChatTemplate::for_tokenizer(&embedded, &args)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("--chat-template") && e.contains("tokenizer_config.json"),
        "{e}"
    );

    // --chat-template FILE works with any tokenizer.
    let dir = tokenizer_dir("file", Some("{}"));
    let file = dir.join("t.jinja");
    std::fs::write(&file, "[{{ messages[-1]['content'] }}]").unwrap();
    let with_file = DatasetArgs {
        chat_template: Some(file.to_string_lossy().into_owned()),
        ..args.clone()
    };
    let t = ChatTemplate::for_tokenizer(&embedded, &with_file).unwrap();
    let mut s = Sample::text("abc".into(), 1, 1);
    t.apply(&mut s, &embedded).unwrap();
    assert_eq!(text(&s), "[abc]");
    let missing = DatasetArgs {
        chat_template: Some("/no/such/template.jinja".into()),
        ..args.clone()
    };
    let e = ChatTemplate::for_tokenizer(&embedded, &missing)
        .unwrap_err()
        .to_string();
    assert!(e.contains("no such file"), "{e}");

    // A config without the field, a config that is not JSON, named templates.
    let tok = Tokenizer::from_path(&dir).unwrap();
    let e = ChatTemplate::for_tokenizer(&tok, &args)
        .unwrap_err()
        .to_string();
    assert!(e.contains("\"chat_template\" is missing"), "{e}");
    let broken = tokenizer_dir("broken", Some("{\n  \"chat_template\": \n"));
    let tok = Tokenizer::from_path(&broken).unwrap();
    let e = ChatTemplate::for_tokenizer(&tok, &args)
        .unwrap_err()
        .to_string();
    assert!(e.contains("tokenizer_config.json:3:"), "{e}");
    let named = tokenizer_dir(
        "named",
        Some(
            r#"{"chat_template": [{"name": "tool_use", "template": "T"}, {"name": "default", "template": "D{{ messages|length }}"}]}"#,
        ),
    );
    let tok = Tokenizer::from_path(&named).unwrap();
    let t = ChatTemplate::for_tokenizer(&tok, &args).unwrap();
    let mut s = Sample::text("q".into(), 1, 1);
    t.apply(&mut s, &tok).unwrap();
    assert_eq!(text(&s), "D1");

    // Token-id prompts cannot be templated.
    let mut ids = Sample::text(String::new(), 2, 1);
    ids.prompt = Prompt::Ids(vec![7, 8]);
    let e = t.apply(&mut ids, &tok).unwrap_err().to_string();
    assert!(e.contains("needs text prompts"), "{e}");
}

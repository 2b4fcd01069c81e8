//! Arbitrary bytes as a dataset file for every file-reading dataset, and as the text of the
//! image flags: each either loads or returns an error, never panics or hangs.
#![no_main]

use std::io::Write;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use servebench::backend::Api;
use servebench::tokenizer::Tokenizer;
use servebench::workload::{self, image, Ctx, DatasetArgs};

const DATASETS: [&str; 7] = [
    "custom", "sharegpt", "timed_trace", "mooncake", "burstgpt", "hf", "sonnet",
];

fuzz_target!(|data: &[u8]| {
    static TOK: OnceLock<Tokenizer> = OnceLock::new();
    let tok = TOK.get_or_init(Tokenizer::embedded_default);
    let Some((&k, data)) = data.split_first() else {
        return;
    };
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = image::parse_buckets(text);
        let _ = image::parse_limits(text);
        let _ = image::Resolution::parse(text);
    }
    let name = DATASETS[k as usize % DATASETS.len()];
    let path = std::env::temp_dir().join(format!("servebench-fuzz-{}.data", std::process::id()));
    let Ok(mut f) = std::fs::File::create(&path) else {
        return;
    };
    if f.write_all(data).is_err() {
        return;
    }
    drop(f);
    let args = DatasetArgs {
        dataset_name: name.into(),
        dataset_path: Some(path.to_string_lossy().into_owned()),
        hf_name: Some("likaixin/InstructCoder".into()),
        // Small lengths keep each input fast; the fuzzer is after the parsers.
        sonnet_input_len: 60,
        sonnet_prefix_len: 20,
        sonnet_output_len: 4,
        timed_trace_chunk_hash_size: 4,
        mooncake_block_size: 4,
        skip_chat_template: true,
        // The high bit of the selector reads ShareGPT as whole conversations.
        multi_turn: name == "sharegpt" && k >= 128,
        ..DatasetArgs::default()
    };
    let ctx = Ctx {
        num_prompts: 4,
        seed: 0,
        api: if k >= 128 { Api::Chat } else { Api::Completions },
    };
    let _ = workload::load(&args, &ctx, tok);
});

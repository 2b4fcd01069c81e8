//! The plan: everything built before the benchmark clock starts — every prompt, every
//! arrival time and every request's bytes on the wire. Nothing in the timed phase tokenizes
//! or formats JSON. The plan depends only on its [`PlanConfig`] and tokenizer: the same seed
//! gives the same bytes.

pub mod arrivals;
pub mod body;
pub mod framing;
pub mod random;
pub mod seeded;

use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::Context;
use serde_json::{Map, Value};

use crate::backend::{Api, Wire};
use crate::tokenizer::Tokenizer;
pub use arrivals::{arrival_times, ArrivalSpec};
pub use body::{completions_body, request_body};
pub use framing::frame_request;
pub use random::{LengthRanges, RandomDataset, RandomPrompt, RandomSpec};

/// What the plan is built from (the relevant CLI flags, already resolved).
#[derive(Clone, Debug)]
pub struct PlanConfig {
    /// The wire format of the requests (from `--backend`).
    pub api: Api,
    /// Ask for streamed replies (false with `--disable-stream`).
    pub stream: bool,
    /// Value of the body's `"model"` field (`--served-model-name`, else `--model`).
    pub model: String,
    pub host_header: String,
    /// Request path, e.g. `/v1/completions`.
    pub path: String,
    /// Extra headers in order; already includes `Authorization` if any.
    pub headers: Vec<(String, String)>,
    /// Request `i` carries `x-request-id: <prefix><i>`.
    pub request_id_prefix: String,
    pub num_prompts: usize,
    pub input_len: usize,
    pub output_len: usize,
    pub range_ratio: f64,
    pub prefix_len: usize,
    /// Requests per second; `f64::INFINITY` sends all at t0.
    pub request_rate: f64,
    pub burstiness: f64,
    pub seed: u64,
    pub ignore_eos: bool,
    pub extra_body: Map<String, Value>,
    /// LoRA adapters the requests are spread over (none: the base model).
    pub lora_modules: Vec<String>,
    /// Request i gets adapter i mod N, instead of one drawn from the seed.
    pub lora_round_robin: bool,
    /// Send the prompt as token ids (SGLang's `input_ids`).
    pub tokenize_prompt: bool,
}

impl Default for PlanConfig {
    /// vLLM's defaults for the random dataset against `/v1/completions`, all sent at once.
    fn default() -> Self {
        PlanConfig {
            api: Api::Completions,
            stream: true,
            model: String::new(),
            host_header: "127.0.0.1:8000".into(),
            path: "/v1/completions".into(),
            headers: Vec::new(),
            request_id_prefix: "bench-".into(),
            num_prompts: 1000,
            input_len: 1024,
            output_len: 128,
            range_ratio: 0.0,
            prefix_len: 0,
            request_rate: f64::INFINITY,
            burstiness: 1.0,
            seed: 0,
            ignore_eos: true,
            extra_body: Map::new(),
            lora_modules: Vec::new(),
            lora_round_robin: false,
            tokenize_prompt: false,
        }
    }
}

/// Read-only after [`build`]; shared by all shards.
#[derive(Debug)]
pub struct Plan {
    /// The wire format the requests are in, and the responses are read as.
    pub api: Api,
    /// Whether replies are streamed (else each is one body).
    pub streamed: bool,
    /// In request-index order; arrival times are non-decreasing.
    pub requests: Vec<PlannedRequest>,
    /// Net tokens by which prompts missed their target length after vLLM's retries (positive:
    /// more than asked). vLLM prints the same sum as a warning when it is not zero.
    pub length_mismatch_tokens: i64,
}

impl Plan {
    pub fn wire(&self) -> Wire {
        Wire {
            api: self.api,
            streamed: self.streamed,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlannedRequest {
    /// Tokens in the prompt as the tokenizer counts them (prefix included).
    pub prompt_len: u32,
    /// `max_tokens` asked for.
    pub output_len: u32,
    /// Planned send time, nanoseconds after t0.
    pub arrival_ns: u64,
    /// The complete HTTP/1.1 request: head and body.
    pub wire: Box<[u8]>,
}

/// Builds every request of the `random` dataset against `/v1/completions`. Requests are built
/// on all available cores; each depends only on the seed and its index, so the result does
/// not depend on the number of threads or their timing.
pub fn build(cfg: &PlanConfig, tok: &Tokenizer) -> anyhow::Result<Plan> {
    anyhow::ensure!(cfg.num_prompts >= 1, "--num-prompts must be at least 1");
    let dataset = RandomDataset::new(
        &RandomSpec {
            input_len: cfg.input_len,
            output_len: cfg.output_len,
            range_ratio: cfg.range_ratio,
            prefix_len: cfg.prefix_len,
            seed: cfg.seed,
        },
        tok,
    )?;
    let arrivals = arrival_times(
        cfg.num_prompts,
        &ArrivalSpec {
            request_rate: cfg.request_rate,
            burstiness: cfg.burstiness,
            seed: cfg.seed,
        },
    )?;
    // Checked once here so that a bad header is one error, not one per request.
    framing::frame_request("POST", &cfg.path, &cfg.host_header, &cfg.headers, b"")?;

    let built = build_parallel(cfg.num_prompts, |i| {
        build_one(cfg, &dataset, i, arrivals[i])
            .with_context(|| format!("building request {i} of the plan"))
    })?;
    let mut requests = Vec::with_capacity(built.len());
    let mut length_mismatch_tokens = 0;
    for (request, mismatch) in built {
        requests.push(request);
        length_mismatch_tokens += mismatch;
    }
    Ok(Plan {
        api: cfg.api,
        streamed: cfg.stream && cfg.api.is_streamed(),
        requests,
        length_mismatch_tokens,
    })
}

/// The LoRA adapter of request `index`: round-robin, or drawn from the seed (vLLM's
/// `--lora-assignment random`, its default).
fn lora_for(cfg: &PlanConfig, index: usize) -> Option<&str> {
    let n = cfg.lora_modules.len();
    if n == 0 {
        return None;
    }
    let k = if cfg.lora_round_robin {
        index % n
    } else {
        use rand::Rng;
        seeded::rng(cfg.seed, seeded::Stream::Lora, index as u64).gen_range(0..n)
    };
    Some(&cfg.lora_modules[k])
}

fn build_one(
    cfg: &PlanConfig,
    dataset: &RandomDataset,
    index: usize,
    arrival_ns: u64,
) -> anyhow::Result<(PlannedRequest, i64)> {
    let prompt = dataset.prompt(index)?;
    let output_len = u32::try_from(prompt.output_len).context("output length exceeds u32")?;
    let prompt_len = u32::try_from(prompt.prompt_len).context("prompt length exceeds u32")?;
    let lora = lora_for(cfg, index);
    let mut body = request_body(
        cfg.api,
        lora.unwrap_or(&cfg.model),
        lora,
        &prompt.prompt,
        output_len,
        cfg.ignore_eos,
        &cfg.extra_body,
    );
    if cfg.tokenize_prompt {
        body = body::with_input_ids(&body, &prompt.token_ids);
    }
    if !cfg.stream {
        body = body::without_streaming(&body);
    }
    let mut headers = Vec::with_capacity(cfg.headers.len() + 1);
    // vLLM sets x-request-id last, over any user header of that name.
    headers.extend(
        cfg.headers
            .iter()
            .filter(|(name, _)| !name.eq_ignore_ascii_case("x-request-id"))
            .cloned(),
    );
    headers.push((
        "x-request-id".to_string(),
        format!("{}{index}", cfg.request_id_prefix),
    ));
    let wire = frame_request("POST", &cfg.path, &cfg.host_header, &headers, &body)?;
    Ok((
        PlannedRequest {
            prompt_len,
            output_len,
            arrival_ns,
            wire: wire.into_boxed_slice(),
        },
        prompt.mismatch,
    ))
}

/// Runs `job(0..n)` on up to all available cores and returns the results in index order.
/// The first error by index wins, so failures are reported deterministically too.
pub fn build_parallel<T, F>(n: usize, job: F) -> anyhow::Result<Vec<T>>
where
    T: Send,
    F: Fn(usize) -> anyhow::Result<T> + Sync,
{
    // Small enough to balance uneven prompts, large enough to keep the counter cold.
    const CHUNK: usize = 8;
    let threads = std::thread::available_parallelism()
        .map_or(1, |p| p.get())
        .min(n.div_ceil(CHUNK))
        .max(1);
    if threads == 1 {
        return (0..n).map(&job).collect();
    }

    let next = AtomicUsize::new(0);
    let mut parts: Vec<Vec<(usize, anyhow::Result<T>)>> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let start = next.fetch_add(CHUNK, Ordering::Relaxed);
                        if start >= n {
                            return done;
                        }
                        for i in start..(start + CHUNK).min(n) {
                            done.push((i, job(i)));
                        }
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| {
                w.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    });

    let mut slots: Vec<Option<anyhow::Result<T>>> = (0..n).map(|_| None).collect();
    for (i, result) in parts.drain(..).flatten() {
        slots[i] = Some(result);
    }
    slots
        .into_iter()
        .map(|slot| slot.unwrap_or_else(|| Err(anyhow::anyhow!("plan worker skipped a request"))))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_and_tokenizer_are_shareable_across_threads() {
        fn shareable<T: Send + Sync>() {}
        shareable::<Plan>();
        shareable::<Tokenizer>();
    }

    #[test]
    fn parallel_results_are_in_index_order() {
        let out = build_parallel(1000, |i| Ok(i * 3)).unwrap();
        assert_eq!(out, (0..1000).map(|i| i * 3).collect::<Vec<_>>());
    }

    #[test]
    fn first_error_by_index_is_returned() {
        let err = build_parallel(500, |i| {
            if i == 77 || i == 400 {
                anyhow::bail!("failed at {i}")
            }
            Ok(i)
        })
        .unwrap_err();
        assert_eq!(err.to_string(), "failed at 77");
    }
}

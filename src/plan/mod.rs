//! The plan: everything built before the benchmark clock starts — every prompt, every
//! arrival time and every request's bytes on the wire. Nothing in the timed phase tokenizes
//! or formats JSON. The plan depends only on its [`PlanConfig`] and tokenizer: the same seed
//! gives the same bytes.

pub mod arrivals;
pub mod body;
pub mod framing;
pub mod live;
pub mod random;
pub mod seeded;

use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::Context;
use serde_json::{Map, Value};

use crate::backend::{Api, Wire};
use crate::tokenizer::Tokenizer;
use crate::workload::{self, DatasetArgs, Prompt, Sample};
pub use arrivals::{arrival_times, ArrivalSpec, RampUp};
pub use body::{completions_body, parts_body, request_body, Input, Parts};
pub use framing::frame_request;
pub use live::LiveWire;
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
    /// `--ramp-up-strategy` with its start and end rates (replaces `request_rate`).
    pub ramp_up: Option<RampUp>,
    /// Send requests at their samples' trace timestamps instead of drawing arrivals.
    pub replay_timestamps: bool,
    /// SGLang's `--warmup-requests`: warm up with the first request capped at this many
    /// output tokens (None: vLLM's warmups, exact copies of the first request).
    pub warmup_output_cap: Option<usize>,
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
            ramp_up: None,
            replay_timestamps: false,
            warmup_output_cap: None,
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
    /// In request-index order; the arrival times of first turns are non-decreasing, and a
    /// conversation's later turns follow its first turn in order (see [`PlannedRequest::turn`]).
    pub requests: Vec<PlannedRequest>,
    /// Net tokens by which prompts missed their target length after vLLM's retries (positive:
    /// more than asked). vLLM prints the same sum as a warning when it is not zero.
    pub length_mismatch_tokens: i64,
    /// What warmups send, when it is not simply the first request.
    pub warmup: Option<PlannedRequest>,
}

/// The index [`Plan::request`] reads as "the warmup request".
pub const WARMUP: usize = usize::MAX;

impl Plan {
    /// Request `i` of the plan, or the warmup request for [`WARMUP`].
    pub fn request(&self, i: usize) -> &PlannedRequest {
        if i == WARMUP {
            self.warmup.as_ref().unwrap_or(&self.requests[0])
        } else {
            &self.requests[i]
        }
    }

    /// Whether some request is a later turn of a conversation.
    pub fn has_conversations(&self) -> bool {
        self.requests.iter().any(|r| r.turn > 0)
    }

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
    /// Planned send time, nanoseconds after t0. A later turn is sent when the turn before
    /// it ends, so it carries its conversation's first arrival here.
    pub arrival_ns: u64,
    /// The complete HTTP/1.1 request: head and body (for a later turn: with empty replies).
    pub wire: Box<[u8]>,
    /// 0: a request of its own, or a conversation's first turn; k: the conversation's turn
    /// k, which is request `index - 1`'s next turn.
    pub turn: u32,
    /// For a later turn, the pieces its bytes are made of once the earlier replies are known.
    pub live: Option<Box<LiveWire>>,
}

/// Builds every request of the `random` dataset from `cfg`'s lengths (see [`build_from`]).
pub fn build(cfg: &PlanConfig, tok: &Tokenizer) -> anyhow::Result<Plan> {
    anyhow::ensure!(cfg.num_prompts >= 1, "--num-prompts must be at least 1");
    let args = DatasetArgs {
        random_input_len: cfg.input_len,
        random_output_len: Some(cfg.output_len),
        random_range_ratio: cfg.range_ratio,
        random_prefix_len: cfg.prefix_len,
        ..DatasetArgs::default()
    };
    let ctx = workload::Ctx {
        num_prompts: cfg.num_prompts,
        seed: cfg.seed,
        api: cfg.api,
    };
    build_from(cfg, workload::random::load(&args, &ctx, tok)?, tok)
}

/// Turns the workload's samples into requests: arrival times (drawn from the rate, the
/// ramp-up, or the samples' trace timestamps) and each request's bytes. Requests are built
/// on all available cores; each depends only on its sample, index and the seed, so the
/// result does not depend on the number of threads or their timing.
pub fn build_from(
    cfg: &PlanConfig,
    mut samples: Vec<Sample>,
    tok: &Tokenizer,
) -> anyhow::Result<Plan> {
    anyhow::ensure!(!samples.is_empty(), "the workload has no requests");
    check_turns(&samples)?;
    let first_arrivals = if cfg.replay_timestamps {
        trace_arrivals(&mut samples)?
    } else {
        arrival_times(
            samples.iter().filter(|s| s.turn == 0).count(),
            &ArrivalSpec {
                request_rate: cfg.request_rate,
                burstiness: cfg.burstiness,
                seed: cfg.seed,
                ramp_up: cfg.ramp_up,
            },
        )?
    };
    // A later turn carries its conversation's first arrival.
    let mut arrivals = Vec::with_capacity(samples.len());
    let mut conversation = 0;
    for (i, s) in samples.iter().enumerate() {
        if s.turn == 0 && i > 0 {
            conversation += 1;
        }
        arrivals.push(first_arrivals[conversation]);
    }
    // Checked once here so that a bad header is one error, not one per request.
    framing::frame_request("POST", &cfg.path, &cfg.host_header, &cfg.headers, b"")?;

    let length_mismatch_tokens = samples.iter().map(|s| s.mismatch).sum();
    let requests = build_parallel(samples.len(), |i| {
        build_one(cfg, &samples[i], tok, (i, &i.to_string()), arrivals[i])
            .with_context(|| format!("building request {i} of the plan"))
    })?;
    let warmup = match cfg.warmup_output_cap {
        Some(cap) => {
            let first = Sample {
                output_len: samples[0].output_len.min(cap).max(1),
                ..samples[0].clone()
            };
            Some(
                build_one(cfg, &first, tok, (0, "warmup"), 0)
                    .context("building the warmup request")?,
            )
        }
        None => None,
    };
    Ok(Plan {
        api: cfg.api,
        streamed: cfg.stream && cfg.api.is_streamed(),
        requests,
        length_mismatch_tokens,
        warmup,
    })
}

/// Conversations are whole: each later turn comes right after the turn before it.
fn check_turns(samples: &[Sample]) -> anyhow::Result<()> {
    let mut prev: Option<u32> = None;
    for (i, s) in samples.iter().enumerate() {
        let expected = prev.map_or(0, |p| p + 1);
        anyhow::ensure!(
            s.turn == 0 || s.turn == expected,
            "internal error: request {i} is turn {} of a conversation whose turn {} is not \
             right before it",
            s.turn,
            s.turn - 1
        );
        prev = Some(s.turn);
    }
    Ok(())
}

/// Trace replay: every conversation's first turn must carry a timestamp; conversations are
/// put in time order (stable, so equal times keep the file's order) and shifted so the
/// earliest is sent at t0. Returns one arrival per conversation.
fn trace_arrivals(samples: &mut Vec<Sample>) -> anyhow::Result<Vec<u64>> {
    if samples.iter().any(|s| s.turn > 0) {
        let mut conversations: Vec<Vec<Sample>> = Vec::new();
        for s in samples.drain(..) {
            match conversations.last_mut() {
                Some(c) if s.turn > 0 => c.push(s),
                _ => conversations.push(vec![s]),
            }
        }
        let mut firsts: Vec<Sample> = conversations.iter().map(|c| c[0].clone()).collect();
        let arrivals = trace_arrivals(&mut firsts)?;
        let ts = |c: &Vec<Sample>| c[0].timestamp_s.unwrap_or(0.0);
        conversations.sort_by(|a, b| ts(a).total_cmp(&ts(b)));
        samples.extend(conversations.into_iter().flatten());
        return Ok(arrivals);
    }
    if let Some(i) = samples.iter().position(|s| s.timestamp_s.is_none()) {
        anyhow::bail!(
            "trace replay: request {i} of the dataset has no timestamp; this dataset cannot \
             be replayed by time (drop the replay flag to use --request-rate)"
        );
    }
    let ts = |s: &Sample| s.timestamp_s.unwrap_or(0.0);
    if let Some(bad) = samples.iter().find(|s| !ts(s).is_finite()) {
        anyhow::bail!("trace replay: timestamp {} is not finite", ts(bad));
    }
    samples.sort_by(|a, b| ts(a).total_cmp(&ts(b)));
    let first = ts(&samples[0]);
    samples
        .iter()
        .map(|s| {
            let ns = (ts(s) - first) * 1e9;
            anyhow::ensure!(
                ns < u64::MAX as f64 / 2.0,
                "trace replay: timestamp {} is too far after the first ({first})",
                ts(s)
            );
            Ok(ns.round() as u64)
        })
        .collect()
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

/// The sample's parts in the form `api` takes: ids are decoded for APIs that take only
/// text, and text is encoded for `--tokenize-prompt`.
fn parts_for<'s>(
    cfg: &PlanConfig,
    sample: &'s Sample,
    tok: &Tokenizer,
    owned_text: &'s mut String,
    owned_ids: &'s mut Vec<u32>,
) -> anyhow::Result<Parts<'s>> {
    let takes_ids = matches!(cfg.api, Api::Completions | Api::SglangGenerate);
    let input = match &sample.prompt {
        Prompt::Ids(ids) if takes_ids => Input::Ids(ids),
        Prompt::Ids(ids) => {
            *owned_text = tok.decode(ids)?;
            Input::Text(owned_text)
        }
        Prompt::Text(text) if cfg.tokenize_prompt => match &sample.token_ids {
            Some(ids) => Input::Ids(ids),
            None => {
                *owned_ids = tok.encode(text)?;
                Input::Ids(owned_ids)
            }
        },
        Prompt::Text(text) => Input::Text(text),
    };
    let chat_like = matches!(cfg.api, Api::Chat | Api::Responses);
    anyhow::ensure!(
        sample.history.is_empty() || chat_like,
        "this dataset sends a conversation (system prompt or earlier turns), which --backend \
         with the {:?} format cannot carry; use a chat backend (e.g. openai-chat) or \
         --apply-chat-template",
        cfg.api
    );
    anyhow::ensure!(
        sample.images.is_empty() || matches!(cfg.api, Api::Chat | Api::SglangGenerate),
        "this dataset sends images, which only chat backends (openai-chat, vllm-chat, \
         sglang-oai-chat) and SGLang's native /generate carry"
    );
    Ok(Parts {
        input,
        history: &sample.history,
        images: &sample.images,
    })
}

/// Request `index` of the plan; its `x-request-id` ends in `id` (the index, or "warmup").
fn build_one(
    cfg: &PlanConfig,
    sample: &Sample,
    tok: &Tokenizer,
    (index, id): (usize, &str),
    arrival_ns: u64,
) -> anyhow::Result<PlannedRequest> {
    let output_len = u32::try_from(sample.output_len).context("output length exceeds u32")?;
    let prompt_len = u32::try_from(sample.prompt_len).context("prompt length exceeds u32")?;
    let marked;
    let sample = if sample.turn > 0 {
        marked = with_reply_markers(cfg, sample)?;
        &marked
    } else {
        sample
    };
    let lora = lora_for(cfg, index);
    let (mut text, mut ids) = (String::new(), Vec::new());
    let parts = parts_for(cfg, sample, tok, &mut text, &mut ids)?;
    let mut body = parts_body(
        cfg.api,
        lora.unwrap_or(&cfg.model),
        lora,
        &parts,
        output_len,
        cfg.ignore_eos,
        &cfg.extra_body,
    );
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
        format!("{}{id}", cfg.request_id_prefix),
    ));
    let mut wire = frame_request("POST", &cfg.path, &cfg.host_header, &headers, &body)?;
    let live = match sample.turn {
        0 => None,
        turn => {
            let live = LiveWire::from_marked(&wire, turn as usize)?;
            live.assemble(std::iter::repeat_n(&b""[..], turn as usize), &mut wire);
            Some(Box::new(live))
        }
    };
    Ok(PlannedRequest {
        prompt_len,
        output_len,
        arrival_ns,
        wire: wire.into_boxed_slice(),
        turn: sample.turn,
        live,
    })
}

/// A later turn with [`live::marker`]s where the server's earlier replies will go.
fn with_reply_markers(cfg: &PlanConfig, sample: &Sample) -> anyhow::Result<Sample> {
    anyhow::ensure!(
        matches!(cfg.api, Api::Chat | Api::Responses),
        "multi-turn conversations carry each reply into the next turn as chat messages: use a \
         chat backend (openai-chat, vllm-chat, sglang-oai-chat, lmdeploy-chat) or \
         openai-responses"
    );
    let mut marked = sample.clone();
    let mut replies = 0;
    for m in marked.history.iter_mut().filter(|m| m.role == "assistant") {
        m.content = live::marker(replies);
        replies += 1;
    }
    anyhow::ensure!(
        replies == sample.turn as usize,
        "internal error: turn {} of a conversation has {replies} earlier replies",
        sample.turn
    );
    Ok(marked)
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

    fn body_of(r: &PlannedRequest) -> Value {
        let at = r.wire.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        serde_json::from_slice(&r.wire[at..]).unwrap()
    }

    fn cfg(api: Api) -> PlanConfig {
        PlanConfig {
            api,
            model: "m".into(),
            ..PlanConfig::default()
        }
    }

    #[test]
    fn trace_timestamps_become_sorted_arrivals_from_zero() {
        let tok = Tokenizer::embedded_default();
        let mut samples = Vec::new();
        for (text, ts) in [
            ("late", 12.0),
            ("first", 10.5),
            ("mid", 11.0),
            ("tie", 11.0),
        ] {
            let mut s = Sample::text(text.into(), 1, 4);
            s.timestamp_s = Some(ts);
            samples.push(s);
        }
        let c = PlanConfig {
            replay_timestamps: true,
            ..cfg(Api::Completions)
        };
        let plan = build_from(&c, samples.clone(), &tok).unwrap();
        let arrivals: Vec<u64> = plan.requests.iter().map(|r| r.arrival_ns).collect();
        assert_eq!(arrivals, [0, 500_000_000, 500_000_000, 1_500_000_000]);
        let prompts: Vec<Value> = plan
            .requests
            .iter()
            .map(|r| body_of(r)["prompt"].clone())
            .collect();
        assert_eq!(prompts, ["first", "mid", "tie", "late"]);

        samples[2].timestamp_s = None;
        let e = build_from(&c, samples, &tok).unwrap_err().to_string();
        assert!(e.contains("no timestamp"), "{e}");
    }

    #[test]
    fn each_api_gets_the_parts_it_can_carry() {
        let tok = Tokenizer::embedded_default();
        let ids = tok.encode("hello world").unwrap();
        let mut s = Sample::text(String::new(), ids.len(), 4);
        s.prompt = Prompt::Ids(ids.clone());

        let plan = build_from(&cfg(Api::Completions), vec![s.clone()], &tok).unwrap();
        assert_eq!(body_of(&plan.requests[0])["prompt"], serde_json::json!(ids));
        let plan = build_from(&cfg(Api::SglangGenerate), vec![s.clone()], &tok).unwrap();
        assert_eq!(
            body_of(&plan.requests[0])["input_ids"],
            serde_json::json!(ids)
        );
        // Text-only APIs get the decoded text.
        let plan = build_from(&cfg(Api::Tgi), vec![s.clone()], &tok).unwrap();
        assert_eq!(body_of(&plan.requests[0])["inputs"], "hello world");

        let mut chat = Sample::text("what is in it?".into(), 4, 4);
        chat.history = vec![workload::Message {
            role: "system".into(),
            content: "be brief".into(),
        }];
        chat.images = vec!["data:image/png;base64,AAAA".into()];
        let plan = build_from(&cfg(Api::Chat), vec![chat.clone()], &tok).unwrap();
        let body = body_of(&plan.requests[0]);
        assert_eq!(
            body["messages"][0],
            serde_json::json!({"role": "system", "content": "be brief"})
        );
        assert_eq!(body["messages"][1]["role"], "user");
        let content = &body["messages"][1]["content"];
        assert_eq!(
            content[0],
            serde_json::json!({"type": "text", "text": "what is in it?"})
        );
        assert_eq!(content[1]["image_url"]["url"], "data:image/png;base64,AAAA");

        let e = build_from(&cfg(Api::Completions), vec![chat.clone()], &tok).unwrap_err();
        assert!(format!("{e:#}").contains("chat backend"), "{e:#}");
        chat.history.clear();
        let e = build_from(&cfg(Api::Tgi), vec![chat.clone()], &tok).unwrap_err();
        assert!(format!("{e:#}").contains("images"), "{e:#}");
        let plan = build_from(&cfg(Api::SglangGenerate), vec![chat], &tok).unwrap();
        assert_eq!(
            body_of(&plan.requests[0])["image_data"],
            serde_json::json!(["data:image/png;base64,AAAA"])
        );
    }

    #[test]
    fn sglang_warmup_is_the_first_request_with_a_short_output() {
        let tok = Tokenizer::embedded_default();
        let samples = vec![
            Sample::text("a b c".into(), 3, 200),
            Sample::text("d".into(), 1, 5),
        ];
        let c = PlanConfig {
            warmup_output_cap: Some(32),
            ..cfg(Api::Completions)
        };
        let plan = build_from(&c, samples.clone(), &tok).unwrap();
        let warm = body_of(plan.request(WARMUP));
        assert_eq!(warm["max_tokens"], 32);
        assert_eq!(warm["prompt"], "a b c");
        assert!(String::from_utf8_lossy(&plan.request(WARMUP).wire)
            .contains("x-request-id: bench-warmup"));
        assert_eq!(body_of(&plan.requests[0])["max_tokens"], 200);
        // vLLM's warmups are exact copies of the first request.
        let plain = build_from(&cfg(Api::Completions), samples, &tok).unwrap();
        assert_eq!(plain.request(WARMUP), &plain.requests[0]);
    }

    fn conversation(first: &str, turns: usize, ts: f64) -> Vec<Sample> {
        let mut out: Vec<Sample> = Vec::new();
        for t in 0..turns {
            let mut s = Sample::text(format!("{first} {t}"), 3, 4);
            s.turn = t as u32;
            s.timestamp_s = Some(ts);
            if let Some(before) = out.last() {
                s.history = before.history.clone();
                s.history.push(workload::Message {
                    role: "user".into(),
                    content: before.prompt.as_text().unwrap().into(),
                });
                s.history.push(workload::Message {
                    role: "assistant".into(),
                    content: "recorded".into(),
                });
            }
            out.push(s);
        }
        out
    }

    #[test]
    fn conversations_share_one_arrival_and_keep_their_turns_together() {
        let tok = Tokenizer::embedded_default();
        let mut samples = conversation("late", 2, 9.0);
        samples.extend(conversation("early", 3, 5.0));
        samples.extend(conversation("alone", 1, 7.0));
        let c = PlanConfig {
            replay_timestamps: true,
            ..cfg(Api::Chat)
        };
        let plan = build_from(&c, samples.clone(), &tok).unwrap();
        assert!(plan.has_conversations());
        let shape: Vec<(u32, u64)> = plan
            .requests
            .iter()
            .map(|r| (r.turn, r.arrival_ns / 1_000_000_000))
            .collect();
        assert_eq!(shape, [(0, 0), (1, 0), (2, 0), (0, 2), (0, 4), (1, 4)]);
        // A later turn is pieces with room for each earlier reply; its plain wire has them
        // empty.
        let third = &plan.requests[2];
        let live = third.live.as_deref().unwrap();
        assert_eq!(live.replies(), 2);
        let body = body_of(third);
        let m = &body["messages"];
        assert_eq!(
            m[0],
            serde_json::json!({"role": "user", "content": "early 0"})
        );
        assert_eq!(
            m[1],
            serde_json::json!({"role": "assistant", "content": ""})
        );
        assert_eq!(m[4]["content"][0]["text"], "early 2");
        let mut wire = Vec::new();
        live.assemble([&b"A"[..], &b"B\\n"[..]].into_iter(), &mut wire);
        let with = PlannedRequest {
            wire: wire.into_boxed_slice(),
            ..third.clone()
        };
        let body = body_of(&with);
        assert_eq!(body["messages"][1]["content"], "A");
        assert_eq!(body["messages"][3]["content"], "B\n");

        // Arrivals from a rate count conversations.
        let plan = build_from(&cfg(Api::Chat), samples.clone(), &tok).unwrap();
        assert_eq!(plan.requests.len(), 6);
        // Text-only APIs cannot carry the replies.
        let e = build_from(&cfg(Api::Completions), samples, &tok).unwrap_err();
        assert!(format!("{e:#}").contains("chat backend"), "{e:#}");
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

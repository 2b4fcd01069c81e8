//! Command line: `vllm bench serve`'s flags, names and defaults, plus servebench's own.
//!
//! `servebench [FLAGS]` and `servebench serve [FLAGS]` run the benchmark; `servebench mock`
//! runs the built-in mock server; `servebench demo [FLAGS]` runs the benchmark against a mock
//! started in the same process.

use clap::{Args, Parser, Subcommand};

use crate::engine::IoEngine;
use crate::mock::MockArgs;
use crate::report::ReportStyle;
use crate::workload::DatasetArgs;

#[derive(Parser, Debug)]
#[command(
    name = "servebench",
    version,
    about = "Benchmark LLM inference servers like `vllm bench serve`, from a client that stays out of the numbers",
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub bench: BenchArgs,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the benchmark (the same as giving no subcommand).
    Serve(BenchArgs),
    /// Run the built-in mock OpenAI-compatible server.
    Mock(MockArgs),
    /// Start the mock server on loopback and benchmark it (no server or network needed).
    Demo(DemoArgs),
    /// Measure this host's client against the mock's truth log: timing error, CPU cost and
    /// the highest load it carries within an error budget.
    Calibrate(crate::calibrate::CalibrateArgs),
    /// Make the HTML report (plots and summary) from a saved result file (--save-detailed
    /// for the plots), or the curves of a sweep from its summary.json.
    Report(ReportArgs),
    /// Result files side by side: key figures, change against the first in %, better/worse.
    Compare(CompareArgs),
    /// Merge the result files of a multi-host run (files, or a directory of them) into one.
    Merge(MergeArgs),
    /// Many runs in one command: sweep request rates, concurrencies and parameter sets, or
    /// search for the highest load that meets an SLO (`serve`'s flags apply to every run).
    Sweep(Box<crate::sweep::SweepArgs>),
}

#[derive(Args, Debug, Clone)]
pub struct MergeArgs {
    /// Host result files (--save-result), or one directory: every *.json in it with a
    /// `servebench_host` key.
    #[arg(required = true, num_args = 1..)]
    pub inputs: Vec<std::path::PathBuf>,
    /// Where to write the merged result (default: only print it).
    #[arg(short, long)]
    pub output: Option<std::path::PathBuf>,
}

#[derive(Args, Debug, Clone)]
pub struct ReportArgs {
    /// The result file (--save-result --save-detailed; JSON lines: see --index), or a
    /// sweep's summary.json.
    pub result: std::path::PathBuf,
    /// Where to write the page (default: the result file's name with .html).
    #[arg(short, long)]
    pub output: Option<std::path::PathBuf>,
    /// Which result of a JSON-lines file to report, from 1 (default: the last).
    #[arg(long)]
    pub index: Option<usize>,
}

#[derive(Args, Debug, Clone)]
pub struct CompareArgs {
    /// Result files (JSON, or JSON lines with one result per line); the first is the baseline.
    #[arg(required = true, num_args = 1..)]
    pub files: Vec<std::path::PathBuf>,
}

#[derive(Args, Debug, Clone)]
pub struct DemoArgs {
    /// The mock's time to first token, in milliseconds.
    #[arg(long, default_value_t = 50.0)]
    pub mock_ttft_ms: f64,
    /// The mock's time between tokens, in milliseconds.
    #[arg(long, default_value_t = 10.0)]
    pub mock_itl_ms: f64,
    #[command(flatten)]
    pub bench: BenchArgs,
}

#[derive(Args, Debug, Clone)]
pub struct BenchArgs {
    // --- target -------------------------------------------------------------------------
    /// Backend (request and stream format): vllm, openai, lmdeploy, scalellm, sglang-oai,
    /// llama.cpp, truss (OpenAI Completions); openai-chat, vllm-chat, sglang-oai-chat,
    /// lmdeploy-chat (Chat Completions); openai-responses; sglang, sglang-native (SGLang
    /// /generate); tgi; tensorrt-llm, trt (Triton); deepspeed-mii. See docs/BACKENDS.md.
    #[arg(long, default_value = "openai")]
    pub backend: String,
    /// Label (prefix) of the result file name; defaults to the backend.
    #[arg(long)]
    pub label: Option<String>,
    /// Server base URL (e.g. http://10.0.0.5:8000); overrides --host/--port.
    #[arg(long)]
    pub base_url: Option<String>,
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    #[arg(long, default_value_t = 8000)]
    pub port: u16,
    /// API path appended to the base URL; left at its default, each backend uses its own
    /// (e.g. /v1/chat/completions for openai-chat, /generate for sglang).
    #[arg(long, default_value = "/v1/completions")]
    pub endpoint: String,
    /// Extra request headers, KEY=VALUE (repeatable; several may follow one flag).
    #[arg(long, value_name = "KEY=VALUE", num_args = 0.., action = clap::ArgAction::Append)]
    pub header: Vec<String>,
    /// Model name; if absent, the first id from the server's /v1/models.
    #[arg(long)]
    pub model: Option<String>,
    /// Value of the request's "model" field, when it differs from --model.
    #[arg(long)]
    pub served_model_name: Option<String>,
    /// tokenizer.json, a directory holding one, or a hub id (default: --model).
    #[arg(long)]
    pub tokenizer: Option<String>,
    /// Prefix of the x-request-id header (default: bench-<8 random hex>-).
    #[arg(long)]
    pub request_id_prefix: Option<String>,
    /// JSON object merged into every request body (last, so its keys win).
    #[arg(long, alias = "extra-request-body")]
    pub extra_body: Option<String>,
    /// Sampling parameters, sent only when given (OpenAI-compatible backends only).
    #[arg(long)]
    pub temperature: Option<f64>,
    #[arg(long)]
    pub top_p: Option<f64>,
    #[arg(long)]
    pub top_k: Option<i64>,
    #[arg(long)]
    pub min_p: Option<f64>,
    #[arg(long)]
    pub frequency_penalty: Option<f64>,
    #[arg(long)]
    pub presence_penalty: Option<f64>,
    #[arg(long)]
    pub repetition_penalty: Option<f64>,
    /// LoRA adapters to spread the requests over (each request's `model`, or SGLang's
    /// `lora_path`).
    #[arg(long, num_args = 1.., value_name = "NAME")]
    pub lora_modules: Vec<String>,
    /// How requests get their adapter: random (from --seed) or round-robin.
    #[arg(long, default_value = "random", value_parser = ["random", "round-robin"])]
    pub lora_assignment: String,
    /// Before the run, send the first request every 5 s until it succeeds, for at most this
    /// many seconds (0: skip the check, vLLM's default).
    #[arg(long, default_value_t = 0)]
    pub ready_check_timeout_sec: u64,
    /// POST /start_profile before the run and /stop_profile after it.
    #[arg(long)]
    pub profile: bool,
    /// Reset the server's prefix cache before the run (vLLM /reset_prefix_cache, SGLang
    /// /flush_cache).
    #[arg(long)]
    pub flush_cache: bool,
    /// Send prompts as token ids (`input_ids`; SGLang's native backend only).
    #[arg(long)]
    pub tokenize_prompt: bool,
    /// Ask for one JSON reply instead of a stream (then TTFT = E2EL); OpenAI APIs and SGLang.
    #[arg(long)]
    pub disable_stream: bool,
    /// Log probabilities per output token (the Completions body's `logprobs`).
    #[arg(long)]
    pub logprobs: Option<u32>,

    // --- workload ------------------------------------------------------------------------
    #[command(flatten)]
    pub dataset: DatasetArgs,
    #[arg(long, default_value_t = 1000)]
    pub num_prompts: usize,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Send "ignore_eos": true (always on for the random dataset, as in vLLM).
    #[arg(long)]
    pub ignore_eos: bool,

    // --- load shape ----------------------------------------------------------------------
    /// Requests per second ("inf": all at once).
    #[arg(long, default_value = "inf", value_parser = parse_rate)]
    pub request_rate: f64,
    /// Gamma shape of the arrival gaps (1 = Poisson).
    #[arg(long, default_value_t = 1.0)]
    pub burstiness: f64,
    /// Most requests in flight at once, across all shards.
    #[arg(long)]
    pub max_concurrency: Option<usize>,
    /// Requests (copies of the first) sent before the measured run.
    #[arg(long, default_value_t = 0)]
    pub num_warmups: usize,
    /// Stop sending new requests this many seconds after the start; requests not sent by then
    /// are left out of the results. With a finite --request-rate the plan holds
    /// ceil(rate × duration) requests (in place of --num-prompts).
    #[arg(long)]
    pub duration: Option<f64>,
    /// SGLang's warmup: this many copies of the first request, capped at 32 output tokens.
    #[arg(long)]
    pub warmup_requests: Option<usize>,
    /// Ramp the request rate from --ramp-up-start-rps to --ramp-up-end-rps over the run:
    /// linear or exponential (instead of --request-rate).
    #[arg(long, value_parser = ["linear", "exponential"])]
    pub ramp_up_strategy: Option<String>,
    #[arg(long)]
    pub ramp_up_start_rps: Option<f64>,
    #[arg(long)]
    pub ramp_up_end_rps: Option<f64>,
    /// timed_trace: send each request at its trace timestamp (vLLM's default); --no-self-timed
    /// paces it by --request-rate instead.
    #[arg(long, overrides_with = "no_self_timed")]
    pub self_timed: bool,
    #[arg(long)]
    pub no_self_timed: bool,

    // --- results -------------------------------------------------------------------------
    #[arg(long)]
    pub save_result: bool,
    /// Keep per-request arrays (ttfts, itls, ...) in the result file.
    #[arg(long)]
    pub save_detailed: bool,
    /// Append the result to the file as one more JSON line.
    #[arg(long)]
    pub append_result: bool,
    #[arg(long)]
    pub result_dir: Option<String>,
    #[arg(long)]
    pub result_filename: Option<String>,
    /// KEY=VALUE pairs copied into the result file.
    #[arg(long, value_name = "KEY=VALUE", num_args = 0.., action = clap::ArgAction::Append)]
    pub metadata: Vec<String>,
    /// Metrics to report percentiles for: ttft,tpot,itl,e2el,client_queue_time,e2el_including_client_queue.
    #[arg(long)]
    pub percentile_metrics: Option<String>,
    /// Percentiles to report, e.g. 25,50,99.9.
    #[arg(long, default_value = "99")]
    pub metric_percentiles: String,
    #[arg(long)]
    pub disable_tqdm: bool,

    // --- servebench's own ----------------------------------------------------------------
    /// Client shards (one pinned executor each); default: the CPUs this process may use.
    #[arg(long)]
    pub num_shards: Option<usize>,
    /// Microseconds a shard keeps polling for I/O before it sleeps (0: sleep at once). Busy
    /// polling burns its CPU but saves a wake-up per event when events are dense.
    #[arg(long, default_value_t = 0)]
    pub busy_poll_us: u64,
    /// Shard event loop: uring (servebench's own io_uring loop: multishot receives into
    /// provided buffers, one wait and one timestamp per batch of completions) or glommio (an
    /// executor with a task per slot; reads each socket with a poll and a recv). uring costs
    /// less CPU per event and sees events sooner under load (docs/PERFORMANCE.md).
    #[arg(long, value_enum, default_value_t = IoEngine::Uring)]
    pub io_engine: IoEngine,

    // Tokenizer (issue 10)
    /// Branch, tag or commit of a hub-id --tokenizer / --model (default: main).
    #[arg(long, value_name = "REV")]
    pub tokenizer_revision: Option<String>,
    /// vLLM's tokenizer mode (auto, hf, slow, mistral, ...): accepted for compatibility.
    /// servebench always runs the tokenizer.json fast tokenizer; other modes warn once.
    #[arg(long, value_name = "MODE")]
    pub tokenizer_mode: Option<String>,
    /// Accepted for compatibility and changes nothing: tokenizer.json runs no remote code.
    #[arg(long)]
    pub trust_remote_code: bool,
    /// Run without a tokenizer: output tokens come from the server's usage (else 1, as in
    /// vLLM); datasets built from token ids refuse to run.
    #[arg(long)]
    pub skip_tokenizer_init: bool,
    /// Do not ask the server's /tokenize to check and align random-style prompts.
    #[arg(long)]
    pub skip_server_alignment: bool,

    // HTML report (issue 5)
    /// Write a self-contained HTML page with the run's plots and summary to this path.
    #[arg(long, value_name = "PATH")]
    pub html_report: Option<String>,

    // Results (issue 5)
    /// Goodput SLOs as KEY:VALUE pairs in milliseconds, keys ttft, tpot, e2el (e.g.
    /// `--goodput ttft:500 tpot:50`): a request is good when it meets every one.
    #[arg(long, value_name = "KEY:VALUE", num_args = 1.., action = clap::ArgAction::Append)]
    pub goodput: Vec<String>,
    /// Which result block to print: auto (SGLang's for sglang* backends, else vLLM's), vllm,
    /// sglang or both. The client-health section follows either.
    #[arg(long, value_enum, default_value_t = ReportStyle::Auto)]
    pub report_style: ReportStyle,
    /// SGLang's result file: append one JSON line with SGLang's keys per run.
    #[arg(long)]
    pub output_file: Option<String>,
    /// Add the per-request arrays to the `--output-file` line (SGLang's default file name when
    /// no --output-file is given).
    #[arg(long)]
    pub output_details: bool,
    /// SGLang's `tag`, written into the `--output-file` line.
    #[arg(long)]
    pub tag: Option<String>,

    // Reliability: timeouts (issue 6)
    /// Longest a request may take, from its start (connect and write included) to the end of
    /// its response, in seconds; past it the request fails as a timeout. The default, 6 h, is
    /// aiohttp's total timeout that `vllm bench serve` uses. 0: no limit.
    #[arg(long, value_name = "SECS", default_value_t = 21600.0, value_parser = timeout_secs)]
    pub request_timeout: f64,
    /// Longest silence while waiting for a response: no byte for this many seconds fails the
    /// request as a timeout (counted from its start until the first byte). 0: no limit.
    #[arg(long, value_name = "SECS", default_value_t = 300.0, value_parser = timeout_secs)]
    pub stall_timeout: f64,

    // --- stopping a run (issue 6, part C) --------------------------------------------------
    /// After the first SIGINT/SIGTERM no new request is sent; the requests in flight get this
    /// many seconds to finish before they are aborted (a second signal aborts at once). The
    /// results so far are reported and saved, marked partial.
    #[arg(long, default_value_t = 30.0, value_parser = parse_grace)]
    pub shutdown_grace: f64,

    // TLS (issue 6)
    /// PEM file with the CA certificate(s) to trust for an https:// --base-url, instead of
    /// the system's roots (as curl's --cacert).
    #[arg(long, value_name = "PATH")]
    pub ca_cert: Option<std::path::PathBuf>,
    /// Do not verify the https:// server's certificate (a warning says so).
    #[arg(long)]
    pub insecure: bool,

    // --- multi-host runs (issue 7) ----------------------------------------------------------
    /// Hosts running this plan together (default: $SERVEBENCH_NUM_HOSTS, $SLURM_NTASKS,
    /// $OMPI_COMM_WORLD_SIZE, $PMI_SIZE, else 1). Every host builds the same plan and sends
    /// request i when i mod N is its index (conversations whole).
    #[arg(long, value_name = "N")]
    pub num_hosts: Option<usize>,
    /// This host's index, 0-based (default: $JOB_COMPLETION_INDEX, $SLURM_PROCID,
    /// $OMPI_COMM_WORLD_RANK, $PMI_RANK, $PMIX_RANK, else 0).
    #[arg(long, value_name = "I")]
    pub host_index: Option<usize>,
    /// Start the timed phase at this wall-clock instant: RFC 3339, unix seconds, or +SECS
    /// from now. Every host given the same instant starts together.
    #[arg(long, value_name = "TIME")]
    pub start_at: Option<String>,

    // --- saturation (issue 8) ---------------------------------------------------------------
    /// Stop the run early once the server clearly cannot keep up with the request rate: the
    /// backlog of due requests grows by more than 10 % of the rate, with TTFT rising or the
    /// --max-concurrency queue growing. Sending stops, requests in flight get 5 s, and the
    /// result is marked partial with `"saturation"`. `servebench sweep` turns it on.
    #[arg(long)]
    pub stop_on_saturation: bool,
    /// Seconds into the run before --stop-on-saturation may judge.
    #[arg(long, value_name = "SECS", default_value_t = 5.0, value_parser = parse_grace)]
    pub saturation_min_seconds: f64,
    /// A file shared by the hosts of a multi-host run: a host whose check stops the run
    /// creates it, and a host that sees it stops too (set by `servebench sweep`).
    #[arg(long, value_name = "PATH", hide = true)]
    pub saturation_marker: Option<std::path::PathBuf>,
}

fn parse_grace(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && (0.0..=1e6).contains(&v) => Ok(v),
        _ => Err(format!(
            "'{s}' is not a number of seconds from 0 to 1000000"
        )),
    }
}

/// A timeout in seconds: finite, not negative, at most a year (0 disables it).
fn timeout_secs(v: &str) -> Result<f64, String> {
    let secs: f64 = v
        .parse()
        .map_err(|_| format!("`{v}` is not a number of seconds"))?;
    if !secs.is_finite() || !(0.0..=365.0 * 86400.0).contains(&secs) {
        return Err(format!(
            "`{v}`: a timeout must be between 0 and 31536000 seconds"
        ));
    }
    Ok(secs)
}

impl BenchArgs {
    /// `--request-timeout` and `--stall-timeout` (0 is none).
    pub fn timeouts(&self) -> crate::engine::Timeouts {
        let limit = |s: f64| (s > 0.0).then(|| std::time::Duration::from_secs_f64(s));
        crate::engine::Timeouts {
            request: limit(self.request_timeout),
            stall: limit(self.stall_timeout),
        }
    }
}

fn parse_rate(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("'{s}' is not a number or 'inf'"))?;
    if v.is_nan() || v <= 0.0 {
        return Err(format!("must be positive (got {s})"));
    }
    Ok(v)
}

/// vLLM's parser accepts `--result_filename` for `--result-filename`: rewrite underscores in
/// long option names (not in their values) before clap sees them.
pub fn normalize_args(args: impl IntoIterator<Item = String>) -> Vec<String> {
    args.into_iter()
        .map(|a| match a.strip_prefix("--") {
            Some(rest) if !rest.is_empty() => {
                let (name, value) = match rest.split_once('=') {
                    Some((n, v)) => (n, Some(v)),
                    None => (rest, None),
                };
                let name = name.replace('_', "-");
                match value {
                    Some(v) => format!("--{name}={v}"),
                    None => format!("--{name}"),
                }
            }
            _ => a,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        let argv =
            std::iter::once("servebench".to_string()).chain(args.iter().map(|s| s.to_string()));
        Cli::try_parse_from(normalize_args(argv))
    }

    #[test]
    fn defaults_match_vllm_bench_serve() {
        let b = parse(&[]).unwrap().bench;
        assert_eq!(b.backend, "openai");
        assert_eq!((b.host.as_str(), b.port), ("127.0.0.1", 8000));
        assert_eq!(b.endpoint, "/v1/completions");
        assert_eq!(b.dataset.dataset_name, "random");
        assert_eq!(b.num_prompts, 1000);
        assert_eq!(
            (b.dataset.random_input_len(), b.dataset.random_output_len()),
            (1024, 128)
        );
        assert_eq!(b.dataset.random_range_ratio, 0.0);
        assert!(b.request_rate.is_infinite());
        assert_eq!(b.burstiness, 1.0);
        assert_eq!(b.metric_percentiles, "99");
        assert_eq!(b.seed, 0);
        assert!(b.max_concurrency.is_none());
    }

    #[test]
    fn underscore_aliases_and_multi_value_flags() {
        let b = parse(&[
            "--result_filename=x.json",
            "--max_concurrency",
            "8",
            "--header",
            "a=1",
            "b=2",
            "--metadata",
            "k=v",
            "--request-rate",
            "12.5",
        ])
        .unwrap()
        .bench;
        assert_eq!(b.result_filename.as_deref(), Some("x.json"));
        assert_eq!(b.max_concurrency, Some(8));
        assert_eq!(b.header, vec!["a=1", "b=2"]);
        assert_eq!(b.metadata, vec!["k=v"]);
        assert_eq!(b.request_rate, 12.5);
    }

    #[test]
    fn values_with_underscores_are_left_alone() {
        let argv = normalize_args(["--model".into(), "my_model".into(), "--label=a_b".into()]);
        assert_eq!(argv, vec!["--model", "my_model", "--label=a_b"]);
    }

    #[test]
    fn bad_rate_is_rejected_with_its_value() {
        let err = parse(&["--request-rate", "fast"]).unwrap_err().to_string();
        assert!(err.contains("fast"), "{err}");
        assert!(parse(&["--request-rate", "0"]).is_err());
    }

    #[test]
    fn subcommands_parse() {
        assert!(
            matches!(parse(&["serve", "--num-prompts", "5"]).unwrap().command, Some(Command::Serve(b)) if b.num_prompts == 5)
        );
        assert!(
            matches!(parse(&["demo", "--mock-itl-ms", "2"]).unwrap().command, Some(Command::Demo(d)) if d.mock_itl_ms == 2.0)
        );
    }
}

//! `servebench sweep`: many runs in one command.
//!
//! - A sweep over `--sweep-request-rate` and/or `--sweep-max-concurrency` values (lists or
//!   ranges) and vLLM-style parameter sets (`--sweep-params`), multiplied out; every point is
//!   one `serve` run (or `--num-runs` of them) of the same plan seed.
//! - An SLO search (`--slo-search request-rate|max-concurrency` with `--slo` constraints): the
//!   highest value whose run meets every constraint, by a bracketing search (`search.rs`) that
//!   reuses every point; a run the server cannot keep up with stops early
//!   (`--stop-on-saturation`, on by default here) and counts as a failure.
//!
//! Each point's result file goes into the output directory, with `summary.json` (every point,
//! its verdict and the answer; rewritten after each point, so an interrupted sweep keeps what
//! it measured) and `summary.html` (the curves). With `--num-hosts`, every host runs the same
//! sweep into a shared output directory and each point is a multi-host run (`hosts.rs`).

pub mod argv;
pub mod hosts;
pub mod search;
pub mod slo;
pub mod summary;
pub mod values;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Args;
use serde_json::{json, Map, Value};

use crate::cli::BenchArgs;
use crate::engine::stop;
use crate::report::result_json;
use search::{Next, Outcome, Search};
use slo::Constraint;
use summary::Point;
use values::Params;

/// `servebench sweep`'s own flags (the rest are `serve`'s).
#[derive(Args, Debug, Clone)]
pub struct SweepOptions {
    /// Request rates, one run each: a list (1,2,4), a range START:STOP:STEP (2:20:2) or
    /// START:STOP*FACTOR (1:64*2), or several of those, comma-separated; "inf" for all at once.
    #[arg(long, value_name = "LIST")]
    pub sweep_request_rate: Option<String>,
    /// Max concurrencies, one run each (the same forms, whole numbers).
    #[arg(long, value_name = "LIST")]
    pub sweep_max_concurrency: Option<String>,
    /// JSON file of parameter sets, as `vllm bench sweep`'s --bench-params: a list of objects
    /// (flag → value, optional "_benchmark_name") or an object of named ones. Every set runs
    /// with every swept value.
    #[arg(long, value_name = "FILE", alias = "bench-params")]
    pub sweep_params: Option<PathBuf>,
    /// Prompts per point: FACTOR × the point's rate (so each point lasts about FACTOR
    /// seconds) or × its concurrency. Default: --num-prompts as given; for a search without
    /// --num-prompts, 30 for rates and 10 for concurrency.
    #[arg(long, value_name = "FACTOR")]
    pub sweep_num_prompts_factor: Option<f64>,
    /// Runs per point; the point's figures are their means.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub num_runs: usize,
    /// Pause between runs, in seconds (let the server drain and cool down).
    #[arg(long, value_name = "SECS", default_value_t = 0.0)]
    pub cooldown: f64,
    /// Where the point results and the summary go (default: sweep-results/DATE-TIME; must be
    /// shared by every host with --num-hosts).
    #[arg(short = 'o', long, value_name = "DIR")]
    pub output_dir: Option<PathBuf>,
    /// An SLO constraint, [STAT_]METRIC:MS with METRIC ttft, tpot, itl or e2el and STAT mean,
    /// median or pNN (default p of --slo-percentile), e.g. `--slo ttft:500 p90_itl:50`;
    /// vLLM's `p99_ttft_ms<=500` also works. Without it a search uses --goodput's limits.
    #[arg(long, value_name = "CONSTRAINT", num_args = 1.., action = clap::ArgAction::Append)]
    pub slo: Vec<String>,
    /// The percentile of a constraint given without a statistic.
    #[arg(long, value_name = "P", default_value_t = 99.0)]
    pub slo_percentile: f64,
    /// A point with more than this share of failed requests does not meet the SLO.
    #[arg(long, value_name = "FRACTION", default_value_t = 0.01)]
    pub slo_max_failed: f64,
    /// Search for the highest request rate or max concurrency that meets the SLO (also
    /// spelt as vLLM's --sla-variable request_rate|max_concurrency).
    #[arg(long, value_name = "VARIABLE", alias = "sla-variable", value_parser = parse_variable)]
    pub slo_search: Option<String>,
    /// Lowest value the search tries (default 0.1 req/s, or concurrency 1).
    #[arg(long, value_name = "X")]
    pub search_min: Option<f64>,
    /// Highest value the search tries (default 100000 req/s, or concurrency 65536).
    #[arg(long, value_name = "X")]
    pub search_max: Option<f64>,
    /// First value tried (default 1); it doubles until the SLO fails.
    #[arg(long, value_name = "X")]
    pub search_start: Option<f64>,
    /// Stop when the bracket is this narrow: highest pass ≥ lowest failure / (1 + P).
    #[arg(long, value_name = "P", default_value_t = 0.05)]
    pub search_precision: f64,
    /// Most points one search may run.
    #[arg(long, value_name = "N", default_value_t = 16)]
    pub search_max_points: usize,
    /// Run every point to its end even when the server cannot keep up (and keep sweeping
    /// higher values after a saturated point).
    #[arg(long)]
    pub no_stop_on_saturation: bool,
    /// Go on with the next point when one fails to run (server gone, a bad parameter): the
    /// error is printed and the point left out of the summary.
    #[arg(long)]
    pub continue_on_error: bool,
    /// Seed point N (run R) with --seed + N (+ R × 1000) instead of the same seed for all: other
    /// prompts each time, for servers that keep prompts cached across runs and have no
    /// --flush-cache endpoint (llama.cpp's prompt cache).
    #[arg(long)]
    pub seed_per_point: bool,
    /// Print the points and their command lines, run nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Go on with the sweep whose summary.json is in -o DIR (same command): its points are
    /// kept and judged again, those measured are not run again, a search goes on from them.
    #[arg(long)]
    pub resume: bool,
    /// With --num-hosts: longest wait for the other hosts' results of a point, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 900.0)]
    pub host_wait_timeout: f64,
    /// With --num-hosts: seconds from the last host ready (its plan built) to a point's start,
    /// for connections and warmups.
    #[arg(long, value_name = "SECS", default_value_t = 2.0)]
    pub host_gap: f64,
}

/// `request-rate` or `max-concurrency` (underscores too, as vLLM writes them).
fn parse_variable(s: &str) -> Result<String, String> {
    match s.replace('_', "-").as_str() {
        v @ ("request-rate" | "max-concurrency") => Ok(v.to_string()),
        _ => Err(format!("'{s}': search request-rate or max-concurrency")),
    }
}

#[derive(Args, Debug, Clone)]
pub struct SweepArgs {
    #[command(flatten)]
    pub sweep: SweepOptions,
    #[command(flatten)]
    pub bench: BenchArgs,
}

/// The searched or swept variable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Variable {
    RequestRate,
    MaxConcurrency,
}

impl Variable {
    pub fn key(self) -> &'static str {
        match self {
            Variable::RequestRate => "request_rate",
            Variable::MaxConcurrency => "max_concurrency",
        }
    }

    fn flag(self) -> &'static str {
        match self {
            Variable::RequestRate => "request-rate",
            Variable::MaxConcurrency => "max-concurrency",
        }
    }

    fn value(self, x: f64) -> Value {
        match self {
            Variable::RequestRate => values::rate_value(x),
            Variable::MaxConcurrency => Value::from(x as u64),
        }
    }
}

/// Everything decided before the first point.
struct Sweep {
    opts: SweepOptions,
    /// The user's `serve` flags, less those the sweep sets.
    base_args: Vec<String>,
    /// Whether the user typed --num-prompts.
    typed_num_prompts: bool,
    variable: Variable,
    constraints: Vec<Constraint>,
    extra_args: Vec<String>,
    out_dir: PathBuf,
    hosts: Option<hosts::Coordinator>,
    points: Vec<Point>,
    searches: Vec<Value>,
    date: String,
    bench: BenchArgs,
    /// The model the first run reported.
    model_id: Option<String>,
}

/// `servebench sweep`. `raw` is the command line after `sweep` (normalized).
pub fn run(args: &SweepArgs, raw: &[String]) -> anyhow::Result<()> {
    let mut s = Sweep::new(args, raw)?;
    let rates = list(
        &args.sweep.sweep_request_rate,
        "--sweep-request-rate",
        false,
    )?;
    let concurrency = list(
        &args.sweep.sweep_max_concurrency,
        "--sweep-max-concurrency",
        true,
    )?;
    let sets = match &args.sweep.sweep_params {
        Some(p) => values::read_params_file(p).map_err(anyhow::Error::msg)?,
        None => Vec::new(),
    };
    for set in &sets {
        for (k, _) in &set.pairs {
            if matches!(k.as_str(), "request-rate" | "max-concurrency")
                && args.sweep.slo_search.as_deref() == Some(k.as_str())
            {
                bail!("--sweep-params sets {k}, which --slo-search {k} is to find: leave it out of the file");
            }
        }
    }
    let searching = args.sweep.slo_search.is_some();
    if searching && s.variable == Variable::RequestRate && !rates.is_empty() {
        bail!("--slo-search request-rate finds the rate itself: drop --sweep-request-rate (or search max-concurrency)");
    }
    if searching && s.variable == Variable::MaxConcurrency && !concurrency.is_empty() {
        bail!("--slo-search max-concurrency finds the concurrency itself: drop --sweep-max-concurrency");
    }
    if !searching && rates.is_empty() && concurrency.is_empty() && sets.is_empty() {
        bail!("nothing to sweep: give --sweep-request-rate, --sweep-max-concurrency, --sweep-params or --slo-search");
    }
    let combos = values::product(&sets, &concurrency, &rates);
    if args.sweep.dry_run {
        return s.dry_run(&combos);
    }
    s.prepare_dir()?;
    if args.sweep.resume {
        s.resume()?;
    }
    eprintln!(
        "servebench sweep: {} into {}",
        if searching {
            format!(
                "searching {} for {} combination(s)",
                s.variable.key(),
                combos.len()
            )
        } else {
            format!("{} point(s)", combos.len() * args.sweep.num_runs)
        },
        s.out_dir.display()
    );
    let result = if searching {
        s.search_all(&combos)
    } else {
        s.sweep_all(&combos)
    };
    // Whatever happened, the summary holds every point measured.
    let written = s.write_summary();
    println!("\n{}", "=".repeat(72));
    println!(
        "Sweep: {} point(s), results in {}",
        s.points.len(),
        s.out_dir.display()
    );
    print!(
        "{}",
        summary::table(&s.points, s.variable.key(), &s.constraints)
    );
    for answer in &s.searches {
        if let Some(t) = answer
            .get("answer")
            .and_then(|a| a.get("text"))
            .and_then(Value::as_str)
        {
            let group = answer.get("group").and_then(Value::as_str).unwrap_or("");
            if group.is_empty() {
                println!("SLO ({}): {t}", s.slo_text());
            } else {
                println!("SLO ({}), {group}: {t}", s.slo_text());
            }
        }
    }
    result?;
    written
}

fn list(text: &Option<String>, flag: &str, integer: bool) -> anyhow::Result<Vec<f64>> {
    match text {
        Some(t) => values::parse_list(flag, t, integer).map_err(anyhow::Error::msg),
        None => Ok(Vec::new()),
    }
}

impl Sweep {
    fn new(args: &SweepArgs, raw: &[String]) -> anyhow::Result<Sweep> {
        let o = &args.sweep;
        let variable = match (
            o.slo_search.as_deref(),
            &o.sweep_request_rate,
            &o.sweep_max_concurrency,
        ) {
            (Some("max-concurrency"), _, _) => Variable::MaxConcurrency,
            (Some(_), _, _) => Variable::RequestRate,
            (None, None, Some(_)) => Variable::MaxConcurrency,
            _ => Variable::RequestRate,
        };
        if o.num_runs == 0 {
            bail!("--num-runs must be at least 1");
        }
        if !(o.cooldown.is_finite() && o.cooldown >= 0.0) {
            bail!("--cooldown must be a number of seconds, 0 or more");
        }
        if !(o.search_precision > 0.0 && o.search_precision < 10.0) {
            bail!("--search-precision must be above 0 (e.g. 0.05 for 5 %)");
        }
        if !(0.0..=1.0).contains(&o.slo_max_failed) {
            bail!("--slo-max-failed is a fraction from 0 to 1");
        }
        if let Some(f) = o.sweep_num_prompts_factor {
            if !(f.is_finite() && f > 0.0) {
                bail!("--sweep-num-prompts-factor must be a positive number");
            }
        }
        if !(o.slo_percentile > 0.0 && o.slo_percentile < 100.0) {
            bail!("--slo-percentile must be between 0 and 100");
        }
        let mut constraints: Vec<Constraint> = o
            .slo
            .iter()
            .map(|c| slo::parse(c, o.slo_percentile))
            .collect::<Result<_, _>>()
            .map_err(anyhow::Error::msg)?;
        if constraints.is_empty() && !args.bench.goodput.is_empty() {
            // --goodput's limits, at the SLO percentile.
            let g =
                crate::report::goodput::parse(&args.bench.goodput).map_err(anyhow::Error::msg)?;
            constraints =
                g.0.iter()
                    .map(|(m, ms)| slo::parse(&format!("{}:{ms}", m.key()), o.slo_percentile))
                    .collect::<Result<_, _>>()
                    .map_err(anyhow::Error::msg)?;
        }
        if o.slo_search.is_some() && constraints.is_empty() {
            bail!("--slo-search needs constraints: --slo ttft:500 (or --goodput ttft:500)");
        }

        // What the sweep sets on every point replaces what the user typed.
        let mut drop = argv::flags_of::<SweepOptions>();
        for f in [
            "result-dir",
            "result-filename",
            "save-result",
            "append-result",
            "html-report",
            "start-at",
            "stop-on-saturation",
            "percentile-metrics",
            "metric-percentiles",
        ] {
            drop.push(argv::serve_flag(f));
        }
        let swept_rate = o.sweep_request_rate.is_some()
            || variable == Variable::RequestRate && o.slo_search.is_some();
        let swept_conc = o.sweep_max_concurrency.is_some()
            || variable == Variable::MaxConcurrency && o.slo_search.is_some();
        if swept_rate {
            drop.push(argv::serve_flag("request-rate"));
        }
        if swept_conc {
            drop.push(argv::serve_flag("max-concurrency"));
        }
        let typed_num_prompts = argv::typed(raw, "num-prompts");
        let base_args = argv::strip(raw, &drop);

        // Every point reports the percentiles the SLO and the curves read.
        let mut metrics: Vec<String> = args
            .bench
            .percentile_metrics
            .as_deref()
            .unwrap_or("ttft,tpot,itl")
            .split(',')
            .map(|m| m.trim().to_string())
            .filter(|m| !m.is_empty())
            .collect();
        for m in slo::METRICS {
            if !metrics.iter().any(|x| x == m) {
                metrics.push(m.into());
            }
        }
        let mut percentiles: Vec<f64> = args
            .bench
            .metric_percentiles
            .split(',')
            .filter_map(|p| p.trim().parse().ok())
            .collect();
        for p in slo::needed_percentiles(&constraints) {
            if !percentiles.contains(&p) {
                percentiles.push(p);
            }
        }
        percentiles.sort_by(f64::total_cmp);
        let mut extra_args = vec![
            "--percentile-metrics".to_string(),
            metrics.join(","),
            "--metric-percentiles".into(),
            percentiles
                .iter()
                .map(|p| crate::report::pyfmt::percentile_word(*p))
                .collect::<Vec<_>>()
                .join(","),
            "--save-result".into(),
        ];
        if !o.no_stop_on_saturation {
            extra_args.push("--stop-on-saturation".into());
        }
        // Goodput per point, from the constraints --goodput can express.
        if args.bench.goodput.is_empty() {
            let pairs: Vec<String> = constraints
                .iter()
                .filter(|c| c.metric != "itl")
                .map(|c| format!("{}:{}", c.metric, c.limit_ms))
                .collect();
            if !pairs.is_empty() {
                extra_args.push("--goodput".into());
                extra_args.extend(pairs);
            }
        }

        // Credentials in --header stay out of the dry run's lines and the summary's command.
        let headers: Vec<(String, String)> = args
            .bench
            .header
            .iter()
            .filter_map(|h| h.split_once('=').or_else(|| h.split_once(':')))
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .collect();
        crate::secrets::register_headers(&headers);
        let hosts = hosts::Coordinator::new(&args.bench, o)?;
        let date = chrono::Local::now().format("%Y%m%d-%H%M%S").to_string();
        let out_dir = match &o.output_dir {
            Some(d) => d.clone(),
            None if hosts.is_some() => bail!(
                "a multi-host sweep needs -o/--output-dir on storage every host shares (each host reads the others' results there)"
            ),
            None => PathBuf::from("sweep-results").join(&date),
        };
        Ok(Sweep {
            opts: o.clone(),
            base_args,
            typed_num_prompts,
            variable,
            constraints,
            extra_args,
            out_dir,
            hosts,
            points: Vec::new(),
            searches: Vec::new(),
            date,
            bench: args.bench.clone(),
            model_id: None,
        })
    }

    /// `--resume`: the points of the summary in the output directory, if it was made by the
    /// same command.
    fn resume(&mut self) -> anyhow::Result<()> {
        if self.hosts.is_some() {
            bail!("--resume works for a sweep on one host; a multi-host sweep starts afresh in a new -o");
        }
        let path = self.out_dir.join("summary.json");
        let text = std::fs::read_to_string(&path).with_context(|| {
            format!(
                "--resume: nothing to resume in {} (cannot read summary.json)",
                self.out_dir.display()
            )
        })?;
        let old: Value = serde_json::from_str(&text)
            .with_context(|| format!("--resume: {} is not JSON", path.display()))?;
        let mine = self.summary_json();
        for key in ["command", "variable", "mode", "num_runs"] {
            if old.get(key) != mine.get(key) {
                bail!(
                    "--resume: {} was made by a different sweep ({key} was {}, is {}); resume with the same command, or use a new -o",
                    path.display(),
                    old.get(key).unwrap_or(&Value::Null),
                    mine.get(key).unwrap_or(&Value::Null)
                );
            }
        }
        let points = old
            .get("points")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for (i, v) in points.iter().enumerate() {
            let p = Point::from_json(v, &self.constraints, self.opts.slo_max_failed).with_context(
                || format!("--resume: point {i} of {} is incomplete", path.display()),
            )?;
            if p.index != i {
                bail!(
                    "--resume: the points of {} are not numbered 0, 1, 2, …",
                    path.display()
                );
            }
            self.points.push(p);
        }
        if let Some(d) = old.get("date").and_then(Value::as_str) {
            self.date = d.to_string();
        }
        println!(
            "Resuming: {} point(s) measured already in {}",
            self.points.len(),
            path.display()
        );
        Ok(())
    }

    fn prepare_dir(&self) -> anyhow::Result<()> {
        std::fs::create_dir_all(&self.out_dir).with_context(|| {
            format!(
                "cannot create the output directory {}",
                self.out_dir.display()
            )
        })?;
        let probe = self
            .out_dir
            .join(format!(".write-test-{}", std::process::id()));
        std::fs::write(&probe, b"").with_context(|| {
            format!(
                "cannot write into the output directory {}",
                self.out_dir.display()
            )
        })?;
        let _ = std::fs::remove_file(probe);
        Ok(())
    }

    fn slo_text(&self) -> String {
        self.constraints
            .iter()
            .map(Constraint::text)
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Prompts for a point at value `x` of the variable.
    fn num_prompts_for(&self, x: Option<f64>) -> Option<usize> {
        let factor = self.opts.sweep_num_prompts_factor.or_else(|| {
            (self.opts.slo_search.is_some() && !self.typed_num_prompts).then_some(
                match self.variable {
                    Variable::RequestRate => 30.0,
                    Variable::MaxConcurrency => 10.0,
                },
            )
        })?;
        let x = x.filter(|x| x.is_finite())?;
        Some(((factor * x).ceil() as usize).max(1))
    }

    /// The point's `serve` arguments beyond the user's.
    fn point_args(&self, params: &Params, index: usize, run: usize) -> Vec<String> {
        let mut a = self.extra_args.clone();
        a.extend(params.to_args());
        if self.opts.seed_per_point {
            let seed = self.bench.seed + index as u64 + 1000 * run as u64;
            a.extend(["--seed".into(), seed.to_string()]);
        }
        if let Some(n) = self.num_prompts_for(self.x_of(params)) {
            a.extend(["--num-prompts".into(), n.to_string()]);
        }
        let (dir, file) = self.result_place(index, run);
        if self.hosts.is_some() && !self.opts.no_stop_on_saturation {
            a.extend([
                "--saturation-marker".into(),
                dir.join("saturated").display().to_string(),
            ]);
        }
        a.extend(["--result-dir".into(), dir.display().to_string()]);
        a.extend(["--result-filename".into(), file]);
        a
    }

    /// Where a run's result file goes: `point-007.json` (`point-007-run2.json`), or with
    /// several hosts `point-007/host-1.json`.
    fn result_place(&self, index: usize, run: usize) -> (PathBuf, String) {
        let stem = self.run_stem(index, run);
        match &self.hosts {
            Some(h) => (
                self.out_dir.join(&stem),
                format!("host-{}.json", h.host_index()),
            ),
            None => (self.out_dir.clone(), format!("{stem}.json")),
        }
    }

    fn run_stem(&self, index: usize, run: usize) -> String {
        if self.opts.num_runs > 1 {
            format!("point-{index:03}-run{}", run + 1)
        } else {
            format!("point-{index:03}")
        }
    }

    fn dry_run(&self, combos: &[Params]) -> anyhow::Result<()> {
        println!(
            "Dry run: {}",
            if self.opts.slo_search.is_some() {
                "an SLO search over each combination below"
            } else {
                "these points"
            }
        );
        for (i, p) in combos.iter().enumerate() {
            let args = self.point_args(p, i, 0);
            println!("point {i}: {}", p.label());
            let line = format!(
                "  servebench serve {} {}",
                self.base_args.join(" "),
                args.join(" ")
            );
            println!("{}", crate::secrets::scrub(&line));
        }
        Ok(())
    }

    fn sweep_all(&mut self, combos: &[Params]) -> anyhow::Result<()> {
        // After a saturated point, higher values of its combination are skipped.
        let mut saturated_at: Vec<(String, f64)> = self
            .points
            .iter()
            .filter(|pt| pt.figures.get("saturated") == Some(&json!(true)))
            .filter_map(|pt| Some((pt.group.clone(), pt.x?)))
            .collect();
        for p in combos {
            let x = self.x_of(p);
            let group = self.group_of(p);
            // Measured before --resume.
            if self.points.iter().any(|pt| pt.label == p.label()) {
                continue;
            }
            if let (Some(x), false) = (x, self.opts.no_stop_on_saturation) {
                if let Some((_, at)) = saturated_at.iter().find(|(g, at)| *g == group && x > *at) {
                    println!(
                        "Skipping {}: the server was saturated at {} already",
                        p.label(),
                        crate::report::goodput::py_g(*at)
                    );
                    continue;
                }
            }
            let point = match self.measure(p) {
                Ok(Some(pt)) => pt,
                Ok(None) => return Ok(()),
                Err(e) if self.opts.continue_on_error => {
                    eprintln!(
                        "WARNING: point {} failed to run: {e:#}; going on (--continue-on-error)",
                        p.label()
                    );
                    continue;
                }
                Err(e) => return Err(e),
            };
            if point.figures.get("saturated") == Some(&json!(true)) {
                if let Some(x) = x {
                    saturated_at.push((group, x));
                }
            }
            self.points.push(point);
            self.write_summary()?;
            if stop::stopped_by().is_some() {
                return Ok(());
            }
        }
        Ok(())
    }

    fn search_all(&mut self, combos: &[Params]) -> anyhow::Result<()> {
        let integer = self.variable == Variable::MaxConcurrency;
        let (dmin, dmax) = if integer {
            (1.0, 65536.0)
        } else {
            (0.1, 100_000.0)
        };
        let min = self.opts.search_min.unwrap_or(dmin);
        let max = self.opts.search_max.unwrap_or(dmax);
        let start = self.opts.search_start.unwrap_or(1.0).clamp(min, max);
        if !(min > 0.0 && min <= max && max.is_finite()) {
            bail!("--search-min and --search-max: a positive range, min ≤ max");
        }
        for combo in combos {
            let group = combo.label();
            let mut search = Search {
                min,
                max,
                start,
                precision: self.opts.search_precision,
                integer,
                budget: self.opts.search_max_points.max(1),
                history: Vec::new(),
            };
            // Points of this combination measured before (--resume) count as measured now.
            let curve = self.group_of(combo);
            for pt in self.points.iter().filter(|pt| pt.group == curve) {
                if let (Some(x), Some(v)) = (pt.x, &pt.verdict) {
                    search.record(
                        x,
                        Outcome {
                            meets: v.meets,
                            margin: v.margin,
                        },
                    );
                }
            }
            let answer = loop {
                match search.next() {
                    Next::Done(a) => break a,
                    Next::Run(x) => {
                        let mut p = combo.clone();
                        p.pairs
                            .push((self.variable.flag().into(), self.variable.value(x)));
                        let point = match self.measure(&p)? {
                            Some(pt) => pt,
                            None => break search.answer(search::Status::Budget),
                        };
                        let v = point.verdict.clone().expect("a search point is judged");
                        eprintln!(
                            "SLO search: {} = {} {}",
                            self.variable.key(),
                            crate::report::goodput::py_g(x),
                            if v.meets {
                                "meets the SLO".to_string()
                            } else {
                                format!("fails the SLO ({})", v.why)
                            }
                        );
                        search.record(
                            x,
                            Outcome {
                                meets: v.meets,
                                margin: v.margin,
                            },
                        );
                        self.points.push(point);
                        self.write_summary()?;
                        if stop::stopped_by().is_some() {
                            break search.answer(search::Status::Budget);
                        }
                    }
                }
            };
            let pass_throughput = answer.max_passing.and_then(|p| {
                self.points
                    .iter()
                    .filter(|pt| pt.group == curve)
                    .find(|pt| pt.x == Some(p))
                    .and_then(|pt| pt.figures.get("request_throughput")?.as_f64())
            });
            println!(
                "SLO search ({}): {}",
                self.slo_text(),
                answer.text(self.variable.key())
            );
            self.searches.push(json!({
                "group": if combos.len() > 1 || !combo.pairs.is_empty() { group } else { String::new() },
                "answer": answer.to_json(self.variable.key(), pass_throughput),
                "stopped": stop::stopped_by().is_some(),
            }));
            self.write_summary()?;
            if stop::stopped_by().is_some() {
                break;
            }
        }
        Ok(())
    }

    fn x_of(&self, p: &Params) -> Option<f64> {
        let v = p.get(self.variable.flag())?;
        v.as_f64()
            .or_else(|| (v.as_str() == Some("inf")).then_some(f64::INFINITY))
    }

    /// The label of a point's settings other than the variable (its curve).
    /// A named parameter set goes by its name (plus a swept concurrency or rate), an unnamed
    /// one by its settings: short enough for a legend.
    fn group_of(&self, p: &Params) -> String {
        let mut g = p.clone();
        g.pairs.retain(|(k, _)| k != self.variable.flag());
        if g.name.is_some() {
            g.pairs
                .retain(|(k, _)| matches!(k.as_str(), "max-concurrency" | "request-rate"));
        }
        g.label()
    }

    /// Runs one point (`--num-runs` times); None when a signal stopped the sweep before it
    /// measured anything.
    fn measure(&mut self, p: &Params) -> anyhow::Result<Option<Point>> {
        let index = self.points.len();
        let mut runs = Vec::new();
        let mut files = Vec::new();
        for run in 0..self.opts.num_runs {
            if (index > 0 || run > 0) && self.opts.cooldown > 0.0 {
                std::thread::sleep(Duration::from_secs_f64(self.opts.cooldown));
            }
            println!("\n{}", "=".repeat(72));
            println!(
                "Sweep point {index}{}: {}",
                if self.opts.num_runs > 1 {
                    format!(" run {}/{}", run + 1, self.opts.num_runs)
                } else {
                    String::new()
                },
                p.label()
            );
            let extra = self.point_args(p, index, run);
            let bench = argv::parse_point(&self.base_args, &extra).map_err(|e| {
                anyhow::anyhow!("point {}: its serve flags do not parse: {e}", p.label())
            })?;
            let (dir, file) = self.result_place(index, run);
            let result = match &self.hosts {
                // Every host ready (plan built), then one start for all.
                Some(h) => crate::bench::run_measured_at(&bench, Some(&mut || h.barrier(&dir))),
                None => crate::bench::run_measured(&bench),
            }
            .with_context(|| format!("sweep point {index} ({})", p.label()))?;
            let merged_path = self
                .out_dir
                .join(format!("{}.json", self.run_stem(index, run)));
            let result = match &self.hosts {
                Some(h) => {
                    let merged = h.gather(&dir, &merged_path)?;
                    files.push(rel(&self.out_dir, &merged_path));
                    merged
                }
                None => {
                    files.push(rel(&self.out_dir, &dir.join(file)));
                    result
                }
            };
            if self.model_id.is_none() {
                self.model_id = result
                    .get("model_id")
                    .and_then(Value::as_str)
                    .map(str::to_string);
            }
            runs.push(result);
            if stop::stopped_by().is_some() {
                break;
            }
        }
        if runs.is_empty() {
            return Ok(None);
        }
        let figures = summary::figures(&runs);
        let verdict = (!self.constraints.is_empty())
            .then(|| slo::judge(&self.constraints, &figures, self.opts.slo_max_failed));
        let mut params = Map::new();
        for (k, v) in &p.pairs {
            params.insert(k.replace('-', "_"), v.clone());
        }
        if let Some(n) = &p.name {
            params.insert("_benchmark_name".into(), json!(n));
        }
        for v in [Variable::RequestRate, Variable::MaxConcurrency] {
            params.entry(v.key()).or_insert_with(|| match v {
                Variable::RequestRate => values::rate_value(self.bench.request_rate),
                Variable::MaxConcurrency => json!(self.bench.max_concurrency),
            });
        }
        let x = params
            .get(self.variable.key())
            .and_then(|v| v.as_f64())
            .filter(|x| x.is_finite());
        let point = Point {
            index,
            label: p.label(),
            group: self.group_of(p),
            params,
            x,
            result_files: files,
            figures,
            verdict,
        };
        println!(
            "Sweep point {index}: {:.2} req/s achieved{}{}",
            point
                .figures
                .get("request_throughput")
                .and_then(Value::as_f64)
                .unwrap_or(0.0),
            match point.meets() {
                Some(true) => ", meets the SLO".to_string(),
                Some(false) => format!(
                    ", fails the SLO: {}",
                    point.verdict.as_ref().map_or("", |v| v.why.as_str())
                ),
                None => String::new(),
            },
            if point.figures.get("saturated") == Some(&json!(true)) {
                " (saturated: stopped early)"
            } else {
                ""
            }
        );
        Ok(Some(point))
    }

    fn summary_json(&self) -> Value {
        let slo = (!self.constraints.is_empty()).then(|| {
            let mut m = json!({
                "constraints": self.constraints.iter().map(Constraint::to_json).collect::<Vec<_>>(),
                "max_failed": self.opts.slo_max_failed,
                "precision": self.opts.search_precision,
                "searches": self.searches,
            });
            // One search: its answer at the top, as the report reads it.
            if let Some(a) = self.searches.first().and_then(|s| s.get("answer")) {
                m["answer"] = a.clone();
            }
            m
        });
        json!({
            "servebench_sweep": 1,
            "servebench_version": env!("CARGO_PKG_VERSION"),
            "date": self.date,
            "backend": self.bench.backend,
            // As the runs found it (the server's first model when --model is not given).
            "model_id": self.model_id.clone().or(self.bench.model.clone()),
            "base_url": self.bench.base_url.clone().unwrap_or_else(|| format!("http://{}:{}", self.bench.host, self.bench.port)),
            "variable": self.variable.key(),
            "mode": if self.opts.slo_search.is_some() { "search" } else { "list" },
            "num_runs": self.opts.num_runs,
            "seed": self.bench.seed,
            "command": self.base_args,
            "hosts": self.hosts.as_ref().map(|h| h.num_hosts()),
            "slo": slo,
            "points": self.points.iter().map(Point::to_json).collect::<Vec<_>>(),
        })
    }

    /// `summary.json` and `summary.html`, rewritten whole (atomically) after every point. With
    /// several hosts only host 0 writes them.
    fn write_summary(&self) -> anyhow::Result<()> {
        if self.hosts.as_ref().is_some_and(|h| h.host_index() != 0) {
            return Ok(());
        }
        let v = self.summary_json();
        let path = self.out_dir.join("summary.json");
        result_json::write_atomically(
            &path,
            crate::secrets::scrub(&result_json::to_python_json(&v)).as_bytes(),
        )
        .with_context(|| format!("cannot write {}", path.display()))?;
        let csv_path = self.out_dir.join("summary.csv");
        result_json::write_atomically(
            &csv_path,
            crate::secrets::scrub(&summary::csv(&self.points)).as_bytes(),
        )
        .with_context(|| format!("cannot write {}", csv_path.display()))?;
        if let Value::Object(m) = &v {
            crate::report::sweep_html::write_sweep(&self.out_dir.join("summary.html"), m)?;
        }
        Ok(())
    }
}

/// `path` relative to `dir` when inside it.
fn rel(dir: &Path, path: &Path) -> String {
    path.strip_prefix(dir).unwrap_or(path).display().to_string()
}

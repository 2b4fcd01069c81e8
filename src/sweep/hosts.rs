//! A sweep across hosts: every host runs the same `servebench sweep` with `--num-hosts` (or
//! the scheduler's variables) and an output directory they all share. Each point is a
//! multi-host run: every host sends its share, writes `point-NNN/host-I.json`, then waits for
//! the others' files and merges them (the `servebench merge` code). Every host merges the same
//! files, so every host judges the point the same way and picks the same next point; no host
//! talks to another except through the files.
//!
//! Points start at agreed wall-clock instants: the first at `--start-at`, each next one
//! `--cooldown` + `--host-gap` seconds after the last host's end of the previous point (as
//! the merged files say), which every host computes alike. Host 0 writes the merged point
//! files and the summary.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use serde_json::{json, Map, Value};

use crate::cli::BenchArgs;
use crate::multihost::{self, merge, Hosts};

pub struct Coordinator {
    hosts: Hosts,
    next_start: SystemTime,
    wait: Duration,
    gap: Duration,
}

impl Coordinator {
    /// None for a single host.
    pub fn new(
        bench: &BenchArgs,
        opts: &super::SweepOptions,
    ) -> anyhow::Result<Option<Coordinator>> {
        let hosts = multihost::resolve(bench.num_hosts, bench.host_index, &|k| {
            std::env::var(k).ok()
        })?;
        if hosts.num_hosts <= 1 {
            return Ok(None);
        }
        let Some(at) = &bench.start_at else {
            bail!(
                "a sweep over {} hosts needs --start-at for its first point (the same instant on every host, e.g. --start-at $(date -d '+60 sec' +%s)); later points start on their own",
                hosts.num_hosts
            );
        };
        let next_start =
            multihost::parse_start_at(at, SystemTime::now()).map_err(anyhow::Error::msg)?;
        if !(opts.host_gap.is_finite() && opts.host_gap >= 1.0) {
            bail!("--host-gap must be at least 1 second (the next plan is built in it)");
        }
        eprintln!("{}", hosts.describe());
        Ok(Some(Coordinator {
            hosts,
            next_start,
            wait: Duration::from_secs_f64(opts.host_wait_timeout.max(1.0)),
            gap: Duration::from_secs_f64(opts.host_gap),
        }))
    }

    pub fn host_index(&self) -> usize {
        self.hosts.host_index
    }

    pub fn num_hosts(&self) -> usize {
        self.hosts.num_hosts
    }

    /// The next point's `--start-at` (unix seconds, ms resolution).
    pub fn next_start_arg(&self) -> String {
        let ms = self
            .next_start
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        format!("{}.{:03}", ms / 1000, ms % 1000)
    }

    /// Waits for every host's file of the point in `dir`, merges them, sets the next start;
    /// host 0 also writes the merged result to `merged_path`.
    pub fn gather(
        &mut self,
        dir: &Path,
        cooldown: f64,
        merged_path: &Path,
    ) -> anyhow::Result<Map<String, Value>> {
        let paths: Vec<PathBuf> = (0..self.hosts.num_hosts)
            .map(|i| dir.join(format!("host-{i}.json")))
            .collect();
        let deadline = Instant::now() + self.wait;
        loop {
            let missing: Vec<&PathBuf> = paths.iter().filter(|p| !p.is_file()).collect();
            if missing.is_empty() {
                break;
            }
            if Instant::now() >= deadline {
                bail!(
                    "waited {} s for the other hosts' results of this point; still missing: {} (did a host fail? is {} shared by every host?)",
                    self.wait.as_secs(),
                    missing.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "),
                    dir.display()
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        let files = merge::read_inputs(&paths)?;
        let merged = merge::merge(&files)?;
        let end_ns = files
            .iter()
            .filter_map(|f| {
                Some(f.host.get("t0_unix_ns")?.as_u64()? + f.host.get("duration_ns")?.as_u64()?)
            })
            .max()
            .context("the host files have no t0_unix_ns/duration_ns")?;
        let next = UNIX_EPOCH
            + Duration::from_nanos(end_ns)
            + Duration::from_secs_f64(cooldown)
            + self.gap;
        // Every host must pick the same instant, so none is moved for being late: a start
        // already past fails here, the same on every host that sees it.
        if next < SystemTime::now() {
            bail!(
                "the hosts' results of this point came in later than --host-gap {} s after its end allows; raise --host-gap",
                self.gap.as_secs_f64()
            );
        }
        self.next_start = next;
        let mut result = merged.result;
        // Saturation on any host marks the point, as on a single host.
        if let Some(s) = files
            .iter()
            .find_map(|f| f.result.get("saturation").filter(|v| !v.is_null()))
        {
            result.insert("saturation".into(), s.clone());
        }
        if files
            .iter()
            .any(|f| f.result.get("partial") == Some(&json!(true)))
        {
            result.insert("partial".into(), json!(true));
        }
        if self.hosts.host_index == 0 {
            crate::report::result_json::write(merged_path, &Value::Object(result.clone()), false)
                .with_context(|| format!("cannot write the merged point {}", merged_path.display()))?;
        }
        Ok(result)
    }
}

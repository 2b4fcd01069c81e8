//! A sweep across hosts: every host runs the same `servebench sweep` with `--num-hosts` (or
//! the scheduler's variables) and an output directory they all share. Each point is a
//! multi-host run: every host sends its share, writes `point-NNN/host-I.json`, then waits for
//! the others' files and merges them (the `servebench merge` code). Every host merges the same
//! files, so every host judges the point the same way and picks the same next point; no host
//! talks to another except through the files.
//!
//! Points start together through a barrier in the same directory: once a host has built the
//! point's plan and checked the server, it writes `point-NNN/ready-host-I` (its wall-clock
//! time) and waits for every host's; the point starts `--host-gap` seconds after the last host
//! was ready (time to open connections and warm up), an instant every host reads from the same
//! files. However long a plan takes to build, no host starts late. `--start-at`, when given,
//! is the earliest start of the first point. Host 0 writes the merged point files and the
//! summary.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use serde_json::{json, Map, Value};

use crate::cli::BenchArgs;
use crate::multihost::{self, merge, unix_ns, Hosts};

pub struct Coordinator {
    hosts: Hosts,
    /// `--start-at`: no point starts before it.
    earliest: Option<SystemTime>,
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
        let earliest = bench
            .start_at
            .as_deref()
            .map(|at| multihost::parse_start_at(at, SystemTime::now()))
            .transpose()
            .map_err(anyhow::Error::msg)?;
        if !(opts.host_gap.is_finite() && opts.host_gap >= 0.5) {
            bail!("--host-gap must be at least 0.5 seconds (connections open and warm up in it)");
        }
        eprintln!("{}", hosts.describe());
        Ok(Some(Coordinator {
            hosts,
            earliest,
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

    /// The barrier before a point in `dir` (see the module's comment): returns its start.
    pub fn barrier(&self, dir: &Path) -> anyhow::Result<SystemTime> {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let now = unix_ns(SystemTime::now());
        let mine = dir.join(format!("ready-host-{}", self.hosts.host_index));
        crate::report::result_json::write_atomically(&mine, now.to_string().as_bytes())
            .with_context(|| format!("cannot write {}", mine.display()))?;
        let paths: Vec<PathBuf> = (0..self.hosts.num_hosts)
            .map(|i| dir.join(format!("ready-host-{i}")))
            .collect();
        self.wait_for(&paths, dir, "ready")?;
        let mut last = 0u64;
        for p in &paths {
            let t: u64 = std::fs::read_to_string(p)
                .ok()
                .and_then(|t| t.trim().parse().ok())
                .with_context(|| format!("{} does not hold a time", p.display()))?;
            // A file from an earlier sweep into the same directory, not this one's.
            if t + (self.wait.as_nanos() as u64) < now {
                bail!(
                    "{} is older than this sweep: the output directory holds an earlier sweep's files; give every host a new -o",
                    p.display()
                );
            }
            last = last.max(t);
        }
        let start = UNIX_EPOCH + Duration::from_nanos(last) + self.gap;
        Ok(self.earliest.map_or(start, |e| e.max(start)))
    }

    fn wait_for(&self, paths: &[PathBuf], dir: &Path, what: &str) -> anyhow::Result<()> {
        let deadline = Instant::now() + self.wait;
        loop {
            let missing: Vec<&PathBuf> = paths.iter().filter(|p| !p.is_file()).collect();
            if missing.is_empty() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!(
                    "waited {} s (--host-wait-timeout) for the other hosts' {what} files of this point; still missing: {} (did a host fail? is {} shared by every host?)",
                    self.wait.as_secs(),
                    missing
                        .iter()
                        .map(|p| p.display().to_string())
                        .collect::<Vec<_>>()
                        .join(", "),
                    dir.display()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits for every host's result of the point in `dir` and merges them; host 0 also
    /// writes the merged result to `merged_path`.
    pub fn gather(&self, dir: &Path, merged_path: &Path) -> anyhow::Result<Map<String, Value>> {
        let paths: Vec<PathBuf> = (0..self.hosts.num_hosts)
            .map(|i| dir.join(format!("host-{i}.json")))
            .collect();
        self.wait_for(&paths, dir, "result")?;
        let files = merge::read_inputs(&paths)?;
        let merged = merge::merge(&files)?;
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
                .with_context(|| {
                    format!("cannot write the merged point {}", merged_path.display())
                })?;
        }
        Ok(result)
    }
}

//! Multi-host runs (issue 7): N processes, each on its own host, run one plan together.
//!
//! Every host builds the same global plan from the seed and keeps request i when i mod N is
//! its index (with conversations: conversation c when c mod N is). Arrival times stay the
//! global ones, measured from a common wall-clock start (`--start-at`), so the union of what
//! the hosts send is the single-host arrival process, request for request. Each host's result
//! file carries a `servebench_host` object (its place, clock, plan fingerprint and histograms)
//! that `servebench merge` combines (see [`merge`] and docs/MULTIHOST.md).

pub mod merge;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::bail;
use serde_json::{json, Map, Value};

use crate::plan::Plan;
use crate::record::{Metrics, RequestRecord};
use crate::stats::Distribution;

/// The key of the host object in a result file.
pub const HOST_KEY: &str = "servebench_host";
/// The key of the records' global plan indices (with `--save-detailed`).
pub const PLAN_INDEX_KEY: &str = "servebench_plan_index";

/// Environment variables naming this host's index, in the order they are consulted.
pub const INDEX_VARS: [&str; 5] = [
    "JOB_COMPLETION_INDEX",
    "SLURM_PROCID",
    "OMPI_COMM_WORLD_RANK",
    "PMI_RANK",
    "PMIX_RANK",
];
/// Environment variables naming the number of hosts, in the order they are consulted
/// (Kubernetes exports no completion count: SERVEBENCH_NUM_HOSTS stands for it).
pub const COUNT_VARS: [&str; 4] = [
    "SERVEBENCH_NUM_HOSTS",
    "SLURM_NTASKS",
    "OMPI_COMM_WORLD_SIZE",
    "PMI_SIZE",
];

/// This host's place in the run, and where each figure came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hosts {
    pub num_hosts: usize,
    pub host_index: usize,
    /// "--num-hosts", an environment variable's name, or "default".
    pub count_source: String,
    pub index_source: String,
}

impl Hosts {
    pub fn single() -> Hosts {
        Hosts {
            num_hosts: 1,
            host_index: 0,
            count_source: "default".into(),
            index_source: "default".into(),
        }
    }

    /// One line saying which host this is and why.
    pub fn describe(&self) -> String {
        format!(
            "multi-host: host {} of {} (index from {}, count from {})",
            self.host_index, self.num_hosts, self.index_source, self.count_source
        )
    }
}

/// The host count and index: the flags, else the first environment variable set, else a
/// single host. `env` reads a variable (`std::env::var` in the binary, a map in tests).
pub fn resolve(
    num_hosts: Option<usize>,
    host_index: Option<usize>,
    env: &dyn Fn(&str) -> Option<String>,
) -> anyhow::Result<Hosts> {
    let from_env = |vars: &[&str]| -> anyhow::Result<Option<(usize, String)>> {
        for &v in vars {
            if let Some(text) = env(v).filter(|t| !t.trim().is_empty()) {
                let n = text.trim().parse::<usize>().map_err(|_| {
                    anyhow::anyhow!("environment variable {v}={text:?} is not a whole number")
                })?;
                return Ok(Some((n, v.to_string())));
            }
        }
        Ok(None)
    };
    let (num_hosts, count_source) = match num_hosts {
        Some(n) => (n, "--num-hosts".to_string()),
        None => from_env(&COUNT_VARS)?.unwrap_or((1, "default".into())),
    };
    let (host_index, index_source) = match host_index {
        Some(i) => (i, "--host-index".to_string()),
        None => from_env(&INDEX_VARS)?.unwrap_or((0, "default".into())),
    };
    if num_hosts == 0 {
        bail!("the number of hosts ({count_source}) must be at least 1");
    }
    if host_index >= num_hosts {
        bail!(
            "host index {host_index} ({index_source}) is not below the number of hosts \
             {num_hosts} ({count_source}); indices run from 0 to N-1{}",
            if count_source == "default" {
                " (give --num-hosts or SERVEBENCH_NUM_HOSTS)"
            } else {
                ""
            }
        );
    }
    Ok(Hosts {
        num_hosts,
        host_index,
        count_source,
        index_source,
    })
}

/// The unit of the split each request belongs to: its own index without conversations, its
/// conversation's index with them (every turn of a conversation stays on one host).
pub fn units(plan: &Plan) -> Vec<usize> {
    let mut unit = 0;
    plan.requests
        .iter()
        .enumerate()
        .map(|(i, r)| {
            if r.turn == 0 && i > 0 {
                unit += 1;
            }
            unit
        })
        .collect()
}

/// The global plan indices this host sends, in plan order.
pub fn my_indices(plan: &Plan, hosts: &Hosts) -> Vec<usize> {
    units(plan)
        .into_iter()
        .enumerate()
        .filter(|&(_, u)| u % hosts.num_hosts == hosts.host_index)
        .map(|(i, _)| i)
        .collect()
}

/// This host's share of the plan (global arrival times kept) and the global index of each of
/// its requests. The warmup stays the global plan's, so every host warms up alike.
pub fn split(plan: Plan, hosts: &Hosts) -> anyhow::Result<(Plan, Vec<usize>)> {
    let mine = my_indices(&plan, hosts);
    if mine.is_empty() {
        bail!(
            "host {} of {} has no request to send: the plan has fewer requests (or \
             conversations) than hosts",
            hosts.host_index,
            hosts.num_hosts
        );
    }
    let warmup = plan.warmup.or_else(|| plan.requests.first().cloned());
    let mut keep = vec![false; plan.requests.len()];
    for &i in &mine {
        keep[i] = true;
    }
    let requests = plan
        .requests
        .into_iter()
        .zip(keep)
        .filter_map(|(r, k)| k.then_some(r))
        .collect();
    Ok((
        Plan {
            api: plan.api,
            streamed: plan.streamed,
            requests,
            length_mismatch_tokens: plan.length_mismatch_tokens,
            warmup,
        },
        mine,
    ))
}

/// `--max-concurrency C` split like shards split it: host h gets C/N, the first C mod N one
/// more, so the limit holds exactly in aggregate.
pub fn concurrency_share(c: Option<usize>, hosts: &Hosts) -> anyhow::Result<Option<usize>> {
    let Some(c) = c else { return Ok(None) };
    let n = hosts.num_hosts;
    if c < n {
        bail!("--max-concurrency {c} is below --num-hosts {n}: every host needs a slot");
    }
    Ok(Some(c / n + usize::from(hosts.host_index < c % n)))
}

/// `--start-at`: RFC 3339 (`2026-11-23T03:00:00Z`), unix seconds (`1795402800`, fractions
/// allowed), or a delay from `now` (`+30`, `in 30 seconds`, `in 30s`).
pub fn parse_start_at(text: &str, now: SystemTime) -> Result<SystemTime, String> {
    let t = text.trim();
    let secs = |s: &str| -> Option<Duration> {
        let v: f64 = s.trim().parse().ok()?;
        (v.is_finite() && v >= 0.0).then(|| Duration::from_secs_f64(v))
    };
    let relative = t.strip_prefix('+').or_else(|| {
        let rest = t.strip_prefix("in ")?;
        let rest = rest.trim();
        ["seconds", "second", "secs", "sec", "s"]
            .iter()
            .find_map(|u| rest.strip_suffix(u))
            .or(Some(rest))
    });
    if let Some(r) = relative {
        return secs(r)
            .map(|d| now + d)
            .ok_or_else(|| format!("--start-at {text:?}: the delay is not a number of seconds"));
    }
    if let Some(d) = secs(t) {
        return Ok(UNIX_EPOCH + d);
    }
    match chrono::DateTime::parse_from_rfc3339(t) {
        Ok(dt) => {
            let ns = dt
                .timestamp_nanos_opt()
                .ok_or_else(|| format!("--start-at {text:?}: the time is out of range"))?;
            if ns < 0 {
                return Err(format!("--start-at {text:?}: the time is before 1970"));
            }
            Ok(UNIX_EPOCH + Duration::from_nanos(ns as u64))
        }
        Err(e) => Err(format!(
            "--start-at {text:?} is neither RFC 3339 (2026-11-23T03:00:00Z), unix seconds, \
             nor +SECS ({e})"
        )),
    }
}

/// Nanoseconds since the unix epoch.
pub fn unix_ns(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// The kernel's view of this host's clock discipline (`adjtimex`, read only).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClockState {
    /// NTP (or PTP via phc2sys) says the clock is synchronized.
    pub synchronized: bool,
    /// Estimated and maximum error, microseconds.
    pub esterror_us: i64,
    pub maxerror_us: i64,
}

impl ClockState {
    pub fn now() -> ClockState {
        // SAFETY: modes = 0 makes adjtimex read only; it writes into the struct we own.
        let mut tx: libc::timex = unsafe { std::mem::zeroed() };
        let state = unsafe { libc::adjtimex(&mut tx) };
        ClockState {
            synchronized: state >= 0
                && state != libc::TIME_ERROR
                && tx.status & libc::STA_UNSYNC == 0,
            esterror_us: tx.esterror as i64,
            maxerror_us: tx.maxerror as i64,
        }
    }

    pub fn to_json(self) -> Value {
        json!({
            "synchronized": self.synchronized,
            "esterror_us": self.esterror_us,
            "maxerror_us": self.maxerror_us,
        })
    }
}

/// What makes two hosts' plans the same plan. Request heads are left out (request ids differ
/// per process); bodies, lengths, turns and arrivals are in.
pub struct FingerprintInput<'a> {
    pub seed: u64,
    pub dataset_name: &'a str,
    pub num_prompts: usize,
    pub request_rate: f64,
    pub burstiness: f64,
    pub max_concurrency: Option<usize>,
    pub plan: &'a Plan,
}

/// A stable 64-bit FNV-1a hash (std's hasher may change between Rust releases), hex.
pub fn fingerprint(f: &FingerprintInput) -> String {
    let mut h = Fnv::default();
    h.write(env!("CARGO_PKG_VERSION").as_bytes());
    h.write(&f.seed.to_le_bytes());
    h.write(f.dataset_name.as_bytes());
    h.write(&(f.num_prompts as u64).to_le_bytes());
    h.write(&f.request_rate.to_bits().to_le_bytes());
    h.write(&f.burstiness.to_bits().to_le_bytes());
    h.write(&(f.max_concurrency.map_or(u64::MAX, |c| c as u64)).to_le_bytes());
    for r in &f.plan.requests {
        let body = memchr::memmem::find(&r.wire, b"\r\n\r\n").map_or(&r.wire[..], |p| &r.wire[p..]);
        h.write(body);
        h.write(&r.arrival_ns.to_le_bytes());
        h.write(&r.prompt_len.to_le_bytes());
        h.write(&r.output_len.to_le_bytes());
        h.write(&r.turn.to_le_bytes());
    }
    format!("{:016x}", h.0)
}

struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= b as u64;
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
        // A length terminator keeps ("ab","c") apart from ("a","bc").
        for b in (bytes.len() as u64).to_le_bytes() {
            self.0 ^= b as u64;
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
}

/// Everything the host object says besides the histograms.
pub struct HostRun {
    pub hosts: Hosts,
    pub fingerprint: String,
    /// The global `--max-concurrency` (the file's `max_concurrency` is this host's share).
    pub max_concurrency_total: Option<usize>,
    pub num_prompts_total: usize,
    /// The run's t0 on this host's wall clock and monotonic clock.
    pub t0_unix_ns: u64,
    pub t0_mono_s: f64,
    pub duration_ns: u64,
    pub start_at_unix_ns: Option<u64>,
    pub clock: ClockState,
    pub percentile_metrics: String,
    pub percentiles: Vec<f64>,
}

/// The `servebench_host` object.
pub fn host_json(run: &HostRun, metrics: &Metrics, records: &[RequestRecord]) -> Value {
    let mut send_lag = Distribution::new();
    for r in records.iter().filter(|r| r.start_ns > 0 || r.success) {
        send_lag.record(r.queue_ns());
    }
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    let mut m = Map::new();
    m.insert("host_index".into(), json!(run.hosts.host_index));
    m.insert("num_hosts".into(), json!(run.hosts.num_hosts));
    m.insert("index_source".into(), json!(run.hosts.index_source));
    m.insert("count_source".into(), json!(run.hosts.count_source));
    m.insert("hostname".into(), json!(hostname));
    m.insert(
        "servebench_version".into(),
        json!(env!("CARGO_PKG_VERSION")),
    );
    m.insert("plan_fingerprint".into(), json!(run.fingerprint));
    m.insert("num_prompts_total".into(), json!(run.num_prompts_total));
    m.insert(
        "max_concurrency_total".into(),
        json!(run.max_concurrency_total),
    );
    m.insert("t0_unix_ns".into(), json!(run.t0_unix_ns));
    m.insert("t0_mono_s".into(), json!(run.t0_mono_s));
    m.insert("duration_ns".into(), json!(run.duration_ns));
    m.insert("start_at_unix_ns".into(), json!(run.start_at_unix_ns));
    m.insert(
        "t0_lateness_ns".into(),
        json!(run
            .start_at_unix_ns
            .map(|s| run.t0_unix_ns as i64 - s as i64)),
    );
    m.insert("clock".into(), run.clock.to_json());
    m.insert("percentile_metrics".into(), json!(run.percentile_metrics));
    m.insert("percentiles".into(), json!(run.percentiles));
    m.insert(
        "histograms".into(),
        json!({
            "ttft": metrics.ttft.to_json(),
            "tpot": metrics.tpot.to_json(),
            "itl": metrics.itl.to_json(),
            "e2el": metrics.e2el.to_json(),
            "queue": metrics.queue.to_json(),
            "send_lag": send_lag.to_json(),
        }),
    );
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::PlannedRequest;
    use std::collections::HashMap;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| m.get(k).cloned()
    }

    #[test]
    fn flags_win_then_the_first_variable_set() {
        let env = env_of(&[("SLURM_PROCID", "2"), ("SLURM_NTASKS", "4")]);
        let h = resolve(None, None, &env).unwrap();
        assert_eq!((h.host_index, h.num_hosts), (2, 4));
        assert_eq!(h.index_source, "SLURM_PROCID");
        let h = resolve(Some(8), Some(5), &env).unwrap();
        assert_eq!((h.host_index, h.num_hosts), (5, 8));
        assert_eq!(h.count_source, "--num-hosts");
        let k8s = env_of(&[("JOB_COMPLETION_INDEX", "1"), ("SERVEBENCH_NUM_HOSTS", "3")]);
        let h = resolve(None, None, &k8s).unwrap();
        assert_eq!((h.host_index, h.num_hosts), (1, 3));
        let mpi = env_of(&[("OMPI_COMM_WORLD_RANK", "0"), ("OMPI_COMM_WORLD_SIZE", "2")]);
        assert_eq!(resolve(None, None, &mpi).unwrap().num_hosts, 2);
        assert_eq!(resolve(None, None, &env_of(&[])).unwrap(), Hosts::single());
    }

    #[test]
    fn bad_host_figures_are_refused_by_name() {
        let k8s = env_of(&[("JOB_COMPLETION_INDEX", "1")]);
        let e = resolve(None, None, &k8s).unwrap_err().to_string();
        assert!(
            e.contains("JOB_COMPLETION_INDEX") && e.contains("SERVEBENCH_NUM_HOSTS"),
            "{e}"
        );
        let e = resolve(Some(0), None, &env_of(&[]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("at least 1"), "{e}");
        let e = resolve(Some(2), Some(2), &env_of(&[]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("host index 2"), "{e}");
        let bad = env_of(&[("SLURM_NTASKS", "many")]);
        let e = resolve(None, None, &bad).unwrap_err().to_string();
        assert!(e.contains("SLURM_NTASKS"), "{e}");
    }

    fn plan_of(turns: &[u32]) -> Plan {
        Plan {
            api: crate::backend::Api::Completions,
            streamed: true,
            requests: turns
                .iter()
                .enumerate()
                .map(|(i, &turn)| PlannedRequest {
                    prompt_len: 1,
                    output_len: 1,
                    arrival_ns: i as u64 * 1000,
                    wire: format!("POST / HTTP/1.1\r\nx-id: {i}\r\n\r\n{{\"p\":{i}}}")
                        .into_bytes()
                        .into_boxed_slice(),
                    turn,
                    live: None,
                })
                .collect(),
            length_mismatch_tokens: 0,
            warmup: None,
        }
    }

    fn hosts(i: usize, n: usize) -> Hosts {
        resolve(Some(n), Some(i), &env_of(&[])).unwrap()
    }

    #[test]
    fn the_hosts_split_the_plan_exactly_and_keep_global_arrivals() {
        let mut seen = Vec::new();
        for i in 0..3 {
            let (p, idx) = split(plan_of(&[0; 10]), &hosts(i, 3)).unwrap();
            assert!(idx.iter().all(|&g| g % 3 == i));
            for (r, &g) in p.requests.iter().zip(&idx) {
                assert_eq!(r.arrival_ns, g as u64 * 1000);
            }
            assert_eq!(p.warmup.as_ref().map(|w| w.arrival_ns), Some(0));
            seen.extend(idx);
        }
        seen.sort();
        assert_eq!(seen, (0..10).collect::<Vec<_>>());
        // Conversations stay whole: turns 0,1 | 0 | 0,1,2 | 0.
        let conv = [0, 1, 0, 0, 1, 2, 0];
        let (_, idx0) = split(plan_of(&conv), &hosts(0, 2)).unwrap();
        let (_, idx1) = split(plan_of(&conv), &hosts(1, 2)).unwrap();
        assert_eq!(idx0, vec![0, 1, 3, 4, 5]);
        assert_eq!(idx1, vec![2, 6]);
        assert!(split(plan_of(&[0; 2]), &hosts(2, 3)).is_err());
    }

    #[test]
    fn concurrency_splits_like_shards() {
        let shares: Vec<_> = (0..3)
            .map(|i| concurrency_share(Some(8), &hosts(i, 3)).unwrap())
            .collect();
        assert_eq!(shares, vec![Some(3), Some(3), Some(2)]);
        assert_eq!(concurrency_share(None, &hosts(0, 3)).unwrap(), None);
        assert!(concurrency_share(Some(2), &hosts(0, 3)).is_err());
    }

    #[test]
    fn start_at_reads_every_form() {
        let now = UNIX_EPOCH + Duration::from_secs(1_000_000);
        let at = |s: &str| parse_start_at(s, now).map(unix_ns);
        assert_eq!(at("+30"), Ok(1_000_030_000_000_000));
        assert_eq!(at("in 2.5 seconds"), Ok(1_000_002_500_000_000));
        assert_eq!(at("in 3s"), Ok(1_000_003_000_000_000));
        assert_eq!(at("1795402800"), Ok(1_795_402_800_000_000_000));
        assert_eq!(at("1970-01-01T00:00:10.5Z"), Ok(10_500_000_000));
        assert_eq!(at("1970-01-01T01:00:10+01:00"), Ok(10_000_000_000));
        assert!(at("tomorrow").unwrap_err().contains("RFC 3339"));
        assert!(at("+abc").is_err());
        assert!(at("+-3").is_err());
    }

    #[test]
    fn the_fingerprint_sees_bodies_and_arrivals_but_not_heads() {
        let p = plan_of(&[0; 4]);
        let f = |plan: &Plan, seed| {
            fingerprint(&FingerprintInput {
                seed,
                dataset_name: "random",
                num_prompts: 4,
                request_rate: f64::INFINITY,
                burstiness: 1.0,
                max_concurrency: None,
                plan,
            })
        };
        let base = f(&p, 1);
        assert_eq!(base, f(&plan_of(&[0; 4]), 1));
        assert_ne!(base, f(&p, 2));
        let mut other_head = plan_of(&[0; 4]);
        other_head.requests[0].wire = b"POST / HTTP/1.1\r\nx-id: other\r\n\r\n{\"p\":0}"
            .to_vec()
            .into_boxed_slice();
        assert_eq!(base, f(&other_head, 1));
        let mut later = plan_of(&[0; 4]);
        later.requests[3].arrival_ns += 1;
        assert_ne!(base, f(&later, 1));
    }

    #[test]
    fn histograms_travel_and_merge_exactly() {
        let (mut a, mut b) = (Distribution::new(), Distribution::new());
        for v in [1_000_000u64, 2_500_000, 20_000_000, 7] {
            a.record(v);
        }
        for v in [3_000_000u64, 90_000_000_000] {
            b.record(v);
        }
        let text = serde_json::to_string(&a.to_json()).unwrap();
        let back = Distribution::from_json(&serde_json::from_str(&text).unwrap()).unwrap();
        assert_eq!(back.summary(&[50.0, 99.0]), a.summary(&[50.0, 99.0]));
        let mut both = a.clone();
        both.merge(&b);
        let mut via_json = back;
        via_json.merge(&Distribution::from_json(&b.to_json()).unwrap());
        assert_eq!(via_json.summary(&[25.0, 90.0]), both.summary(&[25.0, 90.0]));
        assert_eq!(via_json.count(), 6);
        let mut broken = a.to_json();
        broken["count"] = json!(99);
        assert!(Distribution::from_json(&broken)
            .unwrap_err()
            .contains("count"));
        broken["hdr_v2_deflate_base64"] = json!("!!");
        assert!(Distribution::from_json(&broken).is_err());
    }

    #[test]
    fn the_clock_state_reads() {
        let c = ClockState::now();
        assert!(c.maxerror_us >= 0 && c.esterror_us >= 0);
    }
}

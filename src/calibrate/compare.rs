//! The client's measurements against the mock's truth log, request by request and event by
//! event. Both sides read CLOCK_MONOTONIC on the same host, so their times compare directly.

use std::collections::HashMap;
use std::io::BufRead;
use std::path::Path;

use anyhow::{bail, Context};
use serde::Deserialize;

use crate::record::RequestRecord;

/// One line of `servebench mock --truth-log`.
#[derive(Debug, Deserialize)]
pub struct TruthRecord {
    pub request_id: Option<String>,
    pub read_ns: u64,
    pub event_ns: Vec<u64>,
}

pub fn read_truth(path: &Path) -> anyhow::Result<Vec<TruthRecord>> {
    let file = std::fs::File::open(path)
        .with_context(|| format!("cannot open the truth log {}", path.display()))?;
    let mut out = Vec::new();
    for (n, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.with_context(|| format!("reading {}", path.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        let rec: TruthRecord = serde_json::from_str(&line)
            .with_context(|| format!("{} line {}: not a truth record", path.display(), n + 1))?;
        out.push(rec);
    }
    Ok(out)
}

/// Signed differences, client minus truth, in nanoseconds.
#[derive(Debug, Default)]
pub struct Comparison {
    /// Client TTFT − server TTFT (first token written − request read), per request.
    pub ttft_err: Vec<i64>,
    /// The part of the TTFT error that is the server's: from the client's last request byte
    /// handed to the kernel to the server having read the request (its accept and read
    /// backlog when it is busy).
    pub server_ingest: Vec<i64>,
    /// TTFT error without the server's ingest: what the client itself added.
    pub client_ttft_err: Vec<i64>,
    /// Client ITL − server gap between the same two events, per gap.
    pub itl_err: Vec<i64>,
    /// Client's timestamp of an event − the server's write of it: how late the client saw it.
    pub delivery: Vec<i64>,
    /// Actual send − planned send, per request (queueing behind the concurrency cap included).
    pub send_lag: Vec<i64>,
    pub matched: usize,
    /// Requests whose event counts differ between client and server.
    pub event_count_mismatches: usize,
    pub failed: usize,
    pub events: u64,
}

/// Matches client records (request `i` carries `x-request-id: <prefix><i>`) with the truth.
/// `t0_mono_ns` is the run's epoch on CLOCK_MONOTONIC.
pub fn compare(
    records: &[RequestRecord],
    t0_mono_ns: u64,
    prefix: &str,
    truth: &[TruthRecord],
) -> anyhow::Result<Comparison> {
    let mut by_index: HashMap<usize, &TruthRecord> = HashMap::with_capacity(truth.len());
    for t in truth {
        let Some(i) = t
            .request_id
            .as_deref()
            .and_then(|id| id.strip_prefix(prefix))
            .and_then(|i| i.parse::<usize>().ok())
        else {
            continue;
        };
        by_index.insert(i, t);
    }
    let mut c = Comparison::default();
    for (i, r) in records.iter().enumerate() {
        if !r.success {
            c.failed += 1;
            continue;
        }
        let Some(t) = by_index.get(&i) else {
            bail!("request {prefix}{i} succeeded but the mock's truth log has no record of it");
        };
        c.matched += 1;
        c.send_lag.push(r.start_ns as i64 - r.arrival_ns as i64);
        let client_events = 1 + r.itl_ns.len();
        c.events += client_events as u64;
        if client_events != t.event_ns.len() {
            c.event_count_mismatches += 1;
            continue;
        }
        let server_ttft = t.event_ns[0] as i64 - t.read_ns as i64;
        let ttft_err = r.ttft_ns as i64 - server_ttft;
        c.ttft_err.push(ttft_err);
        if r.sent_ns != 0 {
            let ingest = t.read_ns as i64 - (t0_mono_ns + r.sent_ns) as i64;
            c.server_ingest.push(ingest);
            c.client_ttft_err.push(ttft_err - ingest);
        }
        let mut at = t0_mono_ns + r.start_ns + r.ttft_ns;
        c.delivery.push(at as i64 - t.event_ns[0] as i64);
        for (k, &gap) in r.itl_ns.iter().enumerate() {
            at += gap;
            let server_gap = t.event_ns[k + 1] as i64 - t.event_ns[k] as i64;
            c.itl_err.push(gap as i64 - server_gap);
            c.delivery.push(at as i64 - t.event_ns[k + 1] as i64);
        }
    }
    Ok(c)
}

/// Mean, p50, p99 and max of a sample.
#[derive(Clone, Copy, Debug, Default, serde::Serialize)]
pub struct Summary {
    pub count: usize,
    pub mean_ns: f64,
    pub p50_ns: f64,
    pub p99_ns: f64,
    pub max_ns: f64,
}

pub fn summarize(values: &mut [i64]) -> Summary {
    if values.is_empty() {
        return Summary::default();
    }
    values.sort_unstable();
    let n = values.len();
    let pct = |p: f64| {
        // numpy's linear interpolation, as everywhere else in the report.
        let rank = p / 100.0 * (n - 1) as f64;
        let (lo, hi) = (rank.floor() as usize, rank.ceil() as usize);
        let w = rank - lo as f64;
        values[lo] as f64 * (1.0 - w) + values[hi] as f64 * w
    };
    Summary {
        count: n,
        mean_ns: values.iter().map(|&v| v as f64).sum::<f64>() / n as f64,
        p50_ns: pct(50.0),
        p99_ns: pct(99.0),
        max_ns: values[n - 1] as f64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn truth(id: &str, read: u64, events: &[u64]) -> TruthRecord {
        TruthRecord {
            request_id: Some(id.into()),
            read_ns: read,
            event_ns: events.to_vec(),
        }
    }

    fn record(start: u64, ttft: u64, itl: &[u64]) -> RequestRecord {
        RequestRecord {
            success: true,
            start_ns: start,
            ttft_ns: ttft,
            itl_ns: itl.to_vec(),
            ..Default::default()
        }
    }

    #[test]
    fn errors_are_client_minus_truth() {
        // Epoch 1000 ns. Client sends at 1000+100, server reads at 1150 and writes events
        // at 2150, 3150, 4150; the client sees them 20, 30 and 25 ns later.
        let t = [truth("c-0", 1150, &[2150, 3150, 4150])];
        let mut r = [record(100, 2170 - 1100, &[1010, 995])];
        // The last request byte left at 1000+110: the server took 40 ns to read it.
        r[0].sent_ns = 110;
        let mut c = compare(&r, 1000, "c-", &t).unwrap();
        assert_eq!(c.server_ingest, vec![40]);
        assert_eq!(c.client_ttft_err, vec![(2170 - 1100) - 1000 - 40]);
        assert_eq!(c.matched, 1);
        assert_eq!(c.events, 3);
        assert_eq!(c.ttft_err, vec![(2170 - 1100) - 1000]);
        assert_eq!(c.itl_err, vec![10, -5]);
        assert_eq!(c.delivery, vec![20, 30, 25]);
        let s = summarize(&mut c.delivery);
        assert_eq!((s.count, s.max_ns, s.p50_ns), (3, 30.0, 25.0));
    }

    #[test]
    fn unmatched_success_is_an_error_and_mismatches_are_counted() {
        let r = [record(0, 10, &[5])];
        assert!(compare(&r, 0, "c-", &[truth("x-0", 0, &[1, 2])]).is_err());
        let c = compare(&r, 0, "c-", &[truth("c-0", 0, &[1, 2, 3])]).unwrap();
        assert_eq!((c.matched, c.event_count_mismatches), (1, 1));
    }

    #[test]
    fn summary_interpolates_like_numpy() {
        let mut v: Vec<i64> = (1..=100).collect();
        let s = summarize(&mut v);
        assert!((s.p99_ns - 99.01).abs() < 1e-9);
        assert_eq!(s.mean_ns, 50.5);
    }
}

//! Client health: did the client keep its schedule, so that the latencies are the server's?
//!
//! Send lag is how late a request started against the instant it could have started: its
//! planned arrival, or, under `--max-concurrency`, the later of its arrival and the moment a
//! concurrency slot of its shard came free. Waiting for a slot is client queueing that the plan
//! asked for (it is reported apart); lag is the client's own delay.
//!
//! The engine records arrival and start, not slot release, so the release is rebuilt from the
//! records: shard `s` runs requests `i ≡ s (mod N)` in plan order with `C/N` slots (the first
//! `C mod N` shards one more), so request `j` of a shard could start once `j − c + 1` of the
//! shard's earlier requests had ended. A request ends at `start + latency` (its last output
//! event): a response's last bytes arrive at or after that, so the rebuilt release is never
//! late and the lag derived from it is never under-stated.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use crate::record::RequestRecord;

/// The client is said to have fallen behind when p99 send lag exceeds both of these: 1 ms, and
/// 5 % of the mean TTFT (a millisecond matters to a 20 ms TTFT, not to a 5 s one).
pub const LAG_FLOOR_MS: f64 = 1.0;
pub const LAG_SHARE_OF_TTFT: f64 = 0.05;

/// Mean, median, p99 and max of one quantity, in milliseconds (exact, from the records).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Spread {
    pub count: usize,
    pub mean_ms: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Spread {
    pub fn of_ns(values: impl Iterator<Item = u64>) -> Spread {
        let v: Vec<f64> = values.map(|ns| ns as f64 / 1e6).collect();
        let count = v.len();
        let e = crate::stats::Exact::of_ms(v);
        Spread {
            count,
            mean_ms: e.mean,
            p50_ms: e.median,
            p99_ms: e.p99,
            max_ms: e.max,
        }
    }
}

/// How the run's shards shared the plan, as the engine splits it.
#[derive(Clone, Copy, Debug)]
pub struct Layout {
    pub num_shards: usize,
    pub max_concurrency: Option<usize>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Health {
    /// Actual start − the instant the request could start.
    pub send_lag: Spread,
    /// Requests that waited for a concurrency slot, and how long (arrival → slot free).
    pub slot_waits: Spread,
    /// TTFT and E2EL measured from the planned arrival (coordinated-omission free).
    pub ttft_from_plan: Spread,
    pub e2el_from_plan: Spread,
    /// The usual TTFT and E2EL, for comparison.
    pub ttft: Spread,
    pub e2el: Spread,
    pub new_connections: u64,
    pub reused_connections: u64,
    /// Every planned arrival was at t0 (`--request-rate inf`): there is no schedule to keep.
    pub burst: bool,
    /// Set when the client fell behind its plan (see [`LAG_FLOOR_MS`]).
    pub warning: Option<String>,
}

/// Client health over `records` in plan order (requests never sent are skipped, but must
/// still be in the slice so that plan index → shard holds).
pub fn evaluate(records: &[RequestRecord], layout: Layout) -> Health {
    let ready = ready_ns(records, layout);
    let sent = || records.iter().zip(&ready).filter(|(r, _)| !r.not_sent);
    let ok = || records.iter().filter(|r| r.success && !r.not_sent);
    let send_lag = Spread::of_ns(sent().map(|(r, &t)| r.start_ns.saturating_sub(t)));
    let slot_waits = Spread::of_ns(
        sent()
            .filter(|(r, &t)| t > r.arrival_ns)
            .map(|(r, &t)| t - r.arrival_ns),
    );
    let ttft = Spread::of_ns(ok().map(|r| r.ttft_ns));
    let new_connections = sent().filter(|(r, _)| r.new_connection).count() as u64;
    let burst = records.iter().all(|r| r.arrival_ns == 0);
    let limit = LAG_FLOOR_MS.max(LAG_SHARE_OF_TTFT * ttft.mean_ms);
    let warning = (!burst && send_lag.p99_ms > limit).then(|| {
        format!(
            "the client fell behind its plan: p99 send lag {:.3} ms exceeds {:.3} ms \
             (the larger of {LAG_FLOOR_MS} ms and {}% of mean TTFT); latencies include client \
             delay — use more shards or CPUs, or a lower rate",
            send_lag.p99_ms,
            limit,
            LAG_SHARE_OF_TTFT * 100.0
        )
    });
    Health {
        send_lag,
        slot_waits,
        ttft_from_plan: Spread::of_ns(ok().map(|r| r.queue_ns() + r.ttft_ns)),
        e2el_from_plan: Spread::of_ns(ok().map(|r| r.queue_ns() + r.latency_ns)),
        ttft,
        e2el: Spread::of_ns(ok().map(|r| r.latency_ns)),
        new_connections,
        reused_connections: sent().count() as u64 - new_connections,
        burst,
        warning,
    }
}

/// For every record, the instant it could have started: its arrival, or later when its shard
/// had no free slot then.
pub fn ready_ns(records: &[RequestRecord], layout: Layout) -> Vec<u64> {
    let mut ready: Vec<u64> = records.iter().map(|r| r.arrival_ns).collect();
    let Some(cap) = layout.max_concurrency else {
        return ready;
    };
    let n = layout.num_shards.clamp(1, cap.max(1));
    for shard in 0..n {
        let slots = cap / n + usize::from(shard < cap % n);
        // Of the ends seen so far, `low` holds the k smallest (max on top) and `high` the rest,
        // where k = j − slots + 1: the k-th smallest end is when request j got its slot.
        let mut low: BinaryHeap<u64> = BinaryHeap::new();
        let mut high: BinaryHeap<Reverse<u64>> = BinaryHeap::new();
        for (j, i) in (shard..records.len()).step_by(n).enumerate() {
            if j >= slots {
                let k = j - slots + 1;
                while low.len() < k {
                    match high.pop() {
                        Some(Reverse(e)) => low.push(e),
                        None => break,
                    }
                }
                if let Some(&free) = low.peek() {
                    ready[i] = ready[i].max(free);
                }
            }
            let r = &records[i];
            if r.not_sent {
                continue;
            }
            let end = r.start_ns + r.latency_ns;
            match low.peek() {
                Some(&top) if end < top => {
                    low.push(end);
                    if let Some(moved) = low.pop() {
                        high.push(Reverse(moved));
                    }
                }
                _ => high.push(Reverse(end)),
            }
        }
    }
    ready
}

/// Both inter-token latency definitions, for the health section (ms).
#[derive(Clone, Debug, PartialEq)]
pub struct ItlPair {
    pub per_event: crate::stats::Exact,
    pub per_token: crate::stats::Exact,
}

impl ItlPair {
    pub fn of(records: &[RequestRecord]) -> ItlPair {
        use crate::report::sglang::{itl_samples, ItlDefinition};
        use crate::stats::Exact;
        let all = |def| {
            Exact::of_ms(
                records
                    .iter()
                    .filter(|r| r.success)
                    .flat_map(|r| itl_samples(r, def))
                    .map(|ns| ns / 1e6)
                    .collect(),
            )
        };
        ItlPair {
            per_event: all(ItlDefinition::PerEvent),
            per_token: all(ItlDefinition::PerToken),
        }
    }
}

/// The section printed after the result block: what no anchor reports.
pub fn render(
    h: &Health,
    capped: bool,
    connections_opened: Option<u64>,
    itl: Option<&ItlPair>,
) -> String {
    use std::fmt::Write;
    let mut o = String::new();
    let f = |o: &mut String, label: &str, v: f64| {
        let _ = writeln!(o, "{label:<40} {:<10}", format!("{v:.3}"));
    };
    let i = |o: &mut String, label: &str, v: u64| {
        let _ = writeln!(o, "{label:<40} {:<10}", v);
    };
    let _ = writeln!(
        o,
        "{}",
        crate::report::console::center(" Client Health ", '=')
    );
    f(&mut o, "Send lag P50 (ms):", h.send_lag.p50_ms);
    f(&mut o, "Send lag P99 (ms):", h.send_lag.p99_ms);
    f(&mut o, "Send lag max (ms):", h.send_lag.max_ms);
    if capped {
        i(
            &mut o,
            "Requests that waited for a slot:",
            h.slot_waits.count as u64,
        );
        f(&mut o, "Mean slot wait (ms):", h.slot_waits.mean_ms);
        f(&mut o, "P99 slot wait (ms):", h.slot_waits.p99_ms);
    }
    f(&mut o, "Mean TTFT (ms):", h.ttft.mean_ms);
    f(
        &mut o,
        "Mean TTFT from planned send (ms):",
        h.ttft_from_plan.mean_ms,
    );
    f(&mut o, "P99 TTFT (ms):", h.ttft.p99_ms);
    f(
        &mut o,
        "P99 TTFT from planned send (ms):",
        h.ttft_from_plan.p99_ms,
    );
    f(&mut o, "Mean E2EL (ms):", h.e2el.mean_ms);
    f(
        &mut o,
        "Mean E2EL from planned send (ms):",
        h.e2el_from_plan.mean_ms,
    );
    f(&mut o, "P99 E2EL (ms):", h.e2el.p99_ms);
    f(
        &mut o,
        "P99 E2EL from planned send (ms):",
        h.e2el_from_plan.p99_ms,
    );
    if let Some(itl) = itl {
        f(
            &mut o,
            "Mean ITL per event (vLLM) (ms):",
            itl.per_event.mean,
        );
        f(&mut o, "P99 ITL per event (vLLM) (ms):", itl.per_event.p99);
        f(
            &mut o,
            "Mean ITL per token (SGLang) (ms):",
            itl.per_token.mean,
        );
        f(
            &mut o,
            "P99 ITL per token (SGLang) (ms):",
            itl.per_token.p99,
        );
    }
    i(&mut o, "Requests on a new connection:", h.new_connections);
    i(
        &mut o,
        "Requests on a reused connection:",
        h.reused_connections,
    );
    if let Some(n) = connections_opened {
        i(&mut o, "Connections opened (incl. before t0):", n);
    }
    if h.burst {
        let _ = writeln!(
            o,
            "(every request was due at t0: send lag is the time to send the burst)"
        );
    }
    if let Some(w) = &h.warning {
        let _ = writeln!(o, "WARNING: {w}");
    }
    let _ = writeln!(o, "{}", "=".repeat(50));
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    fn rec(arrival_ms: u64, start_ms: u64, latency_ms: u64) -> RequestRecord {
        RequestRecord {
            success: true,
            arrival_ns: arrival_ms * MS,
            start_ns: start_ms * MS,
            ttft_ns: latency_ms * MS / 2,
            latency_ns: latency_ms * MS,
            ..Default::default()
        }
    }

    /// The slow way: replay each shard's FIFO with its slots.
    fn ready_by_replay(records: &[RequestRecord], layout: Layout) -> Vec<u64> {
        let cap = layout.max_concurrency.unwrap();
        let n = layout.num_shards.min(cap);
        let mut out = vec![0; records.len()];
        for s in 0..n {
            let slots = cap / n + usize::from(s < cap % n);
            let mine: Vec<usize> = (s..records.len()).step_by(n).collect();
            for (j, &i) in mine.iter().enumerate() {
                let mut ends: Vec<u64> = mine[..j]
                    .iter()
                    .map(|&p| records[p].start_ns + records[p].latency_ns)
                    .collect();
                ends.sort();
                let free = if j >= slots { ends[j - slots] } else { 0 };
                out[i] = records[i].arrival_ns.max(free);
            }
        }
        out
    }

    #[test]
    fn slot_release_is_rebuilt_per_shard() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(5);
        let records: Vec<RequestRecord> = (0..300)
            .map(|i| rec(i, i + rng.gen_range(0..50), rng.gen_range(1..200)))
            .collect();
        for (shards, cap) in [(1, 1), (1, 7), (2, 5), (3, 3), (4, 2)] {
            let layout = Layout {
                num_shards: shards,
                max_concurrency: Some(cap),
            };
            assert_eq!(
                ready_ns(&records, layout),
                ready_by_replay(&records, layout),
                "{shards} shards, cap {cap}"
            );
        }
    }

    #[test]
    fn lag_excludes_slot_waits_and_the_warning_needs_real_lag() {
        // One slot: the second request waits for the first to end at 100 ms, then starts at
        // 100.5 ms (lag 0.5 ms); the third is due at 300 ms and starts at 310 ms (lag 10 ms).
        let mut rs = vec![rec(0, 0, 100), rec(10, 100, 100), rec(300, 310, 100)];
        rs[1].start_ns += MS / 2;
        let capped = Layout {
            num_shards: 1,
            max_concurrency: Some(1),
        };
        let h = evaluate(&rs, capped);
        assert_eq!(h.slot_waits.count, 1);
        assert_eq!(h.slot_waits.max_ms, 90.0);
        assert_eq!(h.send_lag.max_ms, 10.0);
        assert_eq!(h.send_lag.p50_ms, 0.5);
        assert!(h.warning.is_some());
        // From the plan, the second request's TTFT includes its 90.5 ms in the queue.
        assert_eq!(h.ttft_from_plan.max_ms, 140.5);

        let on_time = vec![rec(0, 0, 100), rec(10, 10, 100), rec(300, 300, 100)];
        assert!(evaluate(&on_time, capped).warning.is_none());
        // Without a cap the same starts are all lag.
        let free = Layout {
            num_shards: 1,
            max_concurrency: None,
        };
        assert_eq!(evaluate(&rs, free).send_lag.max_ms, 90.5);
    }

    #[test]
    fn a_burst_has_no_schedule_to_fall_behind() {
        let rs: Vec<_> = (0..10).map(|i| rec(0, i * 5, 10)).collect();
        let h = evaluate(
            &rs,
            Layout {
                num_shards: 1,
                max_concurrency: None,
            },
        );
        assert!(h.burst);
        assert!(h.send_lag.p99_ms > LAG_FLOOR_MS);
        assert!(h.warning.is_none());
    }
}

//! The direct engine (`--io-engine uring`): each shard thread runs its own io_uring event loop
//! instead of a glommio executor, with the same inputs, outputs and semantics as
//! [`shard::run`](super::shard::run).
//!
//! Why: with one task per stream, every event costs glommio a receive syscall, a re-armed poll,
//! a task wake-up and timer/poll bookkeeping around each park. Here a connection keeps one
//! multishot receive armed for its whole life, the kernel fills buffers from one shared
//! provided-buffer ring, and the loop submits and waits once per pass; a batch of completions
//! costs one syscall and one clock read, and an event costs a parse.
//!
//! Semantics kept: request i of the plan belongs to shard i mod N (a conversation's turns to one
//! shard), started in plan order at its arrival, a later turn as soon as the turn before it ends; `concurrency_share: Some(c)` allows c requests in flight, the rest wait FIFO; None
//! starts each request at its arrival, opening a connection when no idle one exists. The pool
//! is opened and warmed before the start line; the records, metrics, progress counter and CPU
//! time are filled exactly as the glommio shard fills them.

mod bufs;
mod conn;
mod driver;
mod ring;

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{ShardOutput, ShardSpec, Start};
use crate::record::RequestRecord;
use driver::{Driver, Phase, Timed};

/// The whole life of a shard, on its (already pinned) thread.
pub fn run_shard(spec: Arc<ShardSpec>, start: Arc<Start>, busy_poll: Duration) -> ShardOutput {
    let plan = spec.plan.clone();
    let mine = spec.my_requests();
    let mut driver = match Driver::new(plan.clone(), spec.addr, busy_poll, spec.timeouts) {
        Ok(d) => d,
        Err(e) => {
            start.fail(format!(
                "cannot set up io_uring for shard {} (--io-engine uring): {e}",
                spec.index
            ));
            return ShardOutput::default();
        }
    };
    let (_, initial) = spec.pool_size(spec.starts(&mine));
    driver.preconnect(initial);
    warmup(&spec, &mut driver, initial);

    let records = spec.records_for(&mine);

    let Some(t0) = start.ready_and_wait() else {
        // Another shard failed to start: end without sending anything.
        driver.finish();
        return ShardOutput::default();
    };
    let cpu_at_t0 = super::thread_cpu_ns();
    let timed = Timed {
        deadline_ns: spec.deadline_ns,
        metrics: Default::default(),
        last_done_ns: 0,
        progress: spec.progress.clone(),
        index: spec.index,
    };
    let cap = spec.concurrency_share.unwrap_or(usize::MAX);
    let mut phase = Phase::new(&plan, mine, records, t0, cap, Some(timed));
    driver.run(&mut phase);
    let connections_opened = driver.opened;
    let keepalive_retries = driver.keepalive_retries;
    driver.finish();
    let cpu_ns = super::thread_cpu_ns().saturating_sub(cpu_at_t0);

    let (metrics, last_done_ns) = phase
        .timed
        .take()
        .map(|t| (t.metrics, t.last_done_ns))
        .unwrap_or_default();
    ShardOutput {
        records: phase.plan_idx.into_iter().zip(phase.records).collect(),
        metrics,
        last_done_ns,
        connections_opened,
        cpu_ns,
        keepalive_retries,
    }
}

/// Send the warmup requests (the plan's warmup request, else copies of the first) before the clock starts,
/// in batches of at most one per pooled connection, as the glommio shard does. Their results
/// are not recorded.
fn warmup(spec: &ShardSpec, driver: &mut Driver, pool: usize) {
    if spec.plan.requests.is_empty() {
        return;
    }
    let first = spec.plan.request(crate::plan::WARMUP);
    let mut left = spec.my_warmups();
    while left > 0 {
        let batch = left.min(pool.max(1));
        let records = (0..batch)
            .map(|_| RequestRecord::with_capacity(first.prompt_len, first.output_len, 0))
            .collect();
        let mut phase = Phase::new(
            &spec.plan,
            vec![crate::plan::WARMUP; batch],
            records,
            Instant::now(),
            batch,
            None,
        );
        driver.run(&mut phase);
        left -= batch;
    }
}

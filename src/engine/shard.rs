//! One shard: a pinned executor that sends its share of the plan at the planned instants.
//!
//! Workers are the concurrency slots. Each owns one keep-alive connection and loops: take the
//! next request of this shard in plan order, sleep until its arrival, send it, record it. With
//! `--max-concurrency` a shard has exactly its share of workers, so a request that arrives
//! while all are busy waits for the first one free, in arrival order — the semantics of vLLM's
//! semaphore. A conversation is taken as a whole: its worker sends each later turn as soon as
//! the turn before it ends, with the earlier replies spliced in. Without a limit the pool grows: when a worker starts a request and nobody is
//! waiting for the next arrival, it spawns one more worker (after its own request is written),
//! so the pool tracks the real peak concurrency instead of one task per request.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use futures_lite::future;

use glommio::task::JoinHandle;

use super::exchange::{exchange, Conn, Fail};
use super::{stop, ShardOutput, ShardSpec, Start};
use crate::plan::Plan;
use crate::record::{FailureKind, Metrics, RequestRecord};

struct Shard {
    plan: Arc<Plan>,
    /// Plan indices of this shard's requests, in plan order.
    mine: Vec<usize>,
    /// Positions in `mine` of single requests and first turns: what workers take.
    firsts: Vec<usize>,
    records: RefCell<Vec<RequestRecord>>,
    metrics: RefCell<Metrics>,
    /// Next entry of `firsts` to take.
    next: Cell<usize>,
    /// Workers that hold a request and are sleeping until its arrival.
    waiting: Cell<usize>,
    workers: Cell<usize>,
    max_workers: usize,
    t0: Instant,
    last_done_ns: Cell<u64>,
    connections: Cell<u64>,
    keepalive_retries: Cell<u64>,
    handles: RefCell<Vec<JoinHandle<()>>>,
    spec: Arc<ShardSpec>,
    bell: Rc<Bell>,
}

/// The stop state as this shard's workers see it, rung by one watcher task per shard, so a
/// worker asleep on an arrival or a response wakes at once without a timer of its own.
#[derive(Default)]
struct Bell {
    /// 0: running, [`STOPPING`]: send nothing new, [`ABORTING`]: abort what is in flight.
    level: Cell<u8>,
    /// One waker per worker (a worker waits on one thing at a time).
    wakers: RefCell<Vec<Option<Waker>>>,
    closed: Cell<bool>,
}

const STOPPING: u8 = 1;
const ABORTING: u8 = 2;

impl Bell {
    /// Ready once the stop state reaches `level`.
    async fn reached(&self, worker: usize, level: u8) {
        future::poll_fn(|cx| {
            if self.level.get() >= level {
                return Poll::Ready(());
            }
            let mut wakers = self.wakers.borrow_mut();
            if wakers.len() <= worker {
                wakers.resize_with(worker + 1, || None);
            }
            match &wakers[worker] {
                Some(w) if w.will_wake(cx.waker()) => {}
                _ => wakers[worker] = Some(cx.waker().clone()),
            }
            Poll::Pending
        })
        .await
    }

    /// Follow the process-wide stop state until the shard ends.
    async fn follow(self: Rc<Self>) {
        while !self.closed.get() {
            glommio::timer::sleep(stop::POLL).await;
            let level = if stop::aborted() {
                ABORTING
            } else if stop::requested() {
                STOPPING
            } else {
                0
            };
            if level > self.level.get() {
                self.level.set(level);
                for w in self.wakers.borrow_mut().iter_mut() {
                    if let Some(w) = w.take() {
                        w.wake();
                    }
                }
            }
        }
    }
}

/// The whole life of a shard, run inside its executor.
pub async fn run(spec: Arc<ShardSpec>, start: Arc<Start>) -> ShardOutput {
    warm_timer().await;
    let plan = spec.plan.clone();
    let mine = spec.my_requests();
    let (max_workers, initial) = spec.pool_size(spec.starts(&mine));

    let mut conns: Vec<Conn> = (0..initial).map(|_| new_conn(&spec)).collect();
    for c in conns.iter_mut() {
        c.preconnect().await;
    }
    warmup(&spec, &mut conns).await;
    // Only the timed requests' retries are reported.
    for c in conns.iter_mut() {
        c.retries = 0;
    }

    let records = spec.records_for(&mine);

    let Some(t0) = start.ready_and_wait() else {
        // Another shard failed to start: end without sending anything.
        return ShardOutput::default();
    };
    let cpu_at_t0 = super::thread_cpu_ns();
    let firsts = (0..mine.len())
        .filter(|&k| plan.requests[mine[k]].turn == 0)
        .collect();
    let shard = Rc::new(Shard {
        plan,
        mine,
        firsts,
        records: RefCell::new(records),
        metrics: RefCell::new(Metrics::default()),
        next: Cell::new(0),
        waiting: Cell::new(0),
        workers: Cell::new(0),
        max_workers,
        t0,
        last_done_ns: Cell::new(0),
        connections: Cell::new(0),
        keepalive_retries: Cell::new(0),
        handles: RefCell::new(Vec::new()),
        spec,
        bell: Rc::new(Bell::default()),
    });
    glommio::spawn_local(shard.bell.clone().follow()).detach();
    for conn in conns {
        spawn_worker(&shard, conn);
    }
    // Workers may add workers while we wait; a worker's handle is pushed before it can end.
    loop {
        let h = shard.handles.borrow_mut().pop();
        match h {
            Some(h) => {
                h.await;
            }
            None => break,
        }
    }
    shard.bell.closed.set(true);

    let shard = Rc::try_unwrap(shard).ok().expect("all workers have ended");
    let records = shard.records.into_inner();
    ShardOutput {
        records: shard.mine.into_iter().zip(records).collect(),
        metrics: shard.metrics.into_inner(),
        last_done_ns: shard.last_done_ns.get(),
        connections_opened: shard.connections.get(),
        cpu_ns: super::thread_cpu_ns().saturating_sub(cpu_at_t0),
        keepalive_retries: shard.keepalive_retries.get(),
    }
}

fn spawn_worker(shard: &Rc<Shard>, conn: Conn) {
    let id = shard.workers.get();
    shard.workers.set(id + 1);
    let h = glommio::spawn_local(worker(shard.clone(), conn, id)).detach();
    shard.handles.borrow_mut().push(h);
}

async fn worker(shard: Rc<Shard>, mut conn: Conn, id: usize) {
    // The bytes of later conversation turns, rebuilt for each.
    let mut live_wire = Vec::new();
    loop {
        if stop::requested() {
            drop_untaken(&shard);
            break;
        }
        let n = shard.next.get();
        if n >= shard.firsts.len() {
            break;
        }
        shard.next.set(n + 1);
        let mut k = shard.firsts[n];
        let req = &shard.plan.requests[shard.mine[k]];
        if let Some(deadline) = shard.spec.deadline_ns {
            if req.arrival_ns.max(shard.elapsed_ns()) >= deadline {
                drop_unsent(&shard, k);
                break;
            }
        }

        let due = shard.t0 + Duration::from_nanos(req.arrival_ns);
        let now = Instant::now();
        if due > now {
            shard.waiting.set(shard.waiting.get() + 1);
            let stopped = future::or(
                async {
                    glommio::timer::sleep(due - now).await;
                    false
                },
                async {
                    shard.bell.reached(id, STOPPING).await;
                    true
                },
            )
            .await;
            shard.waiting.set(shard.waiting.get() - 1);
            // The bell rings within 100 ms of a signal; the flag itself is exact.
            if stopped || stop::requested() {
                skip_turns(&shard, k);
                continue;
            }
        }

        let grow = shard.waiting.get() == 0
            && shard.next.get() < shard.firsts.len()
            && shard.workers.get() < shard.max_workers;
        if grow {
            // Spawned now, it first runs when this worker awaits the socket: after the write.
            spawn_worker(&shard, new_conn(&shard.spec));
        }
        loop {
            let req = &shard.plan.requests[shard.mine[k]];
            let wire: &[u8] = match req.live.as_deref() {
                None => &req.wire,
                Some(live) => {
                    let records = shard.records.borrow();
                    let earlier = &records[k - live.replies()..k];
                    live.assemble(
                        earlier.iter().map(|r| r.text_raw.as_slice()),
                        &mut live_wire,
                    );
                    &live_wire
                }
            };
            let mut rec = std::mem::take(&mut shard.records.borrow_mut()[k]);
            shard.spec.progress[shard.spec.index].started();
            let aborted = future::or(
                async {
                    exchange(&mut conn, wire, &mut rec, shard.t0).await;
                    false
                },
                async {
                    shard.bell.reached(id, ABORTING).await;
                    true
                },
            )
            .await;
            if aborted {
                Fail::new(
                    FailureKind::Aborted,
                    stop::abort_message(stop::abort_cause()),
                )
                .record(&mut rec);
                // The dropped exchange left the connection mid-response: close it.
                let opened = conn.opened;
                conn = new_conn(&shard.spec);
                conn.opened = opened;
            }
            shard.spec.progress[shard.spec.index].outcome(&rec);

            let done_ns = shard.elapsed_ns();
            shard
                .last_done_ns
                .set(shard.last_done_ns.get().max(done_ns));
            if rec.success {
                shard.metrics.borrow_mut().record_request(&rec);
            }
            shard.records.borrow_mut()[k] = rec;
            shard.spec.progress[shard.spec.index].done(1);

            // The conversation's next turn follows at once, whatever this one's outcome.
            let next_turn = shard
                .mine
                .get(k + 1)
                .is_some_and(|&i| shard.plan.requests[i].turn > 0);
            if !next_turn {
                break;
            }
            k += 1;
            if shard.spec.deadline_ns.is_some_and(|d| done_ns >= d) || stop::requested() {
                skip_turns(&shard, k);
                break;
            }
            shard.records.borrow_mut()[k].arrival_ns = done_ns;
        }
    }
    shard
        .connections
        .set(shard.connections.get() + conn.opened as u64);
    shard
        .keepalive_retries
        .set(shard.keepalive_retries.get() + conn.retries as u64);
}

impl Shard {
    fn elapsed_ns(&self) -> u64 {
        Instant::now().saturating_duration_since(self.t0).as_nanos() as u64
    }
}

/// `--duration` is over: request `k` and every later one of this shard are never sent.
fn drop_unsent(shard: &Shard, k: usize) {
    // No worker has yielded since `k` was taken, so every later conversation is untaken.
    let len = shard.mine.len();
    for rec in &mut shard.records.borrow_mut()[k..len] {
        rec.not_sent = true;
    }
    shard.next.set(shard.firsts.len());
    shard.spec.progress[shard.spec.index].done((len - k) as u64);
}

/// A worker's connection (not yet open) to the target, in TLS for an `https://` one.
fn new_conn(spec: &ShardSpec) -> Conn {
    Conn::with_tls(spec.addr, spec.plan.wire(), spec.timeouts, spec.tls.clone())
}

/// A stop signal: every request no worker has taken (and its later turns) is never sent.
fn drop_untaken(shard: &Shard) {
    let n = shard.next.get().min(shard.firsts.len());
    shard.next.set(shard.firsts.len());
    for &k in &shard.firsts[n..] {
        skip_turns(shard, k);
    }
}

/// `--duration` is over (or a stop signal came): turn `k` and the later turns of its
/// conversation are never sent.
fn skip_turns(shard: &Shard, mut k: usize) {
    let mut records = shard.records.borrow_mut();
    loop {
        records[k].not_sent = true;
        shard.spec.progress[shard.spec.index].done(1);
        k += 1;
        if shard
            .mine
            .get(k)
            .is_none_or(|&i| shard.plan.requests[i].turn == 0)
        {
            return;
        }
    }
}

/// Send the warmup requests (the plan's warmup request, else copies of the first) on the shard's connections
/// before the clock starts. Their results are not recorded.
async fn warmup(spec: &ShardSpec, conns: &mut [Conn]) {
    if spec.plan.requests.is_empty() {
        return;
    }
    let first = spec.plan.request(crate::plan::WARMUP);
    let mut left = spec.my_warmups();
    while left > 0 {
        let batch = left.min(conns.len());
        let t0 = Instant::now();
        let futs = conns[..batch].iter_mut().map(|c| async {
            let mut rec = RequestRecord::with_capacity(first.prompt_len, first.output_len, 0);
            exchange(c, &first.wire, &mut rec, t0).await;
        });
        join_all(futs).await;
        left -= batch;
    }
}

async fn join_all<F: std::future::Future<Output = ()>>(futs: impl Iterator<Item = F>) {
    let tasks: Vec<_> = futs.collect();
    let mut pinned: Vec<_> = tasks.into_iter().map(Box::pin).collect();
    futures_lite::future::poll_fn(|cx| {
        pinned.retain_mut(|f| f.as_mut().poll(cx).is_pending());
        if pinned.is_empty() {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await
}

/// glommio 0.9.0's first timer sleep on an executor can overshoot by tens of milliseconds
/// (lazy membarrier registration); pay that before the clock starts.
async fn warm_timer() {
    for _ in 0..3 {
        glommio::timer::sleep(Duration::from_millis(1)).await;
    }
}

//! The event loop of one shard: start the requests that are due on free connections, wait
//! once for completions (or the next arrival), handle the whole batch with one timestamp,
//! repeat until every request of the phase has ended.
//!
//! A conversation's later turn is started as soon as the turn before it ends, on the slot the
//! conversation holds, with the earlier replies spliced into its bytes.
//!
//! A request's life on a connection: (connect →) send → bytes … → end of response. Every
//! connection keeps one multishot receive armed for as long as it is open, so an idle
//! connection the server closes is noticed (and dropped) without a request paying for it.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use io_uring::cqueue;
use io_uring::opcode;
use io_uring::types::Fd;
use socket2::SockAddr;

use super::conn::{Conn, Job, Op, Tag};
use super::ring::{Io, BGID};
use crate::engine::exchange::{
    connect_error, malformed, read_error, reset, send_error, Fail, CLOSED_BEFORE_RESPONSE,
};
use crate::engine::{stop, Counter, Timeouts};
use crate::plan::Plan;
use crate::proto::Progress;
use crate::record::{FailureKind, Metrics, RequestRecord};

/// Deadline scans are at least this share of the shorter timeout apart (and at most 1 s),
/// so many long streams do not make every loop pass scan: a timeout fires at most that late.
const SCAN_SHARE: u32 = 8;
const MAX_SCAN_GAP: Duration = Duration::from_secs(1);

/// A set of requests run to completion: the warmup batches, then the measured run.
pub(super) struct Phase {
    /// Plan index of each request (where its bytes are).
    pub plan_idx: Vec<usize>,
    /// One per request; `arrival_ns` (from `t0`) says when it is due.
    pub records: Vec<RequestRecord>,
    pub t0: Instant,
    /// Requests (or conversations) in flight at most (FIFO: the rest wait in arrival order).
    pub cap: usize,
    /// For the measured run: where finished requests are counted.
    pub timed: Option<Timed>,
    /// Requests that start something: single requests and first turns, in arrival order.
    firsts: Vec<usize>,
    /// Later turns whose turn before has ended: due now, on their conversation's slot.
    ready: Vec<usize>,
    /// Whether request k + 1 is request k's next turn.
    has_next: Vec<bool>,
    /// Next entry of `firsts` to start.
    next: usize,
    active: usize,
    done: usize,
}

pub(super) struct Timed {
    /// `--duration`: requests not started by this time (from `t0`) are never sent.
    pub deadline_ns: Option<u64>,
    pub metrics: Metrics,
    pub last_done_ns: u64,
    pub progress: Arc<Vec<Counter>>,
    pub index: usize,
}

impl Phase {
    pub(super) fn new(
        plan: &Plan,
        plan_idx: Vec<usize>,
        records: Vec<RequestRecord>,
        t0: Instant,
        cap: usize,
        timed: Option<Timed>,
    ) -> Phase {
        let later = |k: usize| plan_idx.get(k).is_some_and(|&i| plan.request(i).turn > 0);
        let firsts = (0..plan_idx.len()).filter(|&k| !later(k)).collect();
        let has_next = (0..plan_idx.len()).map(|k| later(k + 1)).collect();
        Phase {
            firsts,
            ready: Vec::new(),
            has_next,
            plan_idx,
            records,
            t0,
            cap: cap.max(1),
            timed,
            next: 0,
            active: 0,
            done: 0,
        }
    }

    fn empty(plan: &Plan) -> Phase {
        Phase::new(plan, Vec::new(), Vec::new(), Instant::now(), 1, None)
    }

    fn is_finished(&self) -> bool {
        self.done >= self.records.len()
    }
}

pub(super) struct Driver {
    io: Io,
    conns: Vec<Conn>,
    /// Idle connections as (slot, generation), most recently used last; entries whose
    /// connection has since closed or changed are skipped when popped.
    idle: Vec<(u32, u32)>,
    /// Slots with no socket and no request, ready for a new connection.
    free: Vec<u32>,
    addr: SocketAddr,
    /// The connect address, in a stable heap place while connects refer to it.
    sockaddr: Box<SockAddr>,
    plan: Arc<Plan>,
    spin: Duration,
    /// Connects in flight.
    connecting: usize,
    /// Connections opened successfully.
    pub opened: u64,
    /// The bytes of later conversation turns, built when each is due; a buffer is reused
    /// once the kernel is done with it.
    live: Vec<Vec<u8>>,
    live_free: Vec<u32>,
    timeouts: Timeouts,
    /// When the in-flight requests are next scanned for timeouts (None: nothing to watch).
    next_check: Option<Instant>,
    scan_gap: Duration,
    /// Timed requests resent after a reused connection closed before any response byte.
    pub keepalive_retries: u64,
}

impl Driver {
    pub(super) fn new(
        plan: Arc<Plan>,
        addr: SocketAddr,
        spin: Duration,
        timeouts: Timeouts,
    ) -> io::Result<Driver> {
        let shortest = [timeouts.request, timeouts.stall]
            .into_iter()
            .flatten()
            .min();
        let scan_gap = shortest.map_or(MAX_SCAN_GAP, |d| (d / SCAN_SHARE).min(MAX_SCAN_GAP));
        Ok(Driver {
            io: Io::new()?,
            conns: Vec::new(),
            idle: Vec::new(),
            free: Vec::new(),
            addr,
            sockaddr: Box::new(SockAddr::from(addr)),
            plan,
            spin,
            connecting: 0,
            opened: 0,
            live: Vec::new(),
            live_free: Vec::new(),
            timeouts,
            next_check: None,
            scan_gap,
            keepalive_retries: 0,
        })
    }

    /// Open `n` connections and wait until each has connected or failed (failures are left
    /// for the requests to retry, as the glommio engine does).
    pub(super) fn preconnect(&mut self, n: usize) {
        for _ in 0..n {
            let slot = self.new_slot();
            if self.connect(slot).is_err() {
                self.free.push(slot as u32);
            }
        }
        let mut none = Phase::empty(&self.plan.clone());
        while self.connecting > 0 && self.io.inflight > 0 {
            if self.io.wait(None, Duration::ZERO).is_err() {
                return;
            }
            self.reap(&mut none, Instant::now());
        }
    }

    /// Run every request of `ph` to its end.
    pub(super) fn run(&mut self, ph: &mut Phase) {
        loop {
            self.check_stop(ph);
            self.dispatch(ph);
            if ph.is_finished() {
                return;
            }
            let mut timeout = self.next_due(ph);
            if timeout.is_none() && self.io.inflight == 0 {
                // Requests are in flight but nothing can complete them: never wait forever.
                self.abort(ph, "internal error: requests in flight with no I/O pending");
                return;
            }
            if let Some(at) = self.next_check {
                let left = at.saturating_duration_since(Instant::now());
                timeout = Some(timeout.map_or(left, |t| t.min(left)));
            }
            // Bounded, so a stop signal is seen soon even when nothing happens.
            let timeout = Some(timeout.map_or(stop::POLL, |t| t.min(stop::POLL)));
            if let Err(e) = self.io.wait(timeout, self.spin) {
                self.abort(ph, &format!("io_uring failed: {e}"));
                return;
            }
            // One timestamp for the batch: every event reaped here arrived by now.
            let now = Instant::now();
            self.reap(ph, now);
            if self.next_check.is_some_and(|at| now >= at) {
                self.check_deadlines(ph, now);
            }
        }
    }

    /// Fail every request past `--request-timeout` or `--stall-timeout` (its socket is closed;
    /// the kernel's late completions are ignored and its buffers are never reused while it
    /// may still use them, as for any ended request), and note when to look next.
    fn check_deadlines(&mut self, ph: &mut Phase, now: Instant) {
        let mut next: Option<Instant> = None;
        for slot in 0..self.conns.len() {
            let Some(job) = &self.conns[slot].job else {
                continue;
            };
            let Some((at, kind)) = self.timeouts.expiry(job.start, job.last_byte) else {
                continue;
            };
            if at <= now {
                let fail = Fail::new(FailureKind::Timeout, self.timeouts.message(kind));
                self.end(ph, slot, Err(fail), now);
            } else {
                next = Some(next.map_or(at, |n| n.min(at)));
            }
        }
        self.next_check = next.map(|at| at.max(now + self.scan_gap));
    }

    /// Close every connection and wait (briefly) until the kernel has finished with every
    /// operation, so the receive buffers can be freed. Returns false if some never ended.
    pub(super) fn shutdown(&mut self) -> bool {
        for slot in 0..self.conns.len() {
            self.close(slot);
        }
        let mut none = Phase::empty(&self.plan.clone());
        let until = Instant::now() + Duration::from_secs(2);
        while self.io.inflight > 0 {
            let now = Instant::now();
            if now >= until {
                return false;
            }
            if self.io.wait(Some(until - now), Duration::ZERO).is_err() {
                return false;
            }
            self.reap(&mut none, Instant::now());
        }
        true
    }

    /// Drop the driver; if the kernel may still own receive buffers, leak them rather than
    /// free memory it could write to.
    pub(super) fn finish(mut self) {
        if !self.shutdown() {
            std::mem::forget(self);
        }
    }

    /// How long until the next request is due, if one waits only for its time.
    fn next_due(&self, ph: &Phase) -> Option<Duration> {
        if !ph.ready.is_empty() {
            return Some(Duration::ZERO);
        }
        if ph.next >= ph.firsts.len() || ph.active >= ph.cap {
            return None;
        }
        let mut due_ns = ph.records[ph.firsts[ph.next]].arrival_ns;
        if let Some(deadline) = ph.timed.as_ref().and_then(|t| t.deadline_ns) {
            due_ns = due_ns.min(deadline);
        }
        let due = ph.t0 + Duration::from_nanos(due_ns);
        Some(due.saturating_duration_since(Instant::now()))
    }

    /// Start every later turn that is ready, then every request that is due while a slot is
    /// free, in plan order.
    fn dispatch(&mut self, ph: &mut Phase) {
        if ph.next >= ph.firsts.len() && ph.ready.is_empty() {
            return;
        }
        let now = Instant::now();
        // Before t0 nothing is due (the measured phase starts a little in the future).
        let Some(elapsed) = now.checked_duration_since(ph.t0) else {
            return;
        };
        let elapsed = elapsed.as_nanos() as u64;
        if let Some(deadline) = ph.timed.as_ref().and_then(|t| t.deadline_ns) {
            if elapsed >= deadline {
                self.drop_unsent(ph);
                return;
            }
        }
        // Later turns already hold their conversation's slot.
        while let Some(k) = ph.ready.pop() {
            self.start(ph, k);
        }
        while ph.next < ph.firsts.len()
            && ph.active < ph.cap
            && ph.records[ph.firsts[ph.next]].arrival_ns <= elapsed
        {
            let k = ph.firsts[ph.next];
            ph.next += 1;
            ph.active += 1;
            self.start(ph, k);
        }
    }

    fn start(&mut self, ph: &mut Phase, k: usize) {
        let live = self.build_live(ph, k);
        let reuse = self.pop_idle();
        let start = Instant::now();
        ph.records[k].start_ns = ns_between(ph.t0, start);
        if let Some(t) = ph.timed.as_ref() {
            t.progress[t.index].started();
        }
        let job = Job {
            k,
            start,
            last_byte: start,
            sent: 0,
            received: 0,
            may_retry: reuse.is_some(),
            live,
        };
        if let Some((at, _)) = self.timeouts.expiry(start, start) {
            self.next_check = Some(self.next_check.map_or(at, |n| n.min(at)));
        }
        match reuse {
            Some(slot) => {
                let c = &mut self.conns[slot];
                c.parser.reset();
                c.stream.reset(start);
                c.job = Some(job);
                self.send(ph, slot);
            }
            None => {
                ph.records[k].new_connection = true;
                let slot = self.new_slot();
                let c = &mut self.conns[slot];
                c.parser.reset();
                c.stream.reset(start);
                c.job = Some(job);
                self.connect_for_job(ph, slot);
            }
        }
    }

    /// For a later turn: its bytes with the replies to the turns before it, in a live buffer.
    fn build_live(&mut self, ph: &Phase, k: usize) -> Option<u32> {
        let req = self.plan.request(ph.plan_idx[k]);
        let live = req.live.as_deref()?;
        let slot = self.live_free.pop().unwrap_or_else(|| {
            self.live.push(Vec::new());
            (self.live.len() - 1) as u32
        });
        let earlier = &ph.records[k - live.replies()..k];
        live.assemble(
            earlier.iter().map(|r| r.text_raw.as_slice()),
            &mut self.live[slot as usize],
        );
        Some(slot)
    }

    /// The bytes of the request `job` sends.
    fn wire_of(&self, ph: &Phase, job: &Job) -> &[u8] {
        match job.live {
            Some(slot) => &self.live[slot as usize],
            None => &self.plan.request(ph.plan_idx[job.k]).wire,
        }
    }

    fn pop_idle(&mut self) -> Option<usize> {
        while let Some((slot, gen)) = self.idle.pop() {
            let c = &self.conns[slot as usize];
            if c.gen == gen && c.is_idle() {
                return Some(slot as usize);
            }
        }
        None
    }

    fn new_slot(&mut self) -> usize {
        match self.free.pop() {
            Some(s) => s as usize,
            None => {
                self.conns.push(Conn::new(Instant::now(), self.plan.wire()));
                self.conns.len() - 1
            }
        }
    }

    /// Open a socket on `slot` and queue its connect.
    fn connect(&mut self, slot: usize) -> io::Result<()> {
        self.conns[slot].open(self.addr)?;
        let c = &mut self.conns[slot];
        c.connecting = true;
        self.connecting += 1;
        let entry = opcode::Connect::new(Fd(c.fd()), self.sockaddr.as_ptr(), self.sockaddr.len())
            .build()
            .user_data(c.tag(slot, Op::Connect));
        // SAFETY: the address is boxed in `self.sockaddr`, which outlives the ring's use of it
        // (the driver owns both and drains the ring before dropping).
        unsafe { self.io.push(&entry) };
        Ok(())
    }

    fn connect_for_job(&mut self, ph: &mut Phase, slot: usize) {
        if let Err(e) = self.connect(slot) {
            let fail = Fail::new(FailureKind::Connect, connect_error(self.addr, &e));
            self.end(ph, slot, Err(fail), Instant::now());
        }
    }

    /// Close the socket on `slot` (its request, if any, stays).
    fn close(&mut self, slot: usize) {
        let c = &mut self.conns[slot];
        if c.connecting {
            self.connecting = self.connecting.saturating_sub(1);
        }
        c.close();
    }

    /// Queue the rest of the current request's bytes.
    fn send(&mut self, ph: &Phase, slot: usize) {
        let Some(job) = &self.conns[slot].job else {
            return;
        };
        let wire = self.wire_of(ph, job);
        let rest = &wire[job.sent.min(wire.len())..];
        // A request over 4 GiB goes out in several sends, like any short send.
        let (ptr, len) = (rest.as_ptr(), rest.len().min(u32::MAX as usize) as u32);
        let c = &mut self.conns[slot];
        c.sending = true;
        let entry = opcode::Send::new(Fd(c.fd()), ptr, len)
            .flags(libc::MSG_NOSIGNAL)
            .build()
            .user_data(c.tag(slot, Op::Send));
        // SAFETY: the bytes belong to the plan, which the driver holds (`self.plan`) for as
        // long as the ring exists and is never mutated, or to a live buffer, which is not
        // touched again until the kernel is done with this send (see `end`).
        unsafe { self.io.push(&entry) };
    }

    fn arm_recv(&mut self, slot: usize) {
        let c = &mut self.conns[slot];
        c.recv_armed = true;
        let entry = opcode::RecvMulti::new(Fd(c.fd()), BGID)
            .build()
            .user_data(c.tag(slot, Op::Recv));
        // SAFETY: the receive writes only into provided buffers, owned by `self.io` and freed
        // after the ring.
        unsafe { self.io.push(&entry) };
    }

    /// Handle every completion now in the queue, all stamped `now`.
    fn reap(&mut self, ph: &mut Phase, now: Instant) {
        let batch = self.io.take_completions();
        for cqe in &batch {
            self.on_completion(ph, cqe, now);
        }
        self.io.restore(batch);
    }

    fn on_completion(&mut self, ph: &mut Phase, cqe: &cqueue::Entry, now: Instant) {
        let (res, flags) = (cqe.result(), cqe.flags());
        let Some(tag) = Tag::decode(cqe.user_data()) else {
            return;
        };
        let last = tag.op != Op::Recv || !cqueue::more(flags);
        if last {
            self.io.inflight = self.io.inflight.saturating_sub(1);
        }
        let slot = tag.slot as usize;
        let current = self.conns.get(slot).is_some_and(|c| c.gen == tag.gen);
        match tag.op {
            Op::Recv => {
                let bid = cqueue::buffer_select(flags);
                if current {
                    if last {
                        self.conns[slot].recv_armed = false;
                    }
                    self.on_recv(ph, slot, res, bid, now);
                    let c = &self.conns[slot];
                    if c.gen == tag.gen && c.connected && !c.recv_armed {
                        self.arm_recv(slot);
                    }
                }
                if let Some(bid) = bid {
                    self.io.bufs.give_back(bid);
                }
            }
            Op::Send if current => self.on_send(ph, slot, res, now),
            Op::Connect if current => self.on_connect(ph, slot, res, now),
            // A closed connection's late completion.
            Op::Send | Op::Connect => {}
        }
    }

    fn on_connect(&mut self, ph: &mut Phase, slot: usize, res: i32, now: Instant) {
        self.conns[slot].connecting = false;
        self.connecting = self.connecting.saturating_sub(1);
        if res < 0 {
            let e = io::Error::from_raw_os_error(-res);
            if self.conns[slot].job.is_some() {
                let fail = Fail::new(FailureKind::Connect, connect_error(self.addr, &e));
                self.end(ph, slot, Err(fail), now);
            } else {
                self.drop_idle(slot);
            }
            return;
        }
        self.conns[slot].connected = true;
        self.opened += 1;
        self.arm_recv(slot);
        if self.conns[slot].job.is_some() {
            self.send(ph, slot);
        } else {
            let gen = self.conns[slot].gen;
            self.idle.push((slot as u32, gen));
        }
    }

    fn on_send(&mut self, ph: &mut Phase, slot: usize, res: i32, now: Instant) {
        self.conns[slot].sending = false;
        let Some(job) = &self.conns[slot].job else {
            return;
        };
        if res < 0 {
            let e = io::Error::from_raw_os_error(-res);
            self.before_response(ph, slot, reset(send_error(self.addr, &e)), now);
            return;
        }
        let (k, sent) = (job.k, job.sent + res as usize);
        let len = self.wire_of(ph, job).len();
        if let Some(job) = self.conns[slot].job.as_mut() {
            job.sent = sent;
        }
        if sent == len {
            ph.records[k].sent_ns = ns_between(ph.t0, now);
        }
        if sent < len {
            if res == 0 {
                let e = io::Error::from(io::ErrorKind::WriteZero);
                self.before_response(ph, slot, reset(send_error(self.addr, &e)), now);
            } else {
                self.send(ph, slot);
            }
        }
    }

    fn on_recv(&mut self, ph: &mut Phase, slot: usize, res: i32, bid: Option<u16>, now: Instant) {
        if res < 0 {
            if res == -libc::ENOBUFS {
                // Every buffer was taken; they are given back as this batch is handled and
                // the receive is re-armed by the caller.
                return;
            }
            let e = io::Error::from_raw_os_error(-res);
            match &self.conns[slot].job {
                None => self.drop_idle(slot),
                Some(job) if job.received == 0 => {
                    self.before_response(ph, slot, reset(read_error(0, &e)), now)
                }
                Some(job) => {
                    let fail = reset(read_error(job.received, &e));
                    self.end(ph, slot, Err(fail), now);
                }
            }
            return;
        }
        if res == 0 {
            self.on_eof(ph, slot, now);
            return;
        }
        let data = match bid.and_then(|b| self.io.bufs.filled(b, res as usize)) {
            Some(d) => d,
            None => {
                let msg =
                    format!("io_uring reported a receive of {res} bytes without a valid buffer");
                if self.conns[slot].job.is_some() {
                    self.end(ph, slot, Err(Fail::new(FailureKind::Aborted, msg)), now);
                } else {
                    self.drop_idle(slot);
                }
                return;
            }
        };
        let c = &mut self.conns[slot];
        let Some(job) = c.job.as_mut() else {
            // Bytes nobody asked for: the server and we disagree about the framing.
            self.drop_idle(slot);
            return;
        };
        job.received += data.len() as u64;
        job.last_byte = now;
        let rec = &mut ph.records[job.k];
        c.stream.now = now;
        let stream = &mut c.stream;
        let outcome = match c.parser.feed(data, &mut |ev| stream.on_event(rec, ev)) {
            Err(e) => Some(Err(malformed(&e))),
            Ok(Progress::NeedMore) => None,
            Ok(Progress::Done { consumed }) => Some(
                stream
                    .finish(rec)
                    // Bytes past the end of the response (no pipelining here) mean the
                    // framing and the server disagree: never reuse such a connection.
                    .map(|()| stream.keep_alive && consumed == data.len()),
            ),
        };
        if let Some(outcome) = outcome {
            self.end(ph, slot, outcome, now);
        }
    }

    fn on_eof(&mut self, ph: &mut Phase, slot: usize, now: Instant) {
        let c = &mut self.conns[slot];
        let Some(job) = c.job.as_ref() else {
            // The server closed an idle keep-alive connection: normal.
            self.drop_idle(slot);
            return;
        };
        if job.received == 0 {
            self.before_response(ph, slot, reset(CLOSED_BEFORE_RESPONSE), now);
            return;
        }
        let rec = &mut ph.records[job.k];
        let stream = &mut c.stream;
        stream.now = now;
        let outcome = match c.parser.eof(&mut |ev| stream.on_event(rec, ev)) {
            Err(e) => Err(malformed(&e)),
            Ok(()) => stream.finish(rec).map(|()| false),
        };
        self.end(ph, slot, outcome, now);
    }

    /// The request failed before any byte of its response: retry once on a fresh connection
    /// if this one was reused, else fail it.
    fn before_response(&mut self, ph: &mut Phase, slot: usize, msg: Fail, now: Instant) {
        let c = &mut self.conns[slot];
        let Some(job) = c.job.as_mut() else { return };
        // A send can fail after the server has begun to answer: that is no longer safe to
        // resend.
        if !job.may_retry || job.received > 0 {
            self.end(ph, slot, Err(msg), now);
            return;
        }
        job.may_retry = false;
        if ph.timed.is_some() {
            self.keepalive_retries += 1;
        }
        job.sent = 0;
        job.received = 0;
        let (k, start) = (job.k, job.start);
        c.parser.reset();
        c.stream.reset(start);
        self.close(slot);
        ph.records[k].new_connection = true;
        self.connect_for_job(ph, slot);
    }

    /// The request on `slot` has ended: Ok(reusable) or the error for its record.
    fn end(&mut self, ph: &mut Phase, slot: usize, outcome: Result<bool, Fail>, now: Instant) {
        let Some(job) = self.conns[slot].job.take() else {
            return;
        };
        let reuse = match outcome {
            Ok(reuse) => reuse,
            Err(fail) => {
                fail.record(&mut ph.records[job.k]);
                false
            }
        };
        let c = &self.conns[slot];
        let send_done = !c.sending;
        // A send still in flight (the server answered before taking the whole request) would
        // complete on the next request's watch: do not reuse such a connection either.
        if reuse && send_done && c.is_idle() {
            self.idle.push((slot as u32, c.gen));
        } else {
            self.close(slot);
            self.free.push(slot as u32);
        }
        // A buffer the kernel may still read from is never reused.
        if let (Some(live), true) = (job.live, send_done) {
            self.live_free.push(live);
        }
        self.count_done(ph, job.k, now);
        self.go_on(ph, job.k, now);
    }

    /// Request `k` has ended: its conversation goes on with the next turn, on the slot it
    /// holds (SGLang's semantics: the next turn follows at once, whatever this one's
    /// outcome), or its slot is given back.
    fn go_on(&mut self, ph: &mut Phase, k: usize, now: Instant) {
        if !ph.has_next[k] {
            ph.active -= 1;
            return;
        }
        let elapsed = ns_between(ph.t0, now);
        let over = ph
            .timed
            .as_ref()
            .and_then(|t| t.deadline_ns)
            .is_some_and(|d| elapsed >= d);
        if over || stop::requested() {
            ph.active -= 1;
            self.skip_from(ph, k + 1, None, now);
            return;
        }
        ph.records[k + 1].arrival_ns = elapsed;
        ph.ready.push(k + 1);
    }

    /// Request `k` and the later turns of its conversation are never sent: marked not sent
    /// (`why` None, `--duration` is over) or failed with `why`.
    fn skip_from(&mut self, ph: &mut Phase, mut k: usize, why: Option<&str>, now: Instant) {
        loop {
            let rec = &mut ph.records[k];
            match why {
                None => rec.not_sent = true,
                Some(why) => {
                    rec.start_ns = ns_between(ph.t0, now);
                    Fail::new(FailureKind::Aborted, why).record(rec);
                }
            }
            self.count_done(ph, k, now);
            if !ph.has_next[k] {
                return;
            }
            k += 1;
        }
    }

    /// Request `k` has ended (its record is final).
    fn count_done(&mut self, ph: &mut Phase, k: usize, now: Instant) {
        ph.done += 1;
        if let Some(t) = ph.timed.as_mut() {
            let rec = &ph.records[k];
            if !rec.not_sent {
                t.last_done_ns = t.last_done_ns.max(ns_between(ph.t0, now));
                t.progress[t.index].outcome(rec);
            }
            if rec.success {
                t.metrics.record_request(rec);
            }
            t.progress[t.index].done(1);
        }
    }

    /// `--duration` is over: every request not yet started is marked never sent.
    fn drop_unsent(&mut self, ph: &mut Phase) {
        self.skip_waiting(ph, None);
    }

    /// Every request not yet started, first turns and ready later turns, is skipped (see
    /// [`Driver::skip_from`]).
    fn skip_waiting(&mut self, ph: &mut Phase, why: Option<&str>) {
        let now = Instant::now();
        while let Some(k) = ph.ready.pop() {
            ph.active -= 1;
            self.skip_from(ph, k, why, now);
        }
        while ph.next < ph.firsts.len() {
            let k = ph.firsts[ph.next];
            ph.next += 1;
            self.skip_from(ph, k, why, now);
        }
    }

    /// After a stop signal nothing new starts (what waits ends not sent, as after
    /// `--duration`); once the stop turns into an abort, the requests in flight end failed.
    fn check_stop(&mut self, ph: &mut Phase) {
        if !stop::requested() {
            return;
        }
        self.skip_waiting(ph, None);
        if stop::aborted() {
            self.abort_in_flight(ph);
        }
    }

    /// End every request in flight as aborted. `end` closes each connection, and a live
    /// buffer a send may still read is never reused; `finish` waits for the kernel.
    fn abort_in_flight(&mut self, ph: &mut Phase) {
        let now = Instant::now();
        let why = stop::abort_message(stop::abort_cause());
        for slot in 0..self.conns.len() {
            if self.conns[slot].job.is_some() {
                self.end(ph, slot, Err(Fail::new(FailureKind::Aborted, why)), now);
            }
        }
    }

    /// Close a connection that carries no request.
    fn drop_idle(&mut self, slot: usize) {
        if self.conns[slot].job.is_some() {
            return;
        }
        self.close(slot);
        self.free.push(slot as u32);
    }

    /// Fail every request of the phase that has not ended, with `why`.
    fn abort(&mut self, ph: &mut Phase, why: &str) {
        let now = Instant::now();
        for slot in 0..self.conns.len() {
            if self.conns[slot].job.is_some() {
                self.end(ph, slot, Err(Fail::new(FailureKind::Aborted, why)), now);
            }
        }
        self.skip_waiting(ph, Some(why));
    }
}

fn ns_between(a: Instant, b: Instant) -> u64 {
    b.saturating_duration_since(a).as_nanos() as u64
}
